"""Tier review: members whose tier's ``until`` has passed keep it (they requalified) or go down (EventBridge
schedule, daily; ``treue.logic.tiers.review_due``).

"Now" is the scheduled event's ``time`` (when EventBridge fired it), so a run re-delivered later judges the same
periods, and a test runs it as at a period's end. Publishes ``TiersDowngraded`` per run.
"""

from datetime import UTC, datetime
from typing import Any

from treue import runtime
from treue.core import times
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.logic import tiers

logger = Logger()
metrics = Metrics(namespace="Treue")


def _now(event: dict[str, Any]) -> datetime:
    """The event's ``time``, or the clock when it has none (an invocation by hand)."""
    stamp = event.get("time") if isinstance(event, dict) else None
    if isinstance(stamp, str):
        try:
            moment = times.parse(stamp)
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    now = _now(event)
    counts = tiers.review_due(runtime.store(), runtime.program, now,
                              seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name="TiersDowngraded", unit=MetricUnit.Count, value=counts["downgraded"])
    if counts["due"]:
        logger.info("tiers reviewed", extra={"at": times.iso(now), **counts})
    return {"at": times.iso(now), **counts}
