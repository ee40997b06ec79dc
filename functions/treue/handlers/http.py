"""What every HTTP handler shares: the resolver, problem+json errors, the caller and its scope."""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from treue.core import audit, ids
from treue.core.keys import Scope
from treue.errors import PROBLEM_BASE, Forbidden, MalformedRequest, StorageTimeout, TreueError, Unauthenticated

PROBLEM_JSON = "application/problem+json"
MAX_JSON_DEPTH = 32  # a body nesting objects and arrays deeper is a 400 (never a RecursionError 500)
MAX_BODY_BYTES = 5_000_000  # under Lambda's 6 MB payload limit, so a larger body is our 413, not a gateway error
ANY_SCOPE = (Scope.PARTNER, Scope.ADMIN, Scope.FINANCE)
WRITE_SCOPE = (Scope.PARTNER, Scope.ADMIN)

logger = Logger()


def problem_response(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body))


def _validation_problem(app: APIGatewayRestResolver, exc: RequestValidationError) -> Response:
    errors = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ())]
        errors.append({"location": loc[0] if loc else "", "field": ".".join(loc[1:]), "reason": _message(e)})
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem_response(
            400,
            {
                "type": PROBLEM_BASE + "malformed-request",
                "title": "The request could not be read",
                "status": 400,
                "detail": "the body is not valid JSON",
                "instance": app.current_event.path,
            },
        )
    return problem_response(
        422,
        {
            "type": PROBLEM_BASE + "validation-failed",
            "title": "The request is not valid",
            "status": 422,
            "detail": "; ".join(f"{e['field'] or e['location']}: {e['reason']}" for e in errors),
            "instance": app.current_event.path,
            "errors": errors,
        },
    )


def _message(error: dict[str, Any]) -> str:
    # pydantic's messages name no Python internals; strip the "Value error, " prefix of custom checks
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def make_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=parse_json_body)

    @app.exception_handler(TreueError)
    def _domain(exc: TreueError) -> Response:
        if exc.status >= 500:
            logger.warning("request failed", extra={"problem": exc.slug, "detail": exc.detail})
        return problem_response(exc.status, exc.problem(app.current_event.path))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return _validation_problem(app, exc)

    @app.not_found
    def _no_route(exc: NotFoundError) -> Response:
        return problem_response(
            404,
            {
                "type": PROBLEM_BASE + "no-such-route",
                "title": "No such route",
                "status": 404,
                "detail": f"{app.current_event.http_method} {app.current_event.path} is not a route of this API",
            },
        )

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if _is_timeout(exc):
            # an AWS call that did not answer in time: a 503 the client may retry (every write is idempotent)
            logger.warning("storage timeout", extra={"error": type(exc).__name__})
            problem = StorageTimeout("an AWS service did not answer in time; retry in a moment")
            response = problem_response(problem.status, problem.problem(app.current_event.path))
            response.headers["Retry-After"] = "1"
            return response
        logger.exception("unhandled error")
        return problem_response(
            500,
            {
                "type": PROBLEM_BASE + "internal",
                "title": "Internal error",
                "status": 500,
                "detail": "an unexpected error occurred; it has been logged",
            },
        )

    return app


def _is_timeout(exc: Exception) -> bool:
    """Whether ``exc`` is botocore's "no answer in time" (the store's clients module is loaded by then;
    looking it up instead of importing keeps botocore out of the handler's import)."""
    clients = sys.modules.get("treue.store.clients")
    return clients is not None and isinstance(exc, clients.TIMEOUTS)


@dataclass(frozen=True)
class Caller:
    program_id: str
    key_id: str
    scope: Scope

    @property
    def actor(self) -> str:
        return f"{self.scope}:{self.key_id}"


def caller(app: APIGatewayRestResolver) -> Caller:
    """Who is calling, from the authorizer context only (never from the path or body)."""
    ctx = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    try:
        return Caller(program_id=ctx["program_id"], key_id=ctx["key_id"], scope=Scope(ctx["scope"]))
    except (KeyError, ValueError) as err:
        raise Unauthenticated("no authorized API key on this request") from err


def dispatch(app: APIGatewayRestResolver, scopes: dict[tuple[str, str], tuple[Scope, ...]], event, context):
    """Check the caller's scope and the media type before validation, then resolve the route.

    ``scopes`` maps ``(method, resource)`` of every route to the key scopes allowed to call it.
    """
    method, resource = event.get("httpMethod", ""), event.get("resource", "")
    allowed = scopes.get((method, resource))
    path = event.get("path", "")
    if allowed is not None:
        ctx = (event.get("requestContext") or {}).get("authorizer") or {}
        scope = ctx.get("scope")
        if scope not in {str(s) for s in ANY_SCOPE}:
            return _raw_problem(Unauthenticated("no authorized API key on this request").problem(path))
        if scope not in {str(s) for s in allowed}:
            names = ", ".join(str(s) for s in allowed)
            return _raw_problem(
                Forbidden(f"{method} {resource} needs a key of scope {names}; this key has scope {scope}").problem(path)
            )
        if event.get("body"):
            ctype = ""
            for k, v in (event.get("headers") or {}).items():
                if k.lower() == "content-type":
                    ctype = (v or "").split(";")[0].strip().lower()
            if event.get("isBase64Encoded"):
                try:
                    event = {**event, "body": base64.b64decode(event["body"]).decode("utf-8"), "isBase64Encoded": False}
                except (ValueError, UnicodeDecodeError):
                    return _raw_problem(
                        MalformedRequest("the body is not UTF-8 encoded JSON").problem(path)
                    )
            if ctype != "application/json" and not ctype.endswith("+json"):
                return _raw_problem(
                    {
                        "type": PROBLEM_BASE + "unsupported-media-type",
                        "title": "Unsupported media type",
                        "status": 415,
                        "detail": "send the body as JSON with Content-Type: application/json",
                        "instance": path,
                    }
                )
            if len(event["body"].encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
                return _raw_problem(
                    {
                        "type": PROBLEM_BASE + "body-too-large",
                        "title": "The request body is too large",
                        "status": 413,
                        "detail": f"a request body may have at most {MAX_BODY_BYTES:,} bytes",
                        "instance": path,
                    }
                )
    with audit.acting(request_actor(event)):
        return app.resolve(event, context)


def parse_json_body(text: str) -> Any:
    """The request body as JSON, refused (400) when objects and arrays nest deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(text)
    except RecursionError as err:  # nesting deeper than the interpreter's recursion limit
        raise _too_deep() from err
    if json_depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    return value


def json_depth(value: Any) -> int:
    """How deep objects and arrays nest in a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _too_deep() -> MalformedRequest:
    return MalformedRequest(f"the body nests objects and arrays deeper than {MAX_JSON_DEPTH} levels")


def request_actor(event: dict[str, Any]) -> audit.Actor:
    """The audit actor of an API request: the key (id, scope), the request id and the source IP."""
    request = event.get("requestContext") or {}
    ctx = request.get("authorizer") or {}
    return audit.Actor(
        actor=ctx.get("key_id") or "anonymous",
        scope=ctx.get("scope") or "none",
        request_id=request.get("requestId") or "",
        source_ip=(request.get("identity") or {}).get("sourceIp") or "",
    )


def _raw_problem(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": body["status"],
        "headers": {"Content-Type": PROBLEM_JSON},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def header(app: APIGatewayRestResolver, name: str) -> str | None:
    headers = app.current_event.headers or {}
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def listing_cursor(cursor: str | None, prefix: str) -> str | None:
    """A next_cursor of a newest-first listing (``<created_at>#<id>``), or a 400 naming the parameter."""
    if cursor is None:
        return None
    created_at, _, item_id = cursor.rpartition("#")
    if not created_at or not ids.well_formed(item_id, prefix):
        raise MalformedRequest("cursor is the next_cursor of the previous page", field="cursor")
    return cursor


def idempotency_key(app: APIGatewayRestResolver, what: str) -> str:
    """The request's required ``Idempotency-Key`` header, or a 400 naming it."""
    key = header(app, "Idempotency-Key")
    if key is None or not 1 <= len(key) <= 255:
        raise MalformedRequest(f"send an Idempotency-Key header (1 to 255 characters) with every {what}",
                               header="Idempotency-Key")
    return key
