"""Program function: the program's settings as partners read them, their changes (admin) as versions.

No other function owns programs (they are created by the CLI; Enrollment, Accrual and Catalog only read them
through ``runtime.program``), so the settings and their history are a function of their own: it loads the
program store and logic and nothing of members, orders or the ledger.
"""

from typing import Annotated, Any

from treue import runtime
from treue.handlers.http import Body, Path, Query, Response, caller, dispatch, header, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger
from treue.handlers.models import program as m
from treue.handlers.tracing import Tracer
from treue.logic import program
from treue.logic.settings import ProgramPatch

logger = Logger()
tracer = Tracer()
app = make_app("Program")

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=200)]


def _settings(settings: dict[str, Any]) -> Response[m.ProgramSettings]:
    return Response(200, "application/json", settings, headers={"ETag": f'"{settings["version"]}"'})


@tracer.capture_method
def get_program() -> Response[m.ProgramOverview]:
    who = caller(app)
    settings = program.view(program.require(runtime.programs(), who.program_id))
    rules = [rule.model_dump(mode="json") for rule in runtime.rules().in_force(who.program_id, runtime.now())]
    return Response(200, "application/json", {**settings, "rules": rules},
                    headers={"ETag": f'"{settings["version"]}"'})


@responses({412: {"description": "If-Match names a version that is no longer the current one; nothing was written",
                  "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}})
@tracer.capture_method
def patch_program(body: Annotated[ProgramPatch, Body()]) -> Response[m.ProgramSettings]:
    who = caller(app)
    expected = program.if_match(header(app, "If-Match"))
    settings, written = program.change(runtime.programs(), who.program_id, body, expected, who.actor, runtime.now())
    logger.info("program settings changed" if written else "program settings unchanged",
                extra={"version": settings.version, "actor": who.actor})
    return _settings(program.view(settings))


@tracer.capture_method
def list_versions(limit: Limit = 50, cursor: Cursor = None) -> m.ProgramVersionPage:
    who = caller(app)
    items, next_cursor = program.versions(runtime.programs(), who.program_id, limit, cursor)
    return m.ProgramVersionPage.model_validate({"items": items, "next_cursor": next_cursor})


@tracer.capture_method
def get_version(version: Annotated[int, Path(ge=1, le=9_999_999_999)]) -> m.ProgramVersion:
    who = caller(app)
    return m.ProgramVersion.model_validate(program.version(runtime.programs(), who.program_id, version))


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
