"""Domain errors.

Every error the domain can raise carries a stable problem type, an HTTP status and a human title.
Handlers map them to RFC 9457 problem+json once (``treue.handlers.http``); queue consumers use
``retryable`` to decide between a retry and the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://treue.dev/problems/"


class TreueError(Exception):
    """Base class: a failure the caller can understand and act on."""

    slug = "internal"
    status = 500
    title = "Internal error"
    retryable = False

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class ValidationFailed(TreueError):
    slug = "validation-failed"
    status = 422
    title = "The request is not valid"


class MalformedRequest(TreueError):
    slug = "malformed-request"
    status = 400
    title = "The request could not be read"


class NotAcceptable(TreueError):
    slug = "not-acceptable"
    status = 406
    title = "This answer cannot be sent in the media type asked for"


class Unauthenticated(TreueError):
    slug = "unauthenticated"
    status = 401
    title = "Missing, invalid or revoked API key"


class Forbidden(TreueError):
    slug = "forbidden"
    status = 403
    title = "The API key's scope does not allow this"


class NotFound(TreueError):
    slug = "not-found"
    status = 404
    title = "Not found"


class MemberNotFound(NotFound):
    slug = "member-not-found"
    title = "No such member"


class ProgramNotFound(NotFound):
    slug = "program-not-found"
    title = "No such program"


class ProgramVersionNotFound(NotFound):
    slug = "program-version-not-found"
    title = "No such version of the program's settings"


class TiersNotConfigured(NotFound):
    slug = "tiers-not-configured"
    title = "The program has no tiers (PATCH /v1/program with tiers)"


class RuleNotFound(NotFound):
    slug = "rule-not-found"
    title = "No such earning rule"


class RuleVersionNotFound(NotFound):
    slug = "rule-version-not-found"
    title = "No such version of the earning rule"


class SegmentNotFound(NotFound):
    slug = "segment-not-found"
    title = "No such custom segment"


class SegmentVersionNotFound(NotFound):
    slug = "segment-version-not-found"
    title = "No such version of the custom segment"


class PreconditionFailed(TreueError):
    """An ``If-Match`` named a version that is no longer the current one: nothing was written."""

    slug = "precondition-failed"
    status = 412
    title = "The resource changed since the version named in If-Match"


class Conflict(TreueError):
    slug = "conflict"
    status = 409
    title = "Conflict"


class IdentifierTaken(Conflict):
    slug = "identifier-taken"
    title = "The identifier already belongs to a member"


class RuleRetired(Conflict):
    slug = "rule-retired"
    title = "The earning rule is retired: it takes no new version"


class SegmentTaken(Conflict):
    slug = "segment-taken"
    title = "A segment with this id exists with another definition"


class SegmentRetired(Conflict):
    slug = "segment-retired"
    title = "The segment is retired: it takes no new version"


class IdempotencyConflict(Conflict):
    slug = "idempotency-conflict"
    title = "This id was already used with a different request"


class ReturnExceedsPurchase(Conflict):
    slug = "return-exceeds-purchase"
    title = "The return is more than is left of the purchase"


class TransactionNotFound(NotFound):
    slug = "transaction-not-found"
    title = "No purchase of the member with this transaction_id"


class MembershipNotFound(NotFound):
    slug = "membership-not-found"
    title = "The member has no membership with this id"


class MembershipActive(Conflict):
    slug = "membership-active"
    title = "The member already has an active paid membership"


class MembershipEnded(Conflict):
    slug = "membership-ended"
    title = "The membership has ended: start a new one"


class InsufficientPoints(TreueError):
    slug = "insufficient-points"
    status = 422
    title = "Not enough available points"


class CurrencyMismatch(TreueError):
    slug = "currency-mismatch"
    status = 422
    title = "The currency does not match the program"


class Contention(TreueError):
    """Storage was too busy (throttled or a transaction conflict); safe to retry."""

    slug = "contention"
    status = 503
    title = "Busy, retry shortly"
    retryable = True


class ItemNotFound(NotFound):
    slug = "item-not-found"
    title = "No such catalog item"


class OrderNotFound(NotFound):
    slug = "order-not-found"
    title = "No such order"


class VoucherNotFound(NotFound):
    slug = "voucher-not-found"
    title = "No such voucher code"


class DonationNotFound(NotFound):
    slug = "donation-not-found"
    title = "No such donation"


class NotOrderable(TreueError):
    """The item cannot be ordered this way: country, value, quantity, delivery method or currency."""

    slug = "not-orderable"
    status = 422
    title = "The item cannot be ordered like this"


class OrderStateConflict(Conflict):
    slug = "order-state-conflict"
    title = "The order is not in a state that allows this"


class NotCancelable(Conflict):
    slug = "not-cancelable"
    title = "The order cannot be canceled"


class VoucherNotRedeemable(Conflict):
    slug = "voucher-not-redeemable"
    title = "The voucher cannot be redeemed"


class WebhookNotFound(NotFound):
    slug = "webhook-not-found"
    title = "No such webhook endpoint"


class EventNotFound(NotFound):
    slug = "event-not-found"
    title = "No such event (events are kept 90 days)"


class RewardNotFound(NotFound):
    slug = "reward-not-found"
    title = "No such reward"


class BatchNotFound(NotFound):
    slug = "batch-not-found"
    title = "No such batch"


class TooManyEndpoints(Conflict):
    slug = "too-many-endpoints"
    title = "The program has as many webhook endpoints as it may"


class BudgetTooLow(Conflict):
    slug = "insufficient-funds"
    title = "The program budget cannot pay for this"


class BatchInvalid(ValidationFailed):
    slug = "batch-invalid"
    title = "Lines of the batch are not valid"


class BatchRunning(Conflict):
    slug = "batch-running"
    title = "The batch is running"


class NothingToRetry(Conflict):
    slug = "nothing-to-retry"
    title = "Every line of the batch is issued or rejected"


class UploadNotFound(NotFound):
    slug = "upload-not-found"
    title = "No CSV was uploaded for this upload id"


class ReportTooLarge(TreueError):
    """A synchronous finance read that cannot finish within the API's time: create a report job."""

    slug = "report-too-large"
    status = 422
    title = "Too much to answer within one request; create a report job"


class ReportNotFound(NotFound):
    slug = "report-not-found"
    title = "No such report"


class StorageTimeout(TreueError):
    """DynamoDB did not answer in time (after the client's retries); safe to retry."""

    slug = "storage-timeout"
    status = 503
    title = "Storage did not answer in time"
    retryable = True

class QueueSenderNotFound(NotFound):
    slug = "queue-sender-not-found"
    title = "No such queue sender in this program"


class QueueSenderTaken(Conflict):
    slug = "queue-sender-taken"
    title = "The principal is registered as a queue sender of another program"


class UnknownQueueSender(TreueError):
    """An accrual message whose SQS SenderId is registered to no program (dead-lettered, never retried)."""

    slug = "unknown-sender"
    status = 403
    title = "The message's sender is not registered to a program"


class ProgramMismatch(TreueError):
    """An accrual message naming a program other than the one its sender is registered to."""

    slug = "program-mismatch"
    status = 403
    title = "The message names a program its sender is not registered to"


class ProviderNotAnswering(TreueError):
    """The gift-card provider timed out or is unavailable; nothing was changed, so a retry is safe."""

    slug = "provider-unavailable"
    status = 503
    title = "The reward provider did not answer; retry in a moment"
    retryable = True


# ---------------------------------------------------------------- signals between the layers
#
# Not problems for a caller: the store tells the domain that a condition failed, and the workflow task
# functions raise these by name so the state machines' Retry/Catch can match them (the error name Step
# Functions sees is the class name). None of them is a TreueError: one that escapes is a bug (a 500).


class StaleCondition(Exception):
    """A condition on one item of a transaction failed: its index among the items the caller passed,
    and the item as it was (plain values; None when DynamoDB did not return it)."""

    def __init__(self, index: int, item: dict[str, Any] | None) -> None:
        super().__init__(f"condition of extra item {index} failed")
        self.index = index
        self.item = item


class OrderNotPayable(Exception):
    """The order is not in a state this payout step can work on (e.g. already failed)."""


class HoldNotFound(Exception):
    """The member's held points do not cover the order."""


class InsufficientFunds(Exception):
    """The budget cannot pay the reward (the workflow fails the order with ``insufficient_funds``)."""


class LineFailed(Exception):
    """A batch line failed for good: its reward (if any) ended FAILED and gave its money back."""


class RunEnded(Exception):
    """The batch run this execution was started for has ended already (the sweeper or a retry ended it)."""
