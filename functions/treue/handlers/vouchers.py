"""Vouchers function: the till validates, redeems (exactly once) and voids voucher codes."""


from typing import Annotated, Any

from treue import runtime
from treue.handlers.http import Body, caller, dispatch, make_app
from treue.handlers.logs import API_GATEWAY_REST, Logger, Metrics, MetricUnit
from treue.handlers.models.vouchers import VoucherRedeemed, VoucherStatus
from treue.handlers.tracing import Tracer
from treue.logic import vouchers
from treue.logic.models import VoucherLookup, VoucherRedemption, VoucherVoid

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app("Vouchers")


@tracer.capture_method
def validate(body: Annotated[VoucherLookup, Body()]) -> VoucherStatus:
    who = caller(app)
    return VoucherStatus(**vouchers.validate(runtime.orders(), runtime.vault(), who.program_id, body.code,
                                             runtime.now()))


@tracer.capture_method
def redeem(body: Annotated[VoucherRedemption, Body()]) -> VoucherRedeemed:
    who = caller(app)
    out = vouchers.redeem(runtime.orders(), runtime.vault(), who.program_id, body, who.actor, runtime.now())
    if not out["replayed"]:
        metrics.add_metric(name="VouchersRedeemed", unit=MetricUnit.Count, value=1)
    logger.info("voucher redeemed", extra={"order_id": out["order_id"], "code": out["code"]})
    return VoucherRedeemed(**out)


@tracer.capture_method
def void(body: Annotated[VoucherVoid, Body()]) -> VoucherStatus:
    who = caller(app)
    out = vouchers.void(runtime.orders(), runtime.vault(), who.program_id, body.code, body.reason, who.actor,
                        runtime.now())
    logger.info("voucher voided", extra={"order_id": out["order_id"], "code": out["code"], "actor": who.actor})
    return VoucherStatus(**out)


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
