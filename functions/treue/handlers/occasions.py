"""Occasions: pays birthday and membership anniversary rules (EventBridge schedule, hourly; ``treue.logic.occasions``).

The run's day is the UTC day of the scheduled event's ``time`` (the invocation's time when it has none). Each
program is walked at most once a day (and again the day one of its occasion rules changes); a run with nothing
due reads one DynamoDB partition and ends.
"""

from datetime import UTC, datetime
from typing import Any

from treue import runtime
from treue.core import times
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.logic import occasions
from treue.store.occasions import OccasionStore

logger = Logger()
metrics = Metrics(namespace="Treue")


def deps() -> occasions.Deps:
    return occasions.Deps(occasions=OccasionStore(runtime.store()), ledger=runtime.store(), program=runtime.program,
                          rules=runtime.rules().in_force, segments_of=runtime.segments_of)


def _time(event: dict[str, Any]) -> datetime:
    given = event.get("time") if isinstance(event, dict) else None
    if isinstance(given, str):
        try:
            at = times.parse(given)
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None:
            return at
    return datetime.now(UTC)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = occasions.run(deps(), _time(event), runtime.now,
                           seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name="OccasionAwards", unit=MetricUnit.Count, value=report.birthdays + report.anniversaries)
    if report.walked or report.failed or report.deferred:
        logger.info("occasions paid", extra={"report": report.to_json()})
    return report.to_json()
