"""The route table (treue.routes) is the only declaration of the API's routes on the functions' side: each
route has its handler, each handler is a route, and the apps, scope checks and the document read the table."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import LambdaContext, api_event
from treue import openapi
from treue.handlers import API_FUNCTIONS, DOCS_FUNCTION, http, module_of
from treue.routes import ROUTES, of_function

DOCUMENT = json.loads((Path(openapi.__file__).parent / "openapi.json").read_text())
HANDLERS = Path(http.__file__).parent


def _route_functions(module) -> set[str]:
    """The public functions a handler module defines itself, but its Lambda entry point."""
    return {name for name, value in vars(module).items()
            if inspect.isfunction(value) and not name.startswith("_") and name != "handler"
            and inspect.unwrap(value).__module__ == module.__name__}


def test_every_function_of_the_table_has_a_handler_module():
    assert {r.function for r in ROUTES} == set(API_FUNCTIONS) | {DOCS_FUNCTION[0]}


@pytest.mark.parametrize("function", sorted(API_FUNCTIONS))
def test_each_route_has_its_handler_and_each_handler_is_a_route(function):
    module = module_of(function)
    assert module.app.function == function and module.app.routes == of_function(function)
    assert {r.handler for r in of_function(function)} == _route_functions(module)
    for route in of_function(function):
        handler = getattr(module, route.handler)
        names = set(inspect.signature(handler).parameters)
        # a path parameter the handler takes is named as in the path
        for name, parameter in inspect.signature(handler).parameters.items():
            base, marker = http.annotated(parameter.annotation)
            if marker is not None and marker.location == "path":
                assert f"{{{name}}}" in route.path, (route, name)
        assert names <= set(re.findall(r"{(\w+)}", route.path)) | _declared(handler), (route, names)


def _declared(handler) -> set[str]:
    """The parameters a handler declares as query or body parameters (anything else must be in the path)."""
    import typing

    hints = typing.get_type_hints(handler, include_extras=True)
    return {name for name, hint in hints.items() if name != "return" and http.annotated(hint)[1] is not None}


def test_the_docs_routes_are_served_by_the_docs_module():
    module = module_of(DOCS_FUNCTION[0])
    for route in of_function(DOCS_FUNCTION[0]):
        assert route.public and callable(getattr(module, route.handler)), route


def test_no_handler_module_declares_a_route_itself():
    """No method, path, scope, operation id, tag or summary in a handler module: those are the table's."""
    for name in API_FUNCTIONS.values():
        text = (HANDLERS / f"{name}.py").read_text()
        assert "SCOPES" not in text and "operation_id" not in text and "summary=" not in text, name
        assert not re.search(r"@app\.(get|post|put|delete|patch|route)\b", text), name
        for route in ROUTES:
            assert f'"{route.operation_id}"' not in text and f'"{route.summary}"' not in text, (name, route)


def test_the_document_has_every_api_route_of_the_table_with_its_id_tag_summary_and_scopes():
    operations = {(method.upper(), path): op for path, item in DOCUMENT["paths"].items() for method, op in item.items()}
    tags = {t["name"] for t in DOCUMENT["tags"]}
    assert len(tags) == 18  # with Memberships (issue 17)
    for route in ROUTES:
        assert route.tag in tags, route
        op = operations.get((route.method, route.path))
        if route.public and route.path != "/v1/openapi.json":
            assert op is None, route  # the reference page and its files are not operations of the API
            continue
        assert (op["operationId"], op["tags"], op["summary"]) == (route.operation_id, [route.tag], route.summary)
        assert op.get("x-treue-scopes", []) == [str(s) for s in route.scopes], route
    assert len(operations) == len([r for r in ROUTES if not r.public]) + 1


def _event(route, **parts):
    path = re.sub(r"{(\w+)}", "x1", route.path)
    event = api_event("orders/get_order.json", path=path, path_parameters={}, **parts)
    event.update(httpMethod=route.method, resource=route.path)
    return event


@pytest.mark.parametrize("scope", ["partner", "finance", "admin"])
def test_the_scope_check_reads_the_table(scope):
    auth = {"program_id": "prg_unit", "key_id": "key_unit", "scope": scope}
    for route in ROUTES:
        if route.public:
            continue
        answer = module_of(route.function).handler(_event(route, auth=auth), LambdaContext())
        refused = answer["statusCode"] == 403 and "needs a key of scope" in answer["body"]
        assert refused == (scope not in {str(s) for s in route.scopes}), (route, scope, answer)


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/vnd.treue+json", "{}"),  # a +json type passes the 415 check: read as JSON (it was a 500)
    ("application/json", '[{"email": "ada@example.com"}]'),  # a list is no object (its first item counted)
])
def test_a_body_of_another_json_type_or_a_list_is_validated_like_any_other(content_type, body):
    from treue.handlers import enrollment

    auth = {"program_id": "prg_unit", "key_id": "key_unit", "scope": "partner"}
    event = api_event("enrollment/post_member.json", body=body, headers={"Content-Type": content_type}, auth=auth)
    answer = enrollment.handler(event, LambdaContext())
    problem = json.loads(answer["body"])
    assert answer["statusCode"] == 422 and problem["errors"][0]["location"] == "body", answer


def _created() -> http.Response[Any]:
    return http.Response(201, "application/json", {"id": "x", "amount": 5})


def test_a_route_annotated_response_any_is_answered_as_it_returned_and_documents_no_model():
    """``-> Response[Any]`` (the routes that answer 201/202, or CSV or JSON) types the answer for mypy only:
    no answer model validates it, the document shows none (@responses documents those answers)."""
    call = http.Call(ROUTES[0], _created)
    assert call.answer_type is None
    assert call.respond(_created()).body == {"id": "x", "amount": 5}
    assert inspect.signature(openapi._documented(_created)).return_annotation is inspect.Signature.empty
