"""Property tests of every operation of the OpenAPI document, with every key scope, in-process on moto.

Schemathesis generates requests from functions/treue/openapi.json, valid ones and ones that break the
schema; each becomes an API Gateway proxy event (as tests/support.api_event builds them) with the
authorizer context of a partner, finance or admin key, and goes to the route's handler. Every answer
must be below 500, every error application/problem+json with a type, a status and a detail, and every
answer must match the document (status code, content type, schema). Deterministic: Hypothesis runs
derandomized, without an example database; ``SCHEMATHESIS_EXAMPLES`` sets the examples per operation
and generation mode.
"""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import unquote

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.wiring import wired  # noqa: F401 (a fixture)
from tests.support import EVENTS, LambdaContext, api_event, load_event
from treue.handlers import API_FUNCTIONS, docs, module_of
from treue.routes import ROUTES

OPENAPI = EVENTS.parent / "functions" / "treue" / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(OPENAPI)
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
SCOPES = ("partner", "finance", "admin")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _handlers() -> dict[tuple[str, str], object]:
    routes = {(r.method, r.path): module_of(r.function) for r in ROUTES if r.function in API_FUNCTIONS}
    routes[("GET", "/v1/openapi.json")] = docs
    return routes


HANDLERS = _handlers()
OPERATIONS = sorted(HANDLERS)


def _samples() -> dict[tuple[str, str], str]:
    """A sample event of each route from events/ (JSON, not the CSV variants)."""
    found: dict[tuple[str, str], str] = {}
    for path in sorted(EVENTS.rglob("*.json")):
        event = json.loads(path.read_text())
        route = (event.get("httpMethod"), event.get("resource"))
        if route in HANDLERS and (route not in found or "csv" in found[route]):
            found[route] = str(path.relative_to(EVENTS))
    return found


SAMPLES = _samples()


def to_event(case, sample: str, auth: dict[str, str] | None) -> dict:
    """The API Gateway proxy event of a generated case."""
    event = api_event(sample, auth=auth) if auth else load_event(sample)
    event["path"] = unquote(case.formatted_path)
    event["requestContext"]["path"] = "/prod" + event["path"]
    event["pathParameters"] = {k: unquote(str(v)) for k, v in (case.path_parameters or {}).items()} or None
    query = {k: _text(v) for k, v in (case.query or {}).items()}
    event["queryStringParameters"] = {k: v[-1] for k, v in query.items() if v} or None
    event["multiValueQueryStringParameters"] = {k: v for k, v in query.items() if v} or None
    headers = {k: str(v) for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    headers.setdefault("Accept", "application/json")
    body = getattr(case, "body", None)
    if body is None or type(body).__name__ == "NotSet":
        event["body"], event["isBase64Encoded"] = None, False
    else:
        headers["Content-Type"] = case.media_type or "application/json"
        if isinstance(body, bytes):
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = json.dumps(body), False
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    return event


def _text(value) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [json.dumps(v) if isinstance(v, bool) or v is None else str(v) for v in values]


def to_response(case, event: dict, answer: dict) -> schemathesis.Response:
    headers: dict[str, list[str]] = {k: list(v) for k, v in (answer.get("multiValueHeaders") or {}).items()}
    for k, v in (answer.get("headers") or {}).items():
        headers.setdefault(k, [v])
    content = answer.get("body") or ""
    raw = base64.b64decode(content) if answer.get("isBase64Encoded") else content.encode("utf-8")
    request = requests.Request(event["httpMethod"], "http://127.0.0.1:3000" + case.formatted_path,
                               headers=event["headers"], data=event.get("body") or None).prepare()
    return schemathesis.Response(status_code=answer["statusCode"], headers=headers, content=raw,
                                 request=request, elapsed=0.0, verify=True)


def check_problem(answer: dict) -> None:
    assert answer["statusCode"] < 500, answer
    if answer["statusCode"] >= 400:
        content_type = (answer.get("headers") or {}).get("Content-Type") or \
            (answer.get("multiValueHeaders") or {}).get("Content-Type", [""])[0]
        assert content_type == "application/problem+json", answer
        problem = json.loads(answer["body"])
        assert problem["status"] == answer["statusCode"] and problem["type"].startswith("https://treue.dev/problems/")
        assert problem.get("detail"), problem


def test_every_operation_answers_by_the_document_and_never_5xx(wired):  # noqa: F811 (the fixture)
    """One program for all operations (a fixture per operation costs more than the examples)."""
    failures = []
    for method, path in OPERATIONS:
        try:
            exercise(wired, method, path)
        except Exception as err:  # collect every operation's first failure, then report them all
            failures.append(f"{method} {path}: {type(err).__name__}: {str(err)[:2000]}")
    assert not failures, "\n\n".join(failures)


def exercise(program, method: str, path: str) -> None:
    module, sample = HANDLERS[(method, path)], SAMPLES[(method, path)]
    operation = SCHEMA[path][method]
    public = path == "/v1/openapi.json"  # nothing in its request to break: valid requests only
    for mode in (GenerationMode.POSITIVE,) if public else (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        scopes = st.just(None) if public else st.sampled_from(SCOPES)

        @given(case=operation.as_strategy(generation_mode=mode), scope=scopes)
        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        def run(case, scope):
            event = to_event(case, sample, None if scope is None else program["auth"][scope])
            answer = module.handler(event, LambdaContext())
            check_problem(answer)
            case.validate_response(to_response(case, event, answer), checks=CHECKS)

        run()
