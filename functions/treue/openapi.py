"""Build the OpenAPI document of the whole partner API from the route table (``treue.routes``) and the
handlers' signatures, with Powertools' OpenAPI generator (at build time; the functions never load it).

``python -m treue.openapi > functions/treue/openapi.json`` (``make openapi``) regenerates the committed
file, which the docs function serves at ``GET /v1/openapi.json``; a test fails when it drifts.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

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


SERVER_URL = ".."
DESCRIPTION = (
    "Treue runs loyalty programs: members earn points and spend them on rewards that Treue pays out. Each area "
    "below is a tag of this document:\n\n"
    "- **Members**: enroll members (email, phone, card number, external id) and find them by one identifier.\n"
    "- **Points**: accrue points for purchases exactly once per `transaction_id` (here or on the accrual queue), "
    "correct them with adjustments, read balances and statements.\n"
    "- **Catalog**: gift cards, vouchers and charities priced in the program's points.\n"
    "- **Orders**: spend points: an order holds them and a payout workflow issues the codes; statuses PENDING → "
    "PROCESSING → ISSUED → COMPLETED, or FAILED (points released), and CANCELED (a completed order undone where "
    "its policy allows; points refunded). Codes are masked except on the recorded reveal routes.\n"
    "- **Donations**: an order on a charity is a donation: receipts and totals per charity.\n"
    "- **Vouchers**: at the till: validate, redeem once (idempotent by reference), void.\n"
    "- **Rewards**: brands issue a gift card or voucher straight from the program's budget, without points.\n"
    "- **Batches**: bulk issuance from inline lines or an uploaded CSV, paid from the budget, issued by a "
    "workflow; lines as JSON or CSV, retries of the lines not issued.\n"
    "- **Finance** (finance or admin keys): the budget per currency and its fundings, payouts, the journal, trial "
    "balance, liability, daily reconciliation, KPIs and the hash-chained audit trail; lists also as CSV with "
    "`Accept: text/csv`.\n"
    "- **Reports**: report jobs compute a reconciliation, KPIs, payouts or the journal of any size asynchronously.\n"
    "- **Webhooks**: endpoints that receive signed deliveries of the program's events, with their health and "
    "secret rotation.\n"
    "- **Events**: the program's event log in order, to catch up after an outage, and redelivery.\n"
    "- **Queue senders** (admin): the IAM principals whose accrual queue messages count for this program.\n"
    "- **Program**: the program's settings (earn rate, point value, currency, country, markup, fx rates) for "
    "every key; admins change them with a JSON merge patch, each change a new version with its history.\n"
    "- **Rules**: the earning rules (bonus points by category, sku, channel, day, tier, segment or activity) "
    "for every key; admins create, replace (each a new version, effective-dated) and retire them.\n"
    "- **Segments**: built-in member segments (new, active, inactive, at risk, premium) and custom ones admins "
    "define; a member's segments and offers (rules that fit them, catalog items they can afford), member counts "
    "per segment and tier (finance and admin keys).\n"
    "- **Memberships**: paid memberships (plans in the program's settings): record one whose fee your payment "
    "provider took, renew it, cancel it at its period's end, list a member's.\n\n"
    "Authenticate with `Authorization: Bearer <API key>`; the key decides the program and its scope "
    "(`x-treue-scopes` of each operation). Money is integer minor units with an ISO 4217 currency, points are "
    "integers, ratios are basis points. Writes are idempotent (`Idempotency-Key`, `transaction_id`, "
    "`reference`). Errors are `application/problem+json` (RFC 9457)."
)
# One tag per area, in the order the API reference lists them
TAGS = {
    "Members": "Enroll members and find them by email, phone, card number, external id or QR token. "
    "An enrolled member gets a card number with a Luhn check digit and a QR token.",
    "Points": "Accrue points for a purchase exactly once per transaction_id (over this API or the accrual "
    "queue), correct them with adjustments (admin), read the balance and the statement.",
    "Catalog": "Gift cards, vouchers and charities, priced in the program's points.",
    "Orders": "Spend a member's points: an order holds them and starts the payout workflow; cancel a completed "
    "order where its policy allows (points refunded); reveal its codes (every reveal is recorded).",
    "Donations": "An order on a charity is a donation: its receipt, and the totals per charity and currency.",
    "Vouchers": "At the till: check a voucher code, redeem it once (the reference makes it idempotent), void it.",
    "Rewards": "Direct issuance for brands: a gift card or voucher paid from the program's budget, no points.",
    "Batches": "Bulk issuance: up to 10,000 lines inline, or a CSV uploaded to a pre-signed URL; validated, paid "
    "for from the budget and issued by a workflow; lines as JSON or CSV; retry the lines not issued.",
    "Finance": "Finance and admin keys: the budget per currency, fundings and the low-balance threshold, payouts, "
    "the journal, trial balance, liability, daily reconciliation, KPIs and the hash-chained audit trail.",
    "Reports": "Report jobs: a reconciliation, KPIs, payouts or the journal of any size, computed asynchronously; "
    "the result is a short-lived download URL.",
    "Webhooks": "Endpoints that receive signed deliveries of the program's events (retried with backoff), their "
    "delivery health, and secret rotation.",
    "Events": "The program's event log in order (kept 90 days), to catch up after an outage; redeliver an event.",
    "Queue senders": "Admin keys: the IAM roles and users whose messages on the accrual queue count for this "
    "program.",
    "Program": "The rules of the game: the program's earn rate, point value, currency, country, catalog markup "
    "and fx rates. Admin keys change them with a JSON merge patch; every change is a new, audited version "
    "(If-Match: \"<version>\" refuses a stale one). Accruals use a change once the functions' program cache "
    "expires (60 s); a purchase keeps the points it was posted with.",
    "Rules": "Earning rules: a trigger (purchase, activity, enrollment, birthday, referral, milestone), "
    "conditions, exactly one effect, limits, an optional window, priority and stacking. Admin keys create them "
    "(Idempotency-Key), replace them (every change a new, audited version, in force from when it was made; "
    "If-Match: \"<version>\" refuses a stale one) and retire them (kept with their versions); every key reads them.",
    "Segments": "Member segments: built-in (new, active, inactive, at_risk, premium, computed from ledger "
    "activity) and custom ones admins define by conditions (tier, spend, purchases, points, categories bought, "
    "balance); a member's segments with the reason, member counts per segment and tier, and a member's offers: "
    "the earning rules that fit them and the catalog items they can afford or nearly afford.",
    "Memberships": "Paid memberships: a member on a plan of the program's membership_plans is at least at the "
    "plan's tier and earns its multiplier while active; start one (exactly once per payment_reference: the fee "
    "was taken by your payment provider and is booked as revenue), renew it, cancel it at its period's end, list "
    "a member's. A daily schedule ends the lapsed ones.",
    "Documentation": "This OpenAPI document (no key needed).",
}
# The public routes (no key) the document lists, with their answers: the document itself. The API reference
# page and its files (GET /docs, /docs/{asset}) are a web page for browsers, not operations of the API.
PUBLIC_ANSWERS = {
    "getOpenApiDocument": {"200": {"description": "The OpenAPI document", "content": {"application/json": {}}}},
}


def build() -> dict[str, Any]:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from treue.handlers import API_FUNCTIONS
    from treue.routes import ROUTES

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Treue partner API", "version": "1.0.0", "description": DESCRIPTION},
        # Relative to where this document is served (OpenAPI 3.1, Server Object): resolved against
        # /v1/openapi.json on the twin it is the root, against /prod/v1/openapi.json on API Gateway the stage.
        "servers": [{"url": SERVER_URL, "description": "the API that serves this document"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "security": [{"apiKey": []}],
        "paths": {},
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "trk_… API key"}},
            "schemas": {"Problem": PROBLEM_SCHEMA},
        },
    }
    scopes = {(r.method, r.path): r.scopes for r in ROUTES}
    for function in API_FUNCTIONS:
        part = json.loads(resolver(function).get_openapi_json_schema(title="part", version="1"))
        for path, item in part.get("paths", {}).items():
            for method, operation in item.items():
                operation.setdefault("responses", {})
                operation["responses"].pop("422", None)
                for status, description in PROBLEMS.items():
                    operation["responses"][status] = {
                        "description": description,
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    }
                _declare_path_parameters(path, operation)
                operation["x-treue-scopes"] = [str(s) for s in scopes[(method.upper(), path)]]
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
    for path, what in (("/v1/rewards", "reward"), ("/v1/batches", "batch"), ("/v1/finance/reports", "report job")):
        doc["paths"][path]["post"].setdefault("parameters", []).append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": f"Required. The same key and body answer the first {what} (replayed: true); "
                "the same key with another body is 409 and creates nothing.",
            }
        )
    doc["paths"]["/v1/rules"]["post"].setdefault("parameters", []).append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "Required. The same key and body answer the first rule (200); the same key with "
            "another body is 409 and creates nothing.",
        }
    )
    for method in ("put", "delete"):
        doc["paths"]["/v1/rules/{rule_id}"][method].setdefault("parameters", []).append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 32},
                "description": 'The version the change is made on, as the ETag of GET /v1/rules/{rule_id}: "3". '
                "Another current version is a 412 and writes nothing.",
            }
        )
    for method in ("put", "delete"):
        doc["paths"]["/v1/segments/{segment_id}"][method].setdefault("parameters", []).append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 32},
                "description": 'The version the change is made on, as the ETag of GET /v1/segments/{segment_id}: '
                '"3". Another current version is a 412 and writes nothing.',
            }
        )
    doc["paths"]["/v1/program"]["patch"].setdefault("parameters", []).append(
        {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 32},
            "description": 'The version the change is made on, as the ETag of GET /v1/program: "3". Another '
            "current version is a 412 and writes nothing; without it the change is applied to the current version.",
        }
    )
    for route in ROUTES:
        if route.public and route.operation_id in PUBLIC_ANSWERS:
            doc["paths"].setdefault(route.path, {})[route.method.lower()] = {
                "operationId": route.operation_id,
                "tags": [route.tag],
                "summary": route.summary,
                "security": [],
                "responses": PUBLIC_ANSWERS[route.operation_id],
            }
    doc["paths"] = dict(sorted(doc["paths"].items()))
    return doc


def resolver(function: str) -> Any:
    """A Powertools resolver with validation of one API function's routes, from the route table and the
    handlers' signatures, for its OpenAPI generator (at build time only: the functions do not use it)."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from treue.handlers import module_of
    from treue.routes import of_function

    module = module_of(function)
    app = APIGatewayRestResolver(enable_validation=True)
    for route in of_function(function):
        handler = getattr(module, route.handler)
        app.route(
            rule=re.sub(r"{(\w+)}", r"<\1>", route.path),
            method=route.method,
            operation_id=route.operation_id,
            tags=[route.tag],
            summary=route.summary,
            responses=_documented_responses(handler),
        )(_documented(handler))
    return app


def _documented_responses(handler: Callable[..., Any]) -> Any:
    """The answers ``treue.handlers.http.responses`` documents for a handler (built now when given as a function),
    with the 200 of its return annotation when they document no success of their own (Powertools documents the
    annotation's answer only for a route without documented answers)."""
    documented = getattr(handler, "openapi_responses", None)
    found = documented() if callable(documented) else documented
    if found is None or any(200 <= int(code) < 300 for code in found):
        return found
    from treue.handlers import http

    answer = typing.get_type_hints(handler).get("return")
    if typing.get_origin(answer) is http.Response:
        answer = typing.get_args(answer)[0]
    if not (isinstance(answer, type) and issubclass(answer, BaseModel)):
        return found
    return {200: {"description": "Successful Response", "content": {"application/json": {"model": answer}}}, **found}


def _documented(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` with its signature in Powertools' terms: ``Query``/``Path``/``Body`` of treue.handlers.http
    as Powertools' parameters of the same constraints, ``Response[Model]`` as Powertools' ``Response``."""
    from aws_lambda_powertools.event_handler import Response as Answer
    from aws_lambda_powertools.event_handler.openapi import params

    from treue.handlers import http

    kinds = {"query": params.Query, "path": params.Path, "body": params.Body}
    hints = typing.get_type_hints(handler, include_extras=True)
    signature = inspect.signature(handler)
    parameters = []
    for p in signature.parameters.values():
        base, marker = http.annotated(hints.get(p.name, p.annotation))
        if marker is not None:
            kind = kinds[marker.location](alias=marker.alias, description=marker.description, **marker.constraints)
            parameters.append(p.replace(annotation=typing.Annotated[base, kind]))
        else:
            parameters.append(p.replace(annotation=base))
    answer = hints.get("return", inspect.Signature.empty)
    if typing.get_origin(answer) is http.Response and typing.get_args(answer)[0] is typing.Any:
        answer = inspect.Signature.empty  # Response[Any]: its answers are documented by @responses only
    elif typing.get_origin(answer) is http.Response:
        answer = Answer[typing.get_args(answer)[0]]  # type: ignore[misc]
    elif answer is http.Response:
        answer = Answer

    def documented(**kwargs: Any) -> Any:
        return handler(**kwargs)

    documented.__name__ = handler.__name__
    documented.__signature__ = signature.replace(parameters=parameters, return_annotation=answer)  # type: ignore[attr-defined]
    return documented


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


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
