"""Progress: ``points.earned`` events from the table's stream → referrals completed and milestones reached.

The stream mapping passes only new event items of type ``points.earned`` (other records are skipped here too);
``treue.logic.progress`` pays what a purchase completes or reaches, each payment exactly once, so a record
delivered again pays nothing more. A failed record is reported (ReportBatchItemFailures, by its sequence number)
and the stream retries from it, bisecting the batch; after the mapping's last retry the records go to the
progress stream-failure queue (its depth has an alarm). Each failure is logged with the record's sequence number
and counted in the ``ProgressFailures`` metric (alarmed).
"""

from typing import Any

from treue import runtime
from treue.core.statuses import EventType
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.handlers.tracing import Tracer
from treue.logic import progress
from treue.store.events import inserted_event

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event.get("Records", []):
        try:
            found = inserted_event(record, EventType.POINTS_EARNED)
            if found is None:
                continue
            program = runtime.program(found.program_id)
            done = progress.on_points_earned(runtime.store(), program, runtime.rules().in_force, found.data,
                                             runtime.now(), runtime.segments_of)
            logger.debug("progress paid", extra={"event_id": found.id, **done})
        except Exception:
            # an empty identifier makes Lambda retry the whole batch: still a retry, never a loss
            sequence = (record.get("dynamodb") or {}).get("SequenceNumber") or ""
            logger.exception("progress failed; the stream retries from this record",
                             extra={"sequence_number": sequence, "event_name": record.get("eventName")})
            metrics.add_metric(name="ProgressFailures", unit=MetricUnit.Count, value=1)
            failures.append({"itemIdentifier": sequence})
            break  # a stream is ordered: retry from the first failure on
    return {"batchItemFailures": failures}
