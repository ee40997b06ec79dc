"""Build the OpenAPI document of the whole partner API from the handlers' resolvers.

``python -m treue.openapi > functions/treue/openapi.json`` (``make openapi``) regenerates the committed
file, which the docs function serves at ``GET /v1/openapi.json``; a test fails when it drifts.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri", "example": "https://treue.dev/problems/member-not-found"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
PROBLEMS = {
    "400": "The request could not be read (malformed JSON, bad cursor or query)",
    "401": "Missing, invalid or revoked API key",
    "403": "The key's scope does not allow this route, or the program is not enabled on the API's usage plan",
    "404": "No such member, order, item, voucher or donation (also those of other programs), or route",
    "409": "The id was already used with a different request, the identifier is taken, or the order's "
    "state does not allow this",
    "413": "The request body is larger than 5 MB",
    "415": "The body is not JSON",
    "422": "The request is not valid (every failing field is listed)",
    "429": "The program's rate limit is reached (RateLimit, RateLimit-Policy and Retry-After headers say when "
    "to retry)",
    "503": "An AWS service did not answer in time; retry after Retry-After seconds (every write is idempotent)",
}


def build() -> dict[str, Any]:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from treue.handlers import api_modules

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Treue partner API",
            "version": "1.0.0",
            "description": "Enroll members, accrue points exactly once, read balances and statements; "
            "browse the catalog priced in points, order gift cards, vouchers and donations (held points, a "
            "payout workflow, captured or released), reveal codes, and validate/redeem vouchers at the till. "
            "Order statuses: PENDING → PROCESSING → ISSUED → COMPLETED, or FAILED (points released), and "
            "CANCELED (a completed order undone where its policy allows; points refunded). "
            "Finance (finance or admin keys): program budget per currency and fundings, payouts, the journal, "
            "trial balance, liability, daily reconciliation, KPIs and the hash-chained audit trail; every list "
            "also as CSV with `Accept: text/csv`. Money is integer minor units with a currency; ratios are "
            "basis points. "
            "Authenticate with `Authorization: Bearer <API key>`; errors are application/problem+json.",
        },
        "servers": [{"url": "http://127.0.0.1:3000", "description": "local twin (make run)"}],
        "security": [{"apiKey": []}],
        "paths": {},
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "trk_… API key"}},
            "schemas": {"Problem": PROBLEM_SCHEMA},
        },
    }
    for module in api_modules():
        part = json.loads(module.app.get_openapi_json_schema(title="part", version="1"))
        for path, item in part.get("paths", {}).items():
            for operation in item.values():
                operation.setdefault("responses", {})
                operation["responses"].pop("422", None)
                for status, description in PROBLEMS.items():
                    operation["responses"][status] = {
                        "description": description,
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    }
                _declare_path_parameters(path, operation)
                scopes = module.SCOPES.get((_method_of(item, operation), path))
                if scopes:
                    operation["x-treue-scopes"] = [str(s) for s in scopes]
            doc["paths"].setdefault(path, {}).update(item)
        for name, schema in part.get("components", {}).get("schemas", {}).items():
            if name not in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
                doc["components"]["schemas"][name] = schema
    doc["paths"]["/v1/members"]["post"].setdefault("parameters", []).append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "Retry-safe enrollment: the same key and body answer the first member (200).",
        }
    )
    doc["paths"]["/v1/orders"]["post"].setdefault("parameters", []).append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "Required. The same key and body answer the first answer (replayed: true); "
            "the same key with another body is 409 and places nothing.",
        }
    )
    doc["paths"]["/v1/finance/fundings"]["post"].setdefault("parameters", []).append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "Required. The same key and body answer the first funding (200, replayed: true); "
            "the same key with another body is 409 and records nothing.",
        }
    )
    doc["paths"]["/v1/openapi.json"] = {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {}}}},
        }
    }
    doc["paths"] = dict(sorted(doc["paths"].items()))
    return doc


def _declare_path_parameters(path: str, operation: dict[str, Any]) -> None:
    """Declare every ``{name}`` of the path as a required string parameter, where the handler reads it
    from the event instead of taking it as an argument (the resolver then leaves it out)."""
    parameters = operation.setdefault("parameters", [])
    declared = {p.get("name") for p in parameters if p.get("in") == "path"}
    for name in re.findall(r"{([^}/]+)}", path):
        if name not in declared:
            parameters.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    if not parameters:
        del operation["parameters"]


def _method_of(item: dict[str, Any], operation: dict[str, Any]) -> str:
    for method, op in item.items():
        if op is operation:
            return method.upper()
    return ""


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
