"""Payout workflow tasks: one Lambda function per step of infra/payout.asl.json.

Each handler takes the execution state ``{"program_id", "order_id", "type", "error"?}``, does its
step idempotently and returns a small result. Failures are raised as named exceptions; the state
machine matches their class names in Retry and Catch.
"""

from collections.abc import Callable
from typing import Any

from treue import runtime
from treue.core import audit
from treue.handlers.logs import Logger
from treue.handlers.tracing import Tracer
from treue.logic import payout

logger = Logger()
tracer = Tracer()


def _task(name: str, step: Callable[[dict[str, Any]], dict[str, Any]]
          ) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.append_keys(order_id=event.get("order_id"), program_id=event.get("program_id"), step=name)
        actor = audit.Actor("workflow:payout", "system", getattr(context, "aws_request_id", ""))
        with audit.acting(actor):
            result = step(event)
        if name == "release" and result.get("released", True):
            logger.warning("order failed; points released", extra={"reason": result["reason"]})
        elif name == "release":
            logger.warning("release refused: the order was delivered; nothing changed",
                           extra={"status": result["status"]})
        return result

    handler.__name__ = handler.__qualname__ = name
    return logger.inject_lambda_context(clear_state=True)(tracer.capture_lambda_handler(handler))


verify_hold = _task("verify_hold", lambda e: payout.verify_hold(runtime.orders(), e, runtime.now()))
issue_voucher = _task("issue_voucher", lambda e: payout.issue_voucher(runtime.orders(), runtime.vault(), e,
                                                                      runtime.now()))
issue_gift_card = _task("issue_gift_card", lambda e: payout.issue_gift_card(runtime.orders(), runtime.vault(),
                                                                            runtime.provider(), runtime.budgets(),
                                                                            e, runtime.now()))
record_donation = _task("record_donation", lambda e: payout.record_donation(runtime.orders(), runtime.charities(),
                                                                            runtime.budgets(), e, runtime.now()))
deliver = _task("deliver", lambda e: payout.deliver(runtime.orders(), e, runtime.now()))
capture = _task("capture", lambda e: payout.capture(runtime.orders(), e, runtime.now()))
release = _task("release", lambda e: payout.release(runtime.orders(), runtime.provider(),
                                                            runtime.budgets(), e, runtime.now()))
