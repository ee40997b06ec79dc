"""Report worker: computes finance report jobs (``POST /v1/finance/reports``) from the report queue.

Each message names (program, report, step). The worker reads pages while its invocation has more than
``RESERVE_MS`` left, then either writes the result to S3 and marks the report completed, or saves the
state so far to S3, checkpoints the report's progress and queues the next step (see
``treue.logic.report_jobs.work``). A duplicate message changes nothing. A failure is retried by the
queue; the last attempt (``REPORT_ATTEMPTS``, the queue's maxReceiveCount) marks the report failed
with its reason, as does a failure that no retry can mend.
"""

import json
import secrets
from typing import Any

from treue import runtime
from treue.errors import TreueError
from treue.handlers import report_views
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.handlers.tracing import Tracer
from treue.logic import report_jobs

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
RESERVE_MS = 30_000  # keep this much time (and the slowest page) for saving the state, the checkpoint, the next message
REPORT_ATTEMPTS = 3  # the report queue's maxReceiveCount (infra/components.py ReportJobs)


def _step(record: dict[str, Any], context: Any) -> str:
    message = json.loads(record["body"])
    program_id, report_id, step = message["program_id"], message["report_id"], int(message["step"])
    jobs, files, queue = runtime.report_jobs()
    reserve = min(RESERVE_MS, context.get_remaining_time_in_millis() // 4)
    try:
        outcome = report_jobs.work(jobs, files, queue, report_views.sources(program_id), report_views.render,
                                   program_id, report_id, step, runtime.settings().report_page_size,
                                   report_jobs.time_budget(context.get_remaining_time_in_millis, reserve),
                                   runtime.now(),
                                   secrets.token_hex(4))
    except Exception as err:
        attempt = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
        final = (isinstance(err, TreueError) and not err.retryable) or attempt >= REPORT_ATTEMPTS
        reason = err.detail if isinstance(err, TreueError) else f"{type(err).__name__}: {err}"
        logger.exception("report step failed", extra={"report_id": report_id, "step": step, "attempt": attempt,
                                                      "final": final})
        if not final:
            raise
        jobs.fail(program_id, report_id, f"{reason} (step {step}, attempt {attempt})", runtime.now())
        metrics.add_metric(name="ReportsFailed", unit=MetricUnit.Count, value=1)
        return "failed"
    logger.info("report step", extra={"report_id": report_id, "step": step, "outcome": outcome})
    if outcome == "completed":
        metrics.add_metric(name="ReportsCompleted", unit=MetricUnit.Count, value=1)
    return outcome


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event.get("Records", []):
        try:
            _step(record, context)
        except Exception:  # noqa: BLE001 - logged in _step; the queue delivers the message again
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
