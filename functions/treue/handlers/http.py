"""What every HTTP handler shares: its routes from the route table (``treue.routes``), request validation
from the handler's signature, problem+json errors, the caller and its scope.

An API function's module declares ``app = make_app("<function>")`` and one function per route, named as the
route's ``handler`` in the table; nothing else about a route (method, path, scopes, operation id, tag,
summary) is written in the module. A parameter's place and constraints come from its annotation:
``Annotated[int, Query(ge=1, le=100)]``, ``Annotated[str, Path(pattern=...)]``, ``Annotated[Model, Body()]``;
a bare parameter named like a ``{name}`` of the path is that path parameter. The route being called builds its
validators on its first request (pydantic TypeAdapters of its own parameters and answer), so a cold start pays
for one route, not for every route's OpenAPI model. ``treue.openapi`` builds the document from the same table
and signatures at build time.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from treue import routes
from treue.core import audit, ids
from treue.core.keys import Scope
from treue.errors import PROBLEM_BASE, Forbidden, MalformedRequest, StorageTimeout, TreueError, Unauthenticated
from treue.handlers import API_FUNCTIONS
from treue.handlers.logs import Logger
from treue.routes import Route

PROBLEM_JSON = "application/problem+json"
MAX_JSON_DEPTH = 32  # a body nesting objects and arrays deeper is a 400 (never a RecursionError 500)
MAX_BODY_BYTES = 5_000_000  # under Lambda's 6 MB payload limit, so a larger body is our 413, not a gateway error
ANY_SCOPE = routes.ANY
# A path parameter's value: one segment of these characters (as Powertools' resolver matched them before)
SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"

logger = Logger()
T = TypeVar("T")


# ---------------------------------------------------------------- what a handler declares


class Param:
    """Where a handler's parameter comes from and its constraints, as ``Annotated[type, Query(...)]``.

    ``constraints`` are pydantic Field constraints (ge, le, max_length, pattern, ...); ``alias`` is the name in
    the request when it is not the parameter's; ``description`` goes into the OpenAPI document.
    """

    location = ""

    def __init__(self, *, alias: str | None = None, description: str | None = None, **constraints: Any) -> None:
        self.alias = alias
        self.description = description
        self.constraints = constraints

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alias={self.alias!r}, {self.constraints!r})"


class Query(Param):
    location = "query"


class Path(Param):
    location = "path"


class Body(Param):
    location = "body"


class Response(Generic[T]):
    """An answer with its own status, content type, body and headers; ``Response[Model]`` documents its body."""

    def __init__(self, status_code: int, content_type: str | None = None, body: Any = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.headers: dict[str, str] = dict(headers) if headers else {}
        if content_type:
            self.headers.setdefault("Content-Type", content_type)

    def is_json(self) -> bool:
        return self.headers.get("Content-Type", "").startswith("application/json")


def responses(documented: dict[int, dict[str, Any]] | Callable[[], dict[int, dict[str, Any]]]
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document answers of a route beyond its return annotation (201/202 bodies, CSV) in the OpenAPI document;
    ``{"model": Model}`` in a content entry stands for the model's schema. ``documented`` may be a function that
    returns them, called when the document is built: the models it names then load with the document (and the
    route that answers them), not with the function. Nothing changes at run time."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        function.openapi_responses = documented  # type: ignore[attr-defined]
        return function

    return mark


class RequestInvalid(Exception):
    """Request parameters or body that fail validation: pydantic-style errors with their location."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        return self._errors


# ---------------------------------------------------------------- the request


class Headers(dict[str, str]):
    """Request headers, looked up without regard to case."""

    def __init__(self, headers: Mapping[str, str] | None) -> None:
        super().__init__((k.lower(), v) for k, v in (headers or {}).items())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class Request:
    """The API Gateway proxy event being answered."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.raw_event = event
        self.path: str = event.get("path") or ""
        self.http_method: str = (event.get("httpMethod") or "").upper()
        self.headers = Headers(event.get("headers"))
        self.path_parameters: dict[str, str] = event.get("pathParameters") or {}

    @property
    def body(self) -> str | None:
        body = self.raw_event.get("body")
        if body and self.raw_event.get("isBase64Encoded"):
            return base64.b64decode(body.encode()).decode()
        return body

    def query(self) -> dict[str, Any]:
        """The query parameters, one value each; a parameter given twice keeps both (and fails validation as a
        list), as the resolver read them before."""
        multi = self.raw_event.get("multiValueQueryStringParameters") or {}
        single = self.raw_event.get("queryStringParameters") or {}
        merged = {**single, **multi} if multi else dict(single)
        return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in merged.items()}


# ---------------------------------------------------------------- one route: its validators, built on first use


class Call:
    """A route's handler with the validators of its parameters, body and answer."""

    def __init__(self, route: Route, function: Callable[..., Any]) -> None:
        import inspect
        import typing

        from pydantic import Field, TypeAdapter

        self.function = function
        hints = typing.get_type_hints(function, include_extras=True)
        path_names = set(re.findall(r"{(\w+)}", route.path))
        # name, location, alias, validator, required, default of each parameter that is not the body
        self.params: list[tuple[str, str, str, Any, bool, Any]] = []
        self.body: tuple[str, Any] | None = None
        for p in inspect.signature(function).parameters.values():
            base, marker = annotated(hints.get(p.name, str))
            location = marker.location if marker else "path" if p.name in path_names else "query"
            if location == "body":
                self.body = (p.name, TypeAdapter(base))
                continue
            constraints = marker.constraints if marker else {}
            if location == "path" and base is str and not constraints:
                adapter = None  # a path segment is a string already: nothing to check
            else:
                adapter = TypeAdapter(typing.Annotated[base, Field(**constraints)] if constraints else base)
            alias = (marker.alias if marker else None) or p.name
            self.params.append((p.name, location, alias, adapter, p.default is inspect.Parameter.empty, p.default))
        self.params.sort(key=lambda param: param[1] != "path")  # path errors first, then query
        answer = hints.get("return")
        if typing.get_origin(answer) is Response:
            answer = typing.get_args(answer)[0]
        # no annotation, None, ``Response`` or ``Response[Any]``: the answer is the handler's as it returned it
        self.answer_type = None if answer in (None, Response, type(None), typing.Any) else answer
        self._answer: Any = None  # its TypeAdapter, made when an answer is not an instance of it

    def arguments(self, request: Request, path_values: dict[str, str]) -> dict[str, Any]:
        """The handler's arguments, validated; every failing one is listed in one RequestInvalid."""
        from pydantic import ValidationError

        values: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        query = request.query() if any(p[1] == "query" for p in self.params) else {}
        for name, location, alias, adapter, required, default in self.params:
            value = (path_values if location == "path" else query).get(alias)
            if value is None:
                if required:
                    errors.append(_missing((location, alias)))
                else:
                    values[name] = default
                continue
            try:
                values[name] = value if adapter is None else adapter.validate_python(value)
            except ValidationError as err:
                errors.extend(_located(err, (location, alias)))
        if self.body is not None:
            name, adapter = self.body
            data = _json_body(request.body)
            if data is None:
                errors.append(_missing(("body",)))
            else:
                try:
                    values[name] = adapter.validate_python(data)
                except ValidationError as err:
                    errors.extend(_located(err, ("body",)))
        if errors:
            raise RequestInvalid(errors)
        return values

    def respond(self, result: Any) -> Response[Any]:
        response = result if isinstance(result, Response) else Response(200, "application/json", result)
        if self.answer_type is not None:
            # the answer as its annotation says: a model as its JSON (by alias), a dict validated as one
            if type(response.body) is self.answer_type and hasattr(response.body, "model_dump"):
                response.body = response.body.model_dump(mode="json", by_alias=True)
            else:
                if self._answer is None:
                    from pydantic import TypeAdapter

                    self._answer = TypeAdapter(self.answer_type)
                response.body = self._answer.dump_python(
                    self._answer.validate_python(response.body, from_attributes=True), mode="json", by_alias=True)
        elif response.is_json():
            response.body = jsonable(response.body)
        return response


def annotated(annotation: Any) -> tuple[Any, Param | None]:
    import typing

    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        return base, next((x for x in extras if isinstance(x, Param)), None)
    return annotation, None


def _missing(loc: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": None}


def _located(err: Any, prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{**e, "loc": prefix + tuple(e.get("loc", ()))} for e in err.errors(include_url=False)]


def _json_body(text: str | None) -> Any:
    if not text:
        return None
    try:
        return parse_json_body(text)
    except json.JSONDecodeError as err:
        raise RequestInvalid([{"type": "json_invalid", "loc": ("body", err.pos), "msg": "JSON decode error"}]) from err


def jsonable(value: Any) -> Any:
    """A handler's JSON body in plain JSON types (models by alias, enums by value, times in ISO 8601)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    return value


# ---------------------------------------------------------------- the app: one function's routes


class App:
    """The routes of one API function, from the route table; answers an event with the route it matches."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.routes = routes.of_function(function)
        if not self.routes:
            raise ValueError(f"the route table has no route of function {function}")
        self.scopes = {(r.method, r.path): r.scopes for r in self.routes}
        self.current_event = Request({})
        self.lambda_context: Any = None
        self._patterns: list[tuple[Route, re.Pattern[str]]] | None = None
        self._calls: dict[Route, Call] = {}

    @property
    def module(self) -> Any:
        return sys.modules[f"treue.handlers.{API_FUNCTIONS[self.function]}"]

    def handler_of(self, route: Route) -> Callable[..., Any]:
        handler: Callable[..., Any] = getattr(self.module, route.handler)
        return handler

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route of ``method path`` (a route without parameters before one with) and its path values."""
        if self._patterns is None:
            ordered = sorted(self.routes, key=lambda r: "{" in r.path)
            self._patterns = [(r, _pattern(r.path)) for r in ordered]
        for route, pattern in self._patterns:
            if route.method == method and (found := pattern.match(path)):
                return route, found.groupdict()
        return None

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.current_event = request = Request(event)
        self.lambda_context = context
        try:
            found = self.match(request.http_method, request.path)
            if found is None:
                response = self._no_route()
            else:
                route, path_values = found
                call = self._calls.get(route)
                if call is None:
                    call = self._calls[route] = Call(route, self.handler_of(route))
                response = call.respond(call.function(**call.arguments(request, path_values)))
        except Exception as exc:  # noqa: BLE001 - every failure is answered as problem+json
            response = self._failed(exc)
        return _lambda_answer(response)

    def _no_route(self) -> Response[Any]:
        return problem_response(
            404,
            {
                "type": PROBLEM_BASE + "no-such-route",
                "title": "No such route",
                "status": 404,
                "detail": f"{self.current_event.http_method} {self.current_event.path} is not a route of this API",
            },
        )

    def _failed(self, exc: Exception) -> Response[Any]:
        path = self.current_event.path
        if isinstance(exc, TreueError):
            if exc.status >= 500:
                logger.warning("request failed", extra={"problem": exc.slug, "detail": exc.detail})
            return problem_response(exc.status, exc.problem(path))
        if isinstance(exc, RequestInvalid):
            return _validation_problem(path, exc.errors())
        if _is_timeout(exc):
            # an AWS call that did not answer in time: a 503 the client may retry (every write is idempotent)
            logger.warning("storage timeout", extra={"error": type(exc).__name__})
            problem = StorageTimeout("an AWS service did not answer in time; retry in a moment")
            response = problem_response(problem.status, problem.problem(path))
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


def make_app(function: str) -> App:
    """The app of one API function: its routes are ``routes.of_function(function)``, each answered by the
    function of the module named as the route's ``handler``."""
    return App(function)


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"{(\w+)}", path)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>{SEGMENT})" for i, part in enumerate(parts))
    return re.compile(f"^{regex}$")


def _lambda_answer(response: Response[Any]) -> dict[str, Any]:
    body = response.body
    if response.is_json() and not isinstance(body, str):
        body = json.dumps(body, separators=(",", ":"))
    encoded = isinstance(body, bytes)
    if encoded:
        body = base64.b64encode(body).decode()
    return {
        "statusCode": response.status_code,
        "body": body,
        "isBase64Encoded": encoded,
        "multiValueHeaders": {k: v if isinstance(v, list) else [v] for k, v in response.headers.items()
                              if v is not None},
    }


def problem_response(status: int, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body))


def _validation_problem(path: str, failed: list[dict[str, Any]]) -> Response[Any]:
    if any(e.get("type") == "json_invalid" for e in failed):
        return problem_response(
            400,
            {
                "type": PROBLEM_BASE + "malformed-request",
                "title": "The request could not be read",
                "status": 400,
                "detail": "the body is not valid JSON",
                "instance": path,
            },
        )
    errors = []
    for e in failed:
        loc = [str(p) for p in e.get("loc", ())]
        errors.append({"location": loc[0] if loc else "", "field": ".".join(loc[1:]), "reason": _message(e)})
    return problem_response(
        422,
        {
            "type": PROBLEM_BASE + "validation-failed",
            "title": "The request is not valid",
            "status": 422,
            "detail": "; ".join(f"{e['field'] or e['location']}: {e['reason']}" for e in errors),
            "instance": path,
            "errors": errors,
        },
    )


def _message(error: dict[str, Any]) -> str:
    # pydantic's messages name no Python internals; strip the "Value error, " prefix of custom checks
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _is_timeout(exc: Exception) -> bool:
    """Whether ``exc`` is botocore's "no answer in time" (the store's clients module is loaded by then;
    looking it up instead of importing keeps botocore out of the handler's import)."""
    clients = sys.modules.get("treue.store.clients")
    return clients is not None and isinstance(exc, clients.TIMEOUTS)


# ---------------------------------------------------------------- the caller


@dataclass(frozen=True)
class Caller:
    program_id: str
    key_id: str
    scope: Scope

    @property
    def actor(self) -> str:
        return f"{self.scope}:{self.key_id}"


def caller(app: App) -> Caller:
    """Who is calling, from the authorizer context only (never from the path or body)."""
    ctx = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    try:
        return Caller(program_id=ctx["program_id"], key_id=ctx["key_id"], scope=Scope(ctx["scope"]))
    except (KeyError, ValueError) as err:
        raise Unauthenticated("no authorized API key on this request") from err


def dispatch(app: App, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Check the caller's scope (the route table's scopes of the route) and the media type before validation,
    then answer with the route."""
    method, resource = event.get("httpMethod", ""), event.get("resource", "")
    allowed = app.scopes.get((method, resource))
    path = event.get("path", "")
    if allowed:
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


def header(app: App, name: str) -> str | None:
    headers: Mapping[str, str] = app.current_event.headers or {}
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


def idempotency_key(app: App, what: str) -> str:
    """The request's required ``Idempotency-Key`` header, or a 400 naming it."""
    key = header(app, "Idempotency-Key")
    if key is None or not 1 <= len(key) <= 255:
        raise MalformedRequest(f"send an Idempotency-Key header (1 to 255 characters) with every {what}",
                               header="Idempotency-Key")
    return key
