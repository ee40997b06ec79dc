"""Sweeper: settles orders, rewards and batches left open by a function or workflow that died
(EventBridge schedule, every 5 minutes; ``treue.logic.sweeper``).

Publishes ``StuckOrdersFound`` (orders and rewards never started or whose execution ended before
them) and ``StuckBatchesFound`` per run; a healthy system reports 0.
"""

from typing import Any

from treue import runtime
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.logic import sweeper

logger = Logger()
metrics = Metrics(namespace="Treue")


def deps() -> sweeper.Deps:
    return sweeper.Deps(watchlist=runtime.watchlist(), orders=runtime.orders(), batches=runtime.batches(),
                        budgets=runtime.budgets(), provider=runtime.provider(), files=runtime.batch_files(),
                        payouts=runtime.starter(), batch_runs=runtime.batch_starter())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = sweeper.sweep(deps(), runtime.now(),
                           seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    orders, batches = sweeper.stuck_orders(report), sweeper.stuck_batches(report)
    metrics.add_metric(name="StuckOrdersFound", unit=MetricUnit.Count, value=orders)
    metrics.add_metric(name="StuckBatchesFound", unit=MetricUnit.Count, value=batches)
    if orders or batches or report.get("deferred"):
        logger.warning("stuck records settled", extra={"report": report})
    return {"report": report, "stuck_orders": orders, "stuck_batches": batches}
