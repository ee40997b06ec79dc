"""Accrual queue consumer: POS and shop systems send purchases through SQS.

Message body: ``{"program_id": …, "member": {<one identifier>}, "purchase": {<the API body>}}``.
The same accrual logic as the HTTP path runs, so ``transaction_id`` is exactly-once across both.
A message that can never succeed (malformed, unknown program or member, conflicting replay) is put
in the DLQ with its reason and not retried; a transient failure is reported as a batch item
failure, retried after the visibility timeout and dead-lettered by the redrive policy at last.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError, model_validator

from treue import runtime
from treue.errors import MemberNotFound, TreueError
from treue.logic import audit, members, points
from treue.logic.models import MemberIdentifiers, Purchase, Strict

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
processor = BatchProcessor(event_type=EventType.SQS)

ACTOR = "queue:accrual"


class MemberRef(MemberIdentifiers):
    qr_token: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MemberRef:
        if len(self.present()) != 1:
            raise ValueError("member names exactly one identifier (email, phone, card_number, external_id, qr_token)")
        return self


class QueuedPurchase(Strict):
    program_id: str
    member: MemberRef
    purchase: Purchase


def _reject(record: SQSRecord, kind: str, reason: str) -> None:
    logger.warning("message dead-lettered", extra={"message_id": record.message_id, "error": kind, "reason": reason})
    metrics.add_metric(name="AccrualMessagesRejected", unit=MetricUnit.Count, value=1)
    from treue.store import queues

    dlq = runtime.settings().accrual_dlq_url
    if not dlq:
        raise RuntimeError("ACCRUAL_DLQ_URL is not configured; leaving the message for the redrive policy")
    queues.dead_letter(dlq, record.body, kind, reason, record.message_id)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    try:
        message = QueuedPurchase.model_validate_json(record.body)
    except ValidationError as err:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        )
        _reject(record, "malformed-message", reasons)
        return
    store = runtime.store()
    try:
        program = runtime.program(message.program_id)
        (kind, value), = message.member.present().items()
        member = members.find(store, program.id, kind, value)
        if member is None:
            raise MemberNotFound(f"no member of program {program.id} has this {kind}")
        with audit.acting(audit.Actor(ACTOR, "system", record.message_id)):
            result = points.accrue(store, program, member["id"], message.purchase, ACTOR, runtime.now())
    except TreueError as err:
        if err.retryable:
            raise
        _reject(record, err.slug, err.detail)
        return
    if not result["replayed"]:
        metrics.add_metric(name="PointsEarned", unit=MetricUnit.Count, value=result["points_earned"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
