"""The Docs function: the OpenAPI document, the API reference page at /docs and the page's files."""

import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest

from tests.support import load_event
from treue.handlers import docs


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.title = ""
        self._in = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            if "src" in a:
                self.urls.append(a["src"])
            else:
                self.inline_scripts += 1
        for name in ("href", "data-spec"):
            if a.get(name):
                self.urls.append(a[name])
        self._in = tag

    def handle_data(self, data):
        if self._in == "title":
            self.title += data

    def handle_endtag(self, tag):
        self._in = ""


def _get(resource: str, path: str, asset: str | None = None) -> dict:
    event = load_event("docs/get_docs.json")
    event.update(resource=resource, path=path, pathParameters={"asset": asset} if asset else None)
    return docs.handler(event, None)


def test_the_page_is_self_contained_html_with_relative_urls_and_a_strict_script_policy():
    answer = docs.handler(load_event("docs/get_docs.json"), None)
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"].startswith("text/html")
    refs = _Refs()
    refs.feed(answer["body"])
    assert refs.title == "Treue API" and refs.inline_scripts == 0
    assert "docs/swagger-ui-bundle.js" in refs.urls and "v1/openapi.json" in refs.urls
    for url in refs.urls:  # nothing from another site, nothing tied to the root: works under a stage path
        assert not re.match(r"^([a-z]+:|/)", url), url
    policy = dict(p.strip().split(" ", 1) for p in answer["headers"]["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("page", ["http://127.0.0.1:3000/docs", "https://a1.execute-api.eu-central-1.amazonaws.com/prod/docs"])
def test_every_url_of_the_page_reaches_a_route_of_the_docs_function(page):
    refs = _Refs()
    refs.feed(docs.PAGE)
    base = page.removesuffix("/docs")
    for url in refs.urls:
        resolved = urljoin(page, url)
        assert resolved.startswith(base + "/"), (page, url)
        route = resolved.removeprefix(base)
        if route == "/v1/openapi.json":
            answer = _get("/v1/openapi.json", route)
        else:
            assert route.startswith("/docs/") and route.count("/") == 2, route
            answer = _get("/docs/{asset}", route, route.rsplit("/", 1)[1])
        assert answer["statusCode"] == 200, (url, answer["body"][:300])


def test_the_swagger_ui_files_and_our_script_are_served_with_their_types():
    js = _get("/docs/{asset}", "/docs/swagger-ui-bundle.js", "swagger-ui-bundle.js")
    assert js["statusCode"] == 200 and js["headers"]["Content-Type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in js["body"] and len(js["body"]) > 100_000
    css = _get("/docs/{asset}", "/docs/swagger-ui.css", "swagger-ui.css")
    assert css["statusCode"] == 200 and css["headers"]["Content-Type"].startswith("text/css")
    init = _get("/docs/{asset}", f"/docs/{docs.INIT}", docs.INIT)
    assert init["headers"]["Content-Type"].startswith("text/javascript")
    assert "SwaggerUIBundle(" in init["body"] and "validatorUrl: null" in init["body"]  # no call to another site


@pytest.mark.parametrize("asset", ["nope.js", "..%2Fopenapi.json", "swagger-ui-bundle.js.map", "index.html", ""])
def test_anything_else_under_docs_is_a_404_problem(asset):
    answer = _get("/docs/{asset}", f"/docs/{asset}", asset)
    assert answer["statusCode"] == 404 and answer["headers"]["Content-Type"] == "application/problem+json"
    assert json.loads(answer["body"])["type"].endswith("/not-found")


def test_docs_with_a_trailing_slash_redirects_to_the_page():
    answer = _get("/docs", "/docs/")
    assert answer["statusCode"] == 308 and urljoin("http://127.0.0.1:3000/docs/", answer["headers"]["Location"]) \
        == "http://127.0.0.1:3000/docs"


def test_a_build_without_swagger_ui_answers_a_problem_that_says_to_run_make(tmp_path, monkeypatch):
    monkeypatch.setattr(docs, "STATIC", tmp_path)
    monkeypatch.setattr(docs, "_files", {})
    answer = _get("/docs/{asset}", "/docs/swagger-ui-bundle.js", "swagger-ui-bundle.js")
    assert answer["statusCode"] == 503 and "make" in json.loads(answer["body"])["detail"]


def test_the_openapi_document_is_still_served():
    answer = docs.handler(load_event("docs/get_openapi.json"), None)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["openapi"] == "3.1.0"
