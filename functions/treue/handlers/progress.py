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
from treue.core.records import Event
from treue.core.statuses import EventType
from treue.handlers.logs import Logger, Metrics
from treue.handlers.streams import consume
from treue.handlers.tracing import Tracer
from treue.logic import progress

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    def pay(found: Event) -> None:
        program = runtime.program(found.program_id)
        done = progress.on_points_earned(runtime.store(), program, runtime.rules().in_force, found.data,
                                         runtime.now(), runtime.segments_of)
        logger.debug("progress paid", extra={"event_id": found.id, **done})

    return consume(event, pay, logger=logger, metrics=metrics, what="progress", metric="ProgressFailures",
                   type_=EventType.POINTS_EARNED)
