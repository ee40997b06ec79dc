"""Accrual function: purchases, activities, adjustments, balances and statements of a member."""


from typing import TYPE_CHECKING, Annotated, Any

from treue import runtime
from treue.handlers import LazyModule
from treue.handlers.http import Body, Query, caller, dispatch, make_app
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
from treue.logic import points
from treue.logic.models import Activity, Adjustment, Purchase, Simulation

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
    return Balance(**points.balance(runtime.store(), who.program_id, member_id))


@tracer.capture_method
def ledger(
    member_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Statement:
    who = caller(app)
    return Statement(**points.statement(runtime.store(), who.program_id, member_id, limit, cursor))


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
