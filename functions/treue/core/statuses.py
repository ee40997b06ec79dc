"""Every closed set of statuses and kinds a record carries, as string enums: one place to read them.

A member is its own value as a string (``OrderStatus.PENDING == "PENDING"``, ``str()`` and JSON give
``"PENDING"``), so DynamoDB items, Step Functions input and API answers carry the same strings as before
and records stored earlier read back unchanged. The API's response models type their status fields with
these, so the OpenAPI document lists the allowed values. The state machines in ``infra/*.asl.json`` keep
their own strings; ``tests/unit/test_statuses.py`` checks they are members.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    """An order's, and a reward's (a reward is an order paid from the budget)::

        PENDING     points held (or the budget drawn), payout workflow started
        PROCESSING  the workflow verified the hold and is issuing the reward
        ISSUED      the reward exists (codes sealed, provider reference or donation receipt)
        COMPLETED   delivered and the held points captured
        FAILED      a terminal failure; the held points (or the budget) released
        CANCELED    a completed order undone where the reward's policy allows it; points refunded
    """

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    ISSUED = "ISSUED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


# An order's moves: the statuses each may go to
ORDER_TRANSITIONS: dict[OrderStatus, tuple[OrderStatus, ...]] = {
    OrderStatus.PENDING: (OrderStatus.PROCESSING, OrderStatus.FAILED),
    OrderStatus.PROCESSING: (OrderStatus.ISSUED, OrderStatus.FAILED),
    OrderStatus.ISSUED: (OrderStatus.COMPLETED, OrderStatus.FAILED),
    OrderStatus.COMPLETED: (OrderStatus.CANCELED,),
    OrderStatus.FAILED: (),
    OrderStatus.CANCELED: (),
}
ORDER_FINAL = (OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELED)
ORDER_IN_FLIGHT = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.ISSUED)


class VoucherState(StrEnum):
    """A voucher code's status at the till (EXPIRED is never stored: an ACTIVE code past its expiry). Named
    State, not Status: the API's VoucherStatus is the response model of a code's whole status."""

    ACTIVE = "ACTIVE"
    REDEEMED = "REDEEMED"
    VOID = "VOID"
    EXPIRED = "EXPIRED"


class IssuanceStatus(StrEnum):
    """A gift card issuance at the provider."""

    ISSUED = "ISSUED"
    CANCELED = "CANCELED"


class BatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    HALTED = "halted"


BATCH_UNFINISHED = (BatchStatus.QUEUED, BatchStatus.RUNNING)
BATCH_FINISHED = (BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_FAILURES, BatchStatus.HALTED)


class LineStatus(StrEnum):
    """A batch line's: an accepted line starts pending; a line refused at submission is rejected."""

    PENDING = "pending"
    PROCESSING = "processing"
    ISSUED = "issued"
    FAILED = "failed"
    REJECTED = "rejected"


LINE_ACCEPTED = (LineStatus.PENDING, LineStatus.PROCESSING, LineStatus.ISSUED, LineStatus.FAILED)
LINE_SETTLED = (LineStatus.ISSUED, LineStatus.FAILED, LineStatus.REJECTED)


class ReportStatus(StrEnum):
    """A report job's."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ReportType(StrEnum):
    """What a finance report job computes."""

    RECONCILIATION = "reconciliation"
    KPIS = "kpis"
    PAYOUTS = "payouts"
    JOURNAL = "journal"


class ReportFormat(StrEnum):
    """How a finance report job's result is written."""

    JSON = "json"
    CSV = "csv"


class EndpointStatus(StrEnum):
    """A webhook endpoint's health: failing after a failed delivery, active again after a success (an
    endpoint is never disabled silently)."""

    ACTIVE = "active"
    FAILING = "failing"


class MemberStatus(StrEnum):
    ACTIVE = "active"


class ReferralStatus(StrEnum):
    """A referral's: pending until the member referred makes a first purchase that earns points."""

    PENDING = "pending"
    COMPLETED = "completed"


class CatalogStatus(StrEnum):
    """A catalog item's: retired items stay readable for the orders that name them."""

    ACTIVE = "active"
    RETIRED = "retired"


class RuleStatus(StrEnum):
    """An earning rule's: a retired rule is never in force from its retired_at on, and stays readable with its
    versions."""

    ACTIVE = "active"
    RETIRED = "retired"


class SegmentStatus(StrEnum):
    """A custom segment's: a retired segment has no members from its retired_at on, and stays readable with its
    versions."""

    ACTIVE = "active"
    RETIRED = "retired"


class MembershipStatus(StrEnum):
    """A paid membership (``treue.core.memberships``): active until its period ends, then ended."""

    ACTIVE = "active"
    ENDED = "ended"


class ItemType(StrEnum):
    """What a catalog item (and so an order or a reward) is."""

    GIFT_CARD = "gift_card"
    VOUCHER = "voucher"
    CHARITY = "charity"


class EventType(StrEnum):
    """The program's event log, and what webhook endpoints subscribe to."""

    MEMBER_ENROLLED = "member.enrolled"
    POINTS_EARNED = "points.earned"
    ORDER_COMPLETED = "order.completed"
    ORDER_FAILED = "order.failed"
    REWARD_DELIVERED = "reward.delivered"
    BATCH_COMPLETED = "batch.completed"
    BUDGET_LOW = "budget.low"
    REFERRAL_COMPLETED = "referral.completed"
    MILESTONE_REACHED = "milestone.reached"
    TIER_UPGRADED = "tier.upgraded"
    TIER_DOWNGRADED = "tier.downgraded"
    ACTIVITY_RECORDED = "activity.recorded"
    MEMBERSHIP_STARTED = "membership.started"
    MEMBERSHIP_RENEWED = "membership.renewed"
    MEMBERSHIP_ENDED = "membership.ended"
    POINTS_ACTIVATED = "points.activated"
    POINTS_EXPIRING = "points.expiring"
    POINTS_EXPIRED = "points.expired"
    POINTS_REVERSED = "points.reversed"


class ExecutionStatus(StrEnum):
    """A Step Functions execution's (as DescribeExecution reports it)."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"


EXECUTION_CLOSED = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT,
                    ExecutionStatus.ABORTED)
