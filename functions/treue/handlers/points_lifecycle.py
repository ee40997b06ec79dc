"""Points over time (``treue.logic.lifecycle``), on EventBridge schedules; ``treue jobs run`` runs the same jobs.

- ``activate``: hourly, pending points whose ``occurred_at + pending_days`` has come become available.
- ``expire``: hourly, each member's points whose expiry date has passed are expired (one posting per member and
  day, exactly once; a day's members over as many runs as they take), and in the first run of each UTC day
  ``points.expiring`` is announced ``expiry_notice_days`` ahead.

"Now" is the scheduled event's ``time`` (as the tier review's), so a run re-delivered later does the same day's
work, and a test runs it as at a given day.
"""

from collections.abc import Callable
from typing import Any

from treue import runtime
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.handlers.tier_review import _now
from treue.logic import lifecycle

logger = Logger()
metrics = Metrics(namespace="Treue")


def _run(job: Callable[..., dict[str, Any]], event: dict[str, Any], context: Any, metric: str, counted: str,
         message: str, **options: Any) -> dict[str, Any]:
    """Run ``job`` as at the event's time, publish what it counted as ``metric`` and log a run that did something."""
    done = job(runtime.store(), runtime.program, _now(event),
               seconds_left=lambda: context.get_remaining_time_in_millis() / 1000, **options)
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=done[counted])
    if done["members"] or done.get("announced"):
        logger.info(message, extra={k: v for k, v in done.items() if k != "expired"})
    return done


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def activate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _run(lifecycle.run_activation, event, context, "PointsActivated", "activated_points",
                "pending points activated")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def expire(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _run(lifecycle.run_expiry, event, context, "PointsExpired", "expired_points", "points expired",
                notices=_now(event).hour == 0)
