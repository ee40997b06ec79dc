"""API documentation function: GET /v1/openapi.json serves the committed OpenAPI document."""

from __future__ import annotations

from importlib import resources

_document: str | None = None


def handler(event, context):
    global _document
    if _document is None:
        _document = resources.files("treue").joinpath("openapi.json").read_text()
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Cache-Control": "public, max-age=300"},
        "body": _document,
    }
