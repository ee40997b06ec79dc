"""Accrual function: purchases, activities, adjustments, balances and statements of a member."""


from typing import TYPE_CHECKING, Annotated, Any, Literal

from treue import runtime
from treue.errors import NotAcceptable
from treue.handlers import LazyModule
from treue.handlers.http import Body, Query, Response, caller, dispatch, header, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger, Metrics, MetricUnit
from treue.handlers.models.points import (
    ActivityResult,
    AdjustmentResult,
    Balance,
    PurchaseResult,
    Simulated,
    Statement,
)
from treue.handlers.tracing import Tracer
from treue.logic import points, statements
from treue.logic.models import Activity, Adjustment, Purchase, Simulation
from treue.routes import BINARY_MEDIA_TYPES

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app("Accrual")


@tracer.capture_method
def purchase(member_id: str, body: Annotated[Purchase, Body()]) -> PurchaseResult:
    who = caller(app)
    result = points.accrue(
        runtime.store(), runtime.program(who.program_id), member_id, body, who.actor, runtime.now(),
        runtime.rules().in_force, runtime.segments_of
    )
    if not result["replayed"]:
        metrics.add_metric(name="PointsEarned", unit=MetricUnit.Count, value=result["points_earned"])
    return PurchaseResult(**result)


@tracer.capture_method
def simulate(body: Annotated[Simulation, Body()]) -> Simulated:
    who = caller(app)
    return Simulated(**points.simulate(runtime.store(), runtime.program(who.program_id), body.member_id,
                                       body.purchase(), runtime.rules().in_force, runtime.segments_of))


@tracer.capture_method
def activity(member_id: str, body: Annotated[Activity, Body()]) -> ActivityResult:
    from treue.logic import awards  # cold start: the awards of other triggers load on the first activity

    who = caller(app)
    result = awards.record_activity(runtime.store(), runtime.program(who.program_id), member_id, body, who.actor,
                                    runtime.now(), runtime.rules().in_force, segments_of=runtime.segments_of)
    if not result["replayed"]:
        metrics.add_metric(name="PointsEarned", unit=MetricUnit.Count, value=result["points_earned"])
    return ActivityResult(**result)


@tracer.capture_method
def adjustment(member_id: str, body: Annotated[Adjustment, Body()]) -> AdjustmentResult:
    who = caller(app)
    result = points.adjust(
        runtime.store(), runtime.program(who.program_id), member_id, body, who.actor, runtime.now()
    )
    logger.info("points adjusted", extra={"member_id": member_id, "points": body.points, "actor": who.actor})
    return AdjustmentResult(**result)


@tracer.capture_method
def balance(member_id: str) -> Balance:
    who = caller(app)
    expires = runtime.program(who.program_id).expiry_policy() is not None
    return Balance(**points.balance(runtime.store(), who.program_id, member_id, expires))


@tracer.capture_method
def ledger(
    member_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Statement:
    who = caller(app)
    return Statement(**statements.entries(runtime.store(), who.program_id, member_id, limit, cursor))


MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
CSV = "text/csv"
PDF = "application/pdf"


def _statement_answers() -> dict[int, dict[str, Any]]:
    """The statement's answers in the OpenAPI document (its models load with the document, not the function)."""
    from treue.handlers.models.statements import MonthlyStatement

    return {
        200: {"description": "The month's statement: JSON; CSV with Accept: text/csv or format=csv (an opening row, "
                             "the entries, a closing row); a PDF for the member with Accept: application/pdf, in "
                             "English or German (lang, else Accept-Language). API Gateway sends the PDF's bytes only "
                             "to a request whose first Accept type is application/pdf; format=pdf with another first "
                             "Accept type is a 406.",
              "content": {"application/json": {"model": MonthlyStatement}, CSV: {"schema": {"type": "string"}},
                          PDF: {"schema": {"type": "string", "format": "binary"}}}},
        406: {"description": "format=pdf, but the first Accept type is not application/pdf: API Gateway would send "
                             "the PDF as base64 text",
              "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    }


@responses(_statement_answers)
@tracer.capture_method
def statement(
    member_id: str,
    month: Annotated[str, Query(pattern=MONTH, description="The calendar month (UTC) as YYYY-MM: this month or "
                                                           "an earlier one")],
    output: Annotated[Literal["json", "csv", "pdf"] | None, Query(
        alias="format", description="json, csv or pdf; without it the Accept header decides (JSON by default)")] = None,
    lang: Annotated[Literal["en", "de"] | None, Query(
        description="The PDF's language; without it the Accept-Language header, else the program's country")] = None,
) -> Response[Any]:
    from datetime import UTC, datetime

    who = caller(app)
    accept = (header(app, "Accept") or "").lower()
    kind = output or _wanted(accept)
    if kind == "pdf" and not _binary_accepted(accept):
        raise NotAcceptable(f"send Accept: {PDF} for the PDF: API Gateway sends its bytes only to a request whose "
                            f"first Accept type is {PDF}")
    program = runtime.program(who.program_id)
    data = statements.monthly(runtime.store(), program, member_id, month, datetime.now(UTC))
    if kind == "json":
        from treue.handlers.models.statements import MonthlyStatement  # the statement's models load with it only

        return Response(200, "application/json", MonthlyStatement.model_validate(data).model_dump(mode="json"))
    from treue.logic import statement_files  # the CSV and PDF writers load only for those answers

    if kind == "csv":
        return Response(200, "text/csv; charset=utf-8", statement_files.to_statement_csv(data), headers={
            "Content-Disposition": f'attachment; filename="{statement_files.file_name(data, "csv")}"'})
    language = statement_files.language(lang, header(app, "Accept-Language"), program.country)
    pdf = statement_files.to_pdf(data, language, runtime.now())
    metrics.add_metric(name="StatementPdfs", unit=MetricUnit.Count, value=1)
    return Response(200, PDF, pdf, headers={
        "Content-Disposition": f'inline; filename="{statement_files.file_name(data, "pdf")}"',
        "Content-Language": language})


def _wanted(accept: str) -> str:
    """json, csv or pdf: the media type of ours the Accept header weighs highest (the first of equals); JSON
    without one."""
    kinds = {"application/json": "json", CSV: "csv", PDF: "pdf"}
    best, weight = "json", 0.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in kinds and q > weight:
            best, weight = kinds[media], q
    return best


def _binary_accepted(accept: str) -> bool:
    """Whether API Gateway decodes a base64 answer for this request: its first Accept type is one of the API's
    binary media types (``treue.routes.BINARY_MEDIA_TYPES``)."""
    first = accept.split(",")[0].split(";")[0].strip()
    return first in BINARY_MEDIA_TYPES


class _TierModels:
    """``treue.handlers.models.tiers``, imported when the tier route's answer type is first read (its validator
    is built on the first call; the OpenAPI build reads it too): the models cost nothing at cold start."""

    def __getattr__(self, name: str) -> Any:
        from treue.handlers.models import tiers

        return getattr(tiers, name)


if TYPE_CHECKING:
    from treue.handlers.models import tiers as tier_models
else:
    tier_models = _TierModels()


@tracer.capture_method
def member_tier(member_id: str) -> "tier_models.MemberTier":
    from datetime import UTC, datetime

    from treue.logic import tiers  # cold start: tier code loads on the first tier read

    who = caller(app)
    # the settings as they are now (one read), not as cached for accrual: tiers just set show at once
    program = runtime.store().get_program(who.program_id) or runtime.program(who.program_id)
    return tier_models.MemberTier(**tiers.status(runtime.store(), program, member_id, datetime.now(UTC)))


if TYPE_CHECKING:
    from treue.handlers.models import returns as return_models
    from treue.logic import returns
else:
    return_models = LazyModule("treue.handlers.models.returns")
    returns = LazyModule("treue.logic.returns")


@tracer.capture_method
def member_return(member_id: str, body: Annotated["returns.ReturnRequest", Body()]) -> "return_models.ReturnResult":
    who = caller(app)
    result = returns.record_return(runtime.store(), runtime.program(who.program_id), member_id, body, who.actor,
                                   runtime.now())
    if not result["replayed"]:
        metrics.add_metric(name="PointsReversed", unit=MetricUnit.Count, value=result["points_reversed"])
    return return_models.ReturnResult(**result)


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
