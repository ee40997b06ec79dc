"""Audit sealer: chains the audit records written since the last run (EventBridge schedule, every minute).

One run seals for as long as its time allows (its Lambda timeout less ``MARGIN_SECONDS``), a turn per
program in random rotation (``treue.core.audit.seal_round_robin``), so a large backlog is worked off
within a run and no program's records wait behind another's.
"""

import time
from typing import Any

from treue import runtime
from treue.core import audit
from treue.handlers.logs import Logger, Metrics, MetricUnit

logger = Logger()
metrics = Metrics(namespace="Treue")
MARGIN_SECONDS = 10.0  # a turn (a query, a read and up to 5 transactions) ends well within this
MAX_RECORDS_PER_RUN = 200_000


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS
    started = time.monotonic()
    sealed = audit.seal_round_robin(runtime.audit_trail(), max_records=MAX_RECORDS_PER_RUN,
                                    time_left=lambda: deadline - time.monotonic())
    total = sum(sealed.values())
    metrics.add_metric(name="AuditRecordsSealed", unit=MetricUnit.Count, value=total)
    if total:
        logger.info("audit records sealed", extra={"programs": len(sealed), "records": total,
                                                   "seconds": round(time.monotonic() - started, 3)})
    return {"sealed": sealed}
