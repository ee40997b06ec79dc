"""Points over time (``treue.logic.lifecycle``), on EventBridge schedules; ``treue jobs run`` runs the same jobs.

- ``activate``: hourly, pending points whose ``occurred_at + pending_days`` has come become available.
- ``expire``: daily, each member's points whose expiry date has passed are expired (one posting per member and
  day, exactly once), and ``points.expiring`` is announced ``expiry_notice_days`` ahead.

"Now" is the scheduled event's ``time`` (as the tier review's), so a run re-delivered later does the same day's
work, and a test runs it as at a given day.
"""

from typing import Any

from treue import runtime
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.handlers.tier_review import _now
from treue.logic import lifecycle

logger = Logger()
metrics = Metrics(namespace="Treue")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def activate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    done = lifecycle.run_activation(runtime.store(), runtime.program, _now(event),
                                    seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name="PointsActivated", unit=MetricUnit.Count, value=done["activated_points"])
    if done["members"]:
        logger.info("pending points activated", extra=done)
    return done


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def expire(event: dict[str, Any], context: Any) -> dict[str, Any]:
    done = lifecycle.run_expiry(runtime.store(), runtime.program, _now(event),
                                seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name="PointsExpired", unit=MetricUnit.Count, value=done["expired_points"])
    if done["members"] or done["announced"]:
        logger.info("points expired", extra={k: v for k, v in done.items() if k != "expired"})
    return done
