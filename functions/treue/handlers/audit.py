"""Audit sealer: chains the audit records written since the last run (EventBridge schedule, every minute)."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from treue import runtime

logger = Logger()
metrics = Metrics(namespace="Treue")


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event, context):
    sealed = runtime.audit_trail().seal_pending()
    total = sum(sealed.values())
    metrics.add_metric(name="AuditRecordsSealed", unit=MetricUnit.Count, value=total)
    if total:
        logger.info("audit records sealed", extra={"programs": len(sealed), "records": total})
    return {"sealed": sealed}
