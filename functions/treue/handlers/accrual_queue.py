"""Accrual queue consumer: POS and shop systems send purchases through SQS.

Message body: ``{"member": {<one identifier>}, "purchase": {<the API body>}, "program_id"?: …}``, or an activity:
``{"member": …, "activity": {<the body of POST /v1/members/{id}/activities>}, "program_id"?: …}`` (a body with an
``activity`` key is an activity, any other a purchase), or a return:
``{"member": …, "return": {<the body of POST /v1/members/{id}/returns>}, "program_id"?: …}`` (a body with a
``return`` key).
The program is the one the message's sender is registered to (``PUT /v1/queue-senders/{principal_id}``):
SQS sets the ``SenderId`` attribute from the authenticated IAM principal, so a message cannot choose
the program it accrues in. A body naming another program is refused (``program-mismatch``), a
message from an unregistered principal too (``unknown-sender``).
The same accrual logic as the HTTP path runs, so ``transaction_id`` (an activity's ``reference``, a return's
``return_id``) is exactly-once across both.
A message that can never succeed (unknown sender, malformed, unknown program or member, conflicting
replay) is put in the DLQ with its reason and not retried; a transient failure is reported as a batch
item failure, retried after the visibility timeout and dead-lettered by the redrive policy at last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, model_validator

from treue import runtime
from treue.core import audit
from treue.errors import MemberNotFound, ProgramMismatch, TreueError, UnknownQueueSender
from treue.handlers import LazyModule
from treue.handlers.logs import Logger, Metrics, MetricUnit
from treue.handlers.tracing import Tracer
from treue.logic import awards, members, points, queue_senders
from treue.logic.models import Activity, MemberIdentifiers, Purchase, Strict
from treue.store import queues

if TYPE_CHECKING:
    from treue.logic import returns
else:
    returns = LazyModule("treue.logic.returns")  # the returns' logic and model load with the first return

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")

ACTOR = "queue:accrual"


@dataclass(frozen=True)
class SQSRecord:
    """One message of the SQS event, as the record handler reads it."""

    raw_event: dict[str, Any]

    @property
    def message_id(self) -> str:
        found: str = self.raw_event["messageId"]
        return found

    @property
    def body(self) -> str:
        found: str = self.raw_event["body"]
        return found


class BatchFailed(Exception):
    """Every message of the batch failed: the invocation fails, and SQS makes them all visible again."""


class MemberRef(MemberIdentifiers):
    qr_token: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MemberRef:
        if len(self.present()) != 1:
            raise ValueError("member names exactly one identifier (email, phone, card_number, external_id, qr_token)")
        return self


class QueuedPurchase(Strict):
    program_id: str | None = None  # optional; when given it must be the sender's program
    member: MemberRef
    purchase: Purchase


class QueuedActivity(Strict):
    program_id: str | None = None  # optional; when given it must be the sender's program
    member: MemberRef
    activity: Activity


class QueuedReturn(Strict):
    program_id: str | None = None  # optional; when given it must be the sender's program
    member: MemberRef
    return_: returns.ReturnRequest = Field(alias="return")


def _kind(body: str) -> str:
    """``activity`` or ``return`` for a message whose JSON object has that key; anything else is a purchase."""
    try:
        data = json.loads(body)
    except ValueError:
        return "purchase"
    if isinstance(data, dict):
        for kind in ("activity", "return"):
            if kind in data:
                return kind
    return "purchase"


def _is_activity(body: str) -> bool:
    """A message whose JSON object has an ``activity`` key."""
    return _kind(body) == "activity"


def _reject(record: SQSRecord, kind: str, reason: str) -> None:
    logger.warning("message dead-lettered", extra={"message_id": record.message_id, "error": kind, "reason": reason})
    metrics.add_metric(name="AccrualMessagesRejected", unit=MetricUnit.Count, value=1)
    dlq = runtime.settings().accrual_dlq_url
    if not dlq:
        raise RuntimeError("ACCRUAL_DLQ_URL is not configured; leaving the message for the redrive policy")
    queues.dead_letter(dlq, record.body, kind, reason, record.message_id)


def _sender_id(record: SQSRecord) -> str:
    """The message's ``SenderId`` system attribute: the IAM principal id SQS authenticated ("" if absent)."""
    return str((record.raw_event.get("attributes") or {}).get("SenderId") or "")


def _sender_program(record: SQSRecord) -> str:
    """The program the message's authenticated sender (its SQS ``SenderId``) is registered to."""
    sender = _sender_id(record)
    if not sender:
        raise UnknownQueueSender("the message carries no SenderId attribute")
    program_id = runtime.sender_directory().program_of(sender)
    if program_id is None:
        raise UnknownQueueSender(f"sender {queue_senders.principal_of(sender)[:80]} is not registered to a program "
                                 "(PUT /v1/queue-senders/{principal_id} with an admin key of the program)")
    return program_id


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    try:
        program_id = _sender_program(record)
    except TreueError as err:
        if err.retryable:
            raise
        _reject(record, err.slug, err.detail)
        return
    try:
        kind = _kind(record.body)
        message: QueuedPurchase | QueuedActivity | QueuedReturn
        if kind == "activity":
            message = QueuedActivity.model_validate_json(record.body)
        elif kind == "return":
            message = QueuedReturn.model_validate_json(record.body)
        else:
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
        if message.program_id is not None and message.program_id != program_id:
            raise ProgramMismatch(f"the message names program {message.program_id[:40]}; its sender "
                                  f"{queue_senders.principal_of(_sender_id(record))} is registered "
                                  f"to program {program_id}")
        program = runtime.program(program_id)
        (kind, value), = message.member.present().items()
        member = members.find(store, program.id, kind, value)
        if member is None:
            raise MemberNotFound(f"no member of program {program.id} has this {kind}")
        with audit.acting(audit.Actor(ACTOR, "system", record.message_id)):
            if isinstance(message, QueuedReturn):
                result = returns.record_return(store, program, member["id"], message.return_, ACTOR, runtime.now())
            elif isinstance(message, QueuedActivity):
                result = awards.record_activity(store, program, member["id"], message.activity, ACTOR,
                                                runtime.now(), runtime.rules().in_force,
                                                segments_of=runtime.segments_of)
            else:
                result = points.accrue(store, program, member["id"], message.purchase, ACTOR, runtime.now(),
                                       runtime.rules().in_force, runtime.segments_of)
    except TreueError as err:
        if err.retryable:
            raise
        _reject(record, err.slug, err.detail)
        return
    if result["replayed"]:
        return
    if isinstance(message, QueuedReturn):
        metrics.add_metric(name="PointsReversed", unit=MetricUnit.Count, value=result["points_reversed"])
    else:
        metrics.add_metric(name="PointsEarned", unit=MetricUnit.Count, value=result["points_earned"])


def process(records: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Each message through ``record_handler``; those that raised are reported as batch item failures
    (SQS makes them visible again; the others are deleted), and if all raised the invocation fails."""
    failed = []
    for raw in records:
        record = SQSRecord(raw)
        try:
            record_handler(record)
        except Exception:
            logger.warning("Record processing exception; skipping this record",
                           extra={"message_id": record.message_id}, exc_info=True)
            failed.append(record.message_id)
    if records and len(failed) == len(records):
        raise BatchFailed(f"All records failed processing. {len(failed)} individual errors logged separately above.")
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process(event.get("Records") or [])
