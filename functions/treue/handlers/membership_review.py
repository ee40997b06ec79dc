"""Membership review: paid memberships whose period ended are ended and their tier grant removed (EventBridge
schedule, daily; ``treue.logic.memberships.run_memberships``, which ``treue jobs run memberships`` calls too).

"Now" is the scheduled event's ``time`` (as the tier review's), so a run re-delivered later ends the same
memberships, and a test runs it as at a period's end. Publishes ``MembershipsEnded`` per run.
"""

from typing import Any

from treue import runtime
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.handlers.tier_review import _now
from treue.logic import memberships

logger = Logger()
metrics = Metrics(namespace="Treue")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    counts = memberships.run_memberships(runtime.store(), runtime.program, _now(event),
                                         seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name="MembershipsEnded", unit=MetricUnit.Count, value=counts["ended"])
    if counts["due"]:
        logger.info("memberships ended", extra=counts)
    return counts
