"""Webhook fan-out: new events from the table's stream → one delivery message per subscribed endpoint.

The stream's filter passes only new items with ``kind = "event"``; other records are skipped here too.
A failed record is reported (ReportBatchItemFailures, by its sequence number) and the stream retries
from it, bisecting the batch; after the mapping's last retry the records go to the stream-failure queue
(its depth has an alarm). Each failure is logged with the record's sequence number and counted in the
``WebhookFanoutFailures`` metric (alarmed): the function itself does not error, so its Errors metric
never shows them. Receivers deduplicate by event id, because a retried batch may queue a delivery twice.
"""

from typing import Any

from treue import runtime
from treue.core.records import WebhookEndpoint
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.handlers.tracing import Tracer
from treue.logic import webhooks
from treue.store import queues
from treue.store.events import inserted_event

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    endpoints: dict[str, list[WebhookEndpoint]] = {}
    for record in event.get("Records", []):
        try:
            found = inserted_event(record)
            if found is None:
                continue
            pid = found.program_id
            if pid not in endpoints:
                endpoints[pid] = runtime.webhooks().list(pid)
            messages = webhooks.fan_out(endpoints[pid], found)
            if messages:
                queues.send_all(runtime.required("webhook_queue_url"), messages)
            logger.debug("event fanned out", extra={"event_id": found.id, "deliveries": len(messages)})
        except Exception:
            # an empty identifier makes Lambda retry the whole batch: still a retry, never a loss
            sequence = (record.get("dynamodb") or {}).get("SequenceNumber") or ""
            logger.exception("fan-out failed; the stream retries from this record",
                             extra={"sequence_number": sequence, "event_name": record.get("eventName")})
            metrics.add_metric(name="WebhookFanoutFailures", unit=MetricUnit.Count, value=1)
            failures.append({"itemIdentifier": sequence})
            break  # a stream is ordered: retry from the first failure on
    return {"batchItemFailures": failures}
