"""Rules function: the program's earning rules for every key to read, written by admins as versions.

A function of its own, like the program's settings: it loads the rules' store and their checks
(``treue.logic.rule_admin``, ``treue.logic.rules``) and nothing of members, orders or the ledger.
"""

from typing import Annotated, Any

from treue import runtime
from treue.core.statuses import RuleStatus
from treue.handlers.http import (
    Body,
    Path,
    Query,
    Response,
    caller,
    dispatch,
    header,
    idempotency_key,
    make_app,
    responses,
)
from treue.handlers.logs import API_GATEWAY_REST, Logger
from treue.handlers.models import rules as m
from treue.handlers.tracing import Tracer
from treue.logic import rule_admin
from treue.logic.rules import RuleDefinition, Trigger

logger = Logger()
tracer = Tracer()
app = make_app("Rules")

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=200)]
RuleIdPath = Annotated[str, Path(min_length=1, max_length=64)]
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_STALE = {412: {"description": "If-Match names a version that is no longer the current one; nothing was written",
                "content": _PROBLEM}}


def _rule(status: int, rule: dict[str, Any]) -> Response[m.Rule]:
    return Response(status, "application/json", m.Rule.model_validate(rule).model_dump(mode="json"),
                    headers={"ETag": f'"{rule["version"]}"'})


@responses({201: {"description": "Created: version 1, active", "content": {"application/json": {"model": m.Rule}}},
            200: {"description": "A replay: the same Idempotency-Key and body answer the first answer",
                  "content": {"application/json": {"model": m.Rule}}}})
@tracer.capture_method
def create_rule(body: Annotated[RuleDefinition, Body()]) -> Response[m.Rule]:
    who = caller(app)
    rule, replayed = rule_admin.create(runtime.rules(), who.program_id, body, idempotency_key(app, "rule"),
                                       who.actor, runtime.now())
    logger.info("rule created" if not replayed else "rule creation replayed",
                extra={"rule_id": rule["id"], "actor": who.actor})
    answer = _rule(200 if replayed else 201, rule)
    answer.headers["Location"] = f"/v1/rules/{rule['id']}"
    return answer


@tracer.capture_method
def list_rules(status: Annotated[RuleStatus | None, Query()] = None,
               trigger: Annotated[Trigger | None, Query()] = None, limit: Limit = 50,
               cursor: Cursor = None) -> m.RulePage:
    who = caller(app)
    items, next_cursor = rule_admin.page(runtime.rules(), who.program_id, limit, cursor, status, trigger)
    return m.RulePage.model_validate({"items": items, "next_cursor": next_cursor})


@tracer.capture_method
def get_rule(rule_id: RuleIdPath) -> Response[m.RuleDetail]:
    who = caller(app)
    rule = rule_admin.detail(runtime.rules(), who.program_id, rule_id)
    return Response(200, "application/json", m.RuleDetail.model_validate(rule).model_dump(mode="json"),
                    headers={"ETag": f'"{rule["version"]}"'})


@tracer.capture_method
def get_rule_version(rule_id: RuleIdPath, version: Annotated[int, Path(ge=1, le=9_999_999_999)]) -> m.RuleVersion:
    who = caller(app)
    return m.RuleVersion.model_validate(rule_admin.version(runtime.rules(), who.program_id, rule_id, version))


@responses(_STALE)
@tracer.capture_method
def put_rule(rule_id: RuleIdPath, body: Annotated[RuleDefinition, Body()]) -> Response[m.Rule]:
    who = caller(app)
    expected = rule_admin.if_match(header(app, "If-Match"))
    rule, written = rule_admin.replace(runtime.rules(), who.program_id, rule_id, body, expected, who.actor,
                                       runtime.now())
    logger.info("rule changed" if written else "rule unchanged",
                extra={"rule_id": rule["id"], "version": rule["version"], "actor": who.actor})
    return _rule(200, rule_admin.view(rule))


@responses(_STALE)
@tracer.capture_method
def delete_rule(rule_id: RuleIdPath) -> Response[m.Rule]:
    who = caller(app)
    expected = rule_admin.if_match(header(app, "If-Match"))
    rule, retired = rule_admin.retire(runtime.rules(), who.program_id, rule_id, expected, who.actor, runtime.now())
    logger.info("rule retired" if retired else "rule already retired", extra={"rule_id": rule["id"]})
    return _rule(200, rule_admin.view(rule))


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
