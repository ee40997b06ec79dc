"""Accrual function: purchases, adjustments, balances and statements of a member."""


from typing import Annotated

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from treue import runtime
from treue.core.keys import Scope
from treue.handlers.http import ANY_SCOPE, WRITE_SCOPE, caller, dispatch, make_app
from treue.handlers.models.points import AdjustmentResult, Balance, PurchaseResult, Statement
from treue.handlers.tracing import Tracer
from treue.logic import points
from treue.logic.models import Adjustment, Purchase

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app()
# Which key scopes may call each route; checked before the request is validated.
SCOPES = {
    ("POST", "/v1/members/{member_id}/purchases"): WRITE_SCOPE,
    ("POST", "/v1/members/{member_id}/adjustments"): (Scope.ADMIN,),
    ("GET", "/v1/members/{member_id}/balance"): ANY_SCOPE,
    ("GET", "/v1/members/{member_id}/ledger"): ANY_SCOPE,
}


@app.post("/v1/members/<member_id>/purchases", operation_id="accruePurchase", tags=["Points"],
          summary="Accrue points for a purchase (exactly once per transaction_id)")
@tracer.capture_method
def purchase(member_id: str, body: Annotated[Purchase, Body()]) -> PurchaseResult:
    who = caller(app)
    result = points.accrue(
        runtime.store(), runtime.program(who.program_id), member_id, body, who.actor, runtime.now()
    )
    if not result["replayed"]:
        metrics.add_metric(name="PointsEarned", unit=MetricUnit.Count, value=result["points_earned"])
    return PurchaseResult(**result)


@app.post("/v1/members/<member_id>/adjustments", operation_id="adjustMemberPoints", tags=["Points"],
          summary="Correct a member's points (admin scope)")
@tracer.capture_method
def adjustment(member_id: str, body: Annotated[Adjustment, Body()]) -> AdjustmentResult:
    who = caller(app)
    result = points.adjust(
        runtime.store(), runtime.program(who.program_id), member_id, body, who.actor, runtime.now()
    )
    logger.info("points adjusted", extra={"member_id": member_id, "points": body.points, "actor": who.actor})
    return AdjustmentResult(**result)


@app.get("/v1/members/<member_id>/balance", operation_id="getMemberBalance", tags=["Points"],
         summary="A member's point balance")
@tracer.capture_method
def balance(member_id: str) -> Balance:
    who = caller(app)
    return Balance(**points.balance(runtime.store(), who.program_id, member_id))


@app.get("/v1/members/<member_id>/ledger", operation_id="getMemberLedger", tags=["Points"],
         summary="A member's statement, newest first")
@tracer.capture_method
def ledger(
    member_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Statement:
    who = caller(app)
    return Statement(**points.statement(runtime.store(), who.program_id, member_id, limit, cursor))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return dispatch(app, SCOPES, event, context)
