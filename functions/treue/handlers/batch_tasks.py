"""Batch workflow tasks: one Lambda function per step of infra/batch.asl.json.

Each handler takes ``{"program_id", "batch_id", "run", "line"?, "error"?}``, does its step
idempotently and returns a small result; failures are raised as named exceptions the state
machine's Retry/Catch match (``LineFailed`` is final, ``Contention`` and provider outages are retried).
"""

from collections.abc import Callable
from typing import Any

from treue import runtime
from treue.core import audit
from treue.errors import LineFailed
from treue.handlers.logs import Logger
from treue.handlers.tracing import Tracer
from treue.logic import batch_run

logger = Logger()
tracer = Tracer()


def deps() -> batch_run.Deps:
    return batch_run.Deps(batches=runtime.batches(), orders=runtime.orders(), budgets=runtime.budgets(),
                          vault=runtime.vault(), provider=runtime.provider(), program=runtime.program,
                          find_item=lambda item_id: runtime.catalog().get(item_id))


def _task(name: str, step: Callable[[batch_run.Deps, dict[str, Any], str], dict[str, Any]]
          ) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.append_keys(batch_id=event.get("batch_id"), program_id=event.get("program_id"),
                           line=event.get("line"), run=event.get("run"), step=name)
        actor = audit.Actor(f"workflow:batch:{event.get('batch_id')}", "system",
                            getattr(context, "aws_request_id", ""))
        with audit.acting(actor):
            try:
                return step(deps(), event, runtime.now())
            except LineFailed as err:
                logger.warning("batch line failed", extra={"reason": str(err)})
                raise

    handler.__name__ = handler.__qualname__ = name
    return logger.inject_lambda_context(clear_state=True)(tracer.capture_lambda_handler(handler))


begin = _task("begin", batch_run.begin)
issue_line = _task("issue_line", batch_run.issue_line)
fail_line = _task("fail_line", batch_run.fail_line)
finish = _task("finish", batch_run.finish)
