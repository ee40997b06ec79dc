"""Orders function: place redemption orders, read them, cancel them, reveal codes; donation receipts."""


from typing import Annotated, Any

from treue import runtime
from treue.core import ids
from treue.errors import DonationNotFound, OrderNotFound
from treue.handlers.http import Body, Query, Response, caller, dispatch, idempotency_key, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger, Metrics, MetricUnit
from treue.handlers.models.orders import (
    Donation,
    DonationTotals,
    Order,
    OrderAccepted,
    OrderList,
    RevealedCodes,
)
from treue.handlers.tracing import Tracer
from treue.logic import members, orders
from treue.logic.models import CancelRequest, OrderRequest

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app("Orders")


def _order_id(order_id: str) -> str:
    if not ids.well_formed(order_id, "ord"):
        raise OrderNotFound(f"order {order_id[:40]} does not exist")
    return order_id


@responses({202: {"description": "Accepted; the payout workflow runs"}})
@tracer.capture_method
def place(body: Annotated[OrderRequest, Body()]) -> Response[OrderAccepted]:
    who = caller(app)
    key = idempotency_key(app, "order")
    answer, replayed = orders.place(
        runtime.orders(), runtime.starter(), runtime.program(who.program_id), runtime.catalog().get,
        body, key, who.actor, runtime.now(), budgets=runtime.budgets() if body.payment else None,
    )
    if not replayed:
        metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="PointsHeld", unit=MetricUnit.Count, value=answer["points"])
    logger.info("order placed", extra={"order_id": answer["order_id"], "replayed": replayed})
    return Response(
        status_code=202,
        content_type="application/json",
        body=OrderAccepted(**answer, replayed=replayed),
        headers={"Location": f"/v1/orders/{answer['order_id']}"},
    )


@tracer.capture_method
def get_order(order_id: str) -> Order:
    who = caller(app)
    return Order(**orders.view(runtime.orders().require(who.program_id, _order_id(order_id))))


@tracer.capture_method
def cancel(order_id: str, body: Annotated[CancelRequest, Body()]) -> Order:
    who = caller(app)
    out = orders.cancel(runtime.orders(), runtime.provider(), runtime.budgets(), _order_id(order_id),
                        who.program_id, body.reason, who.actor, runtime.now())
    logger.info("order canceled", extra={"order_id": order_id, "actor": who.actor})
    return Order(**out)


@tracer.capture_method
def codes(order_id: str) -> RevealedCodes:
    who = caller(app)
    out = orders.reveal(runtime.orders(), runtime.vault(), who.program_id, _order_id(order_id), who.actor,
                        runtime.now())
    logger.info("codes revealed", extra={"order_id": order_id, "actor": who.actor, "codes": len(out["codes"])})
    return RevealedCodes(**out)


@tracer.capture_method
def member_orders(
    member_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> OrderList:
    who = caller(app)
    store = runtime.orders()
    found, next_cursor = store.list_for_member(who.program_id, members.require_id(member_id), limit, cursor)
    if not found and cursor is None:
        members.get(runtime.store(), who.program_id, member_id)  # 404 for an unknown member
    return OrderList(items=[Order(**orders.view(o)) for o in found], next_cursor=next_cursor)


@tracer.capture_method
def donation_totals() -> DonationTotals:
    who = caller(app)
    totals = runtime.orders().donation_totals(who.program_id)
    return DonationTotals.model_validate({"charities": [t.item() for t in totals]})


@tracer.capture_method
def donation(donation_id: str) -> Donation:
    who = caller(app)
    found = None
    if ids.well_formed(donation_id, "don"):
        found = runtime.orders().get_donation(who.program_id, donation_id)
    if found is None:
        raise DonationNotFound(f"donation {donation_id[:40]} does not exist")
    return Donation(**found.item())


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
