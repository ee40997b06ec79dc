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
from treue.core.records import Event, WebhookEndpoint
from treue.handlers.logs import Logger, Metrics
from treue.handlers.streams import consume
from treue.handlers.tracing import Tracer
from treue.logic import webhooks
from treue.store import queues

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    endpoints: dict[str, list[WebhookEndpoint]] = {}

    def fan_out(found: Event) -> None:
        pid = found.program_id
        if pid not in endpoints:
            endpoints[pid] = runtime.webhooks().list(pid)
        messages = webhooks.fan_out(endpoints[pid], found)
        if messages:
            queues.send_all(runtime.required("webhook_queue_url"), messages)
        logger.debug("event fanned out", extra={"event_id": found.id, "deliveries": len(messages)})

    return consume(event, fan_out, logger=logger, metrics=metrics, what="fan-out", metric="WebhookFanoutFailures")
