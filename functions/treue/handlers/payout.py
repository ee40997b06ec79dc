"""Payout workflow tasks: one Lambda function per step of infra/payout.asl.json.

Each handler takes the execution state ``{"program_id", "order_id", "type", "error"?}``, does its
step idempotently and returns a small result. Failures are raised as named exceptions; the state
machine matches their class names in Retry and Catch.
"""

from aws_lambda_powertools import Logger, Tracer

from treue import runtime
from treue.logic import payout

logger = Logger()
tracer = Tracer()


def _step(name: str, event: dict) -> None:
    logger.append_keys(order_id=event.get("order_id"), program_id=event.get("program_id"), step=name)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def verify_hold(event, context):
    _step("verify_hold", event)
    return payout.verify_hold(runtime.orders(), event, runtime.now())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def issue_voucher(event, context):
    _step("issue_voucher", event)
    return payout.issue_voucher(runtime.orders(), runtime.vault(), event, runtime.now())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def issue_gift_card(event, context):
    _step("issue_gift_card", event)
    return payout.issue_gift_card(runtime.orders(), runtime.vault(), runtime.provider(), event, runtime.now())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def record_donation(event, context):
    _step("record_donation", event)
    return payout.record_donation(runtime.orders(), event, runtime.now())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def deliver(event, context):
    _step("deliver", event)
    return payout.deliver(runtime.orders(), event, runtime.now())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def capture(event, context):
    _step("capture", event)
    return payout.capture(runtime.orders(), event, runtime.now())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def release(event, context):
    _step("release", event)
    result = payout.release(runtime.orders(), runtime.provider(), event, runtime.now())
    logger.warning("order failed; points released", extra={"reason": result["reason"]})
    return result
