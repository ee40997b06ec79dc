"""API documentation function, no key needed: GET /v1/openapi.json serves the committed OpenAPI document,
GET /docs an API reference page (Swagger UI) that reads it, GET /docs/{asset} the page's files.

Swagger UI is pinned in web/package-lock.json; ``make`` installs it (``npm ci``) and copies its bundle into
``treue/static/`` (not committed), so it is part of this function's code: the page loads nothing from
elsewhere. Every URL in the page is relative, so it works at the root of the twin and under the stage path
of API Gateway (/prod/docs) alike.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from treue import end_init_pause
from treue.errors import PROBLEM_BASE

STATIC = Path(__file__).resolve().parent.parent / "static"
SPEC = "v1/openapi.json"  # relative to the page (/docs, /prod/docs)
# The page's files: name -> content type. The Swagger UI files come from the npm package; treue-docs.js is ours.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
    "NOTICE": "text/plain; charset=utf-8",
}
INIT = "treue-docs.js"
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Treue API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<noscript>This API reference needs JavaScript. The OpenAPI document is <a href="{SPEC}">{SPEC}</a>.</noscript>
<div id="swagger-ui" data-spec="{SPEC}"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/{INIT}"></script>
</body>
</html>
"""
# Our only script: no inline script, so the page's Content-Security-Policy allows scripts from 'self' alone.
# The document's URL is made absolute first: its relative server URL is resolved against it.
INIT_JS = """"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: new URL(root.getAttribute("data-spec"), document.baseURI).href,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    displayOperationId: true,
    defaultModelsExpandDepth: 0
  });
})();
"""
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

_document: str | None = None
_files: dict[str, str] = {}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return _serve(event)
    finally:
        end_init_pause()  # the collector runs again once the first invocation is answered (treue/__init__.py)


def _serve(event: dict[str, Any]) -> dict[str, Any]:
    resource = event.get("resource") or ""
    path = event.get("path") or resource
    if resource == "/v1/openapi.json":
        return _openapi()
    if resource == "/docs":
        if path.endswith("/"):  # /docs/ would resolve the page's relative URLs under /docs/docs/
            return {"statusCode": 308, "headers": {"Location": "../docs", **SECURITY_HEADERS}, "body": ""}
        return _answer(200, "text/html; charset=utf-8", PAGE, "public, max-age=300",
                       {"Content-Security-Policy": CSP})
    if resource == "/docs/{asset}":
        name = (event.get("pathParameters") or {}).get("asset") or ""
        if name == INIT:
            return _answer(200, "text/javascript; charset=utf-8", INIT_JS, "public, max-age=300")
        if name in ASSETS:
            text = _static(name)
            if text is None:
                return _problem(503, "docs-not-built", "The API reference page is not built",
                                f"{name} is missing from this build: run make (it installs Swagger UI from "
                                "web/package-lock.json)", path)
            return _answer(200, ASSETS[name], text, "public, max-age=86400")
    return _problem(404, "not-found", "Not found", f"no such file of the API reference page: {path}", path)


def _openapi() -> dict[str, Any]:
    global _document
    if _document is None:
        _document = resources.files("treue").joinpath("openapi.json").read_text()
    return _answer(200, "application/json", _document, "public, max-age=300")


def _static(name: str) -> str | None:
    if name not in _files:
        try:
            _files[name] = (STATIC / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
    return _files[name]


def _answer(status: int, content_type: str, body: str, cache: str,
            extra: dict[str, str] | None = None) -> dict[str, Any]:
    headers = {"Content-Type": content_type, "Cache-Control": cache, **SECURITY_HEADERS, **(extra or {})}
    return {"statusCode": status, "headers": headers, "body": body}


def _problem(status: int, slug: str, title: str, detail: str, instance: str) -> dict[str, Any]:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, "instance": instance}
    return {"statusCode": status, "headers": {"Content-Type": "application/problem+json", **SECURITY_HEADERS},
            "body": json.dumps(body)}
