"""The table stream's consumers (the webhook fan-out, the Progress function): each new event of a batch in order,
a failed record reported by its sequence number (ReportBatchItemFailures) so the stream retries from it."""

from collections.abc import Callable
from typing import Any

from treue.core.records import Event
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.store.events import inserted_event


def consume(event: dict[str, Any], handle: Callable[[Event], None], *, logger: Logger, metrics: Metrics,
            what: str, metric: str, type_: str | None = None) -> dict[str, Any]:
    """``handle`` each event the batch's records insert (of ``type_`` when given; other records are skipped);
    the first record that fails is logged (``<what> failed``), counted in ``metric`` and reported, and the
    records after it are left to the stream's retry, which starts from it: a stream is ordered."""
    failures = []
    for record in event.get("Records", []):
        try:
            found = inserted_event(record, type_)
            if found is not None:
                handle(found)
        except Exception:
            # an empty identifier makes Lambda retry the whole batch: still a retry, never a loss
            sequence = (record.get("dynamodb") or {}).get("SequenceNumber") or ""
            logger.exception(f"{what} failed; the stream retries from this record",
                             extra={"sequence_number": sequence, "event_name": record.get("eventName")})
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
            failures.append({"itemIdentifier": sequence})
            break
    return {"batchItemFailures": failures}
