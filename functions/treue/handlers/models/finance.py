"""Finance: budget, payouts, journal, balances, reconciliation, KPIs, audit trail and report jobs: response models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from treue.core.ledger import PostingType
from treue.core.money import MovementType
from treue.core.statuses import ItemType, OrderStatus, ReportFormat, ReportStatus, ReportType
from treue.handlers.models import Model


class Amount(Model):
    value: int = Field(description="Integer minor units")
    currency: str


class CashRefundRecorded(Model):
    order_id: str
    amount: Amount = Field(description="The cash refunded: what the order owed back")
    reference: str = Field(description="Your reference of the refund")
    till_reference: str = Field(description="The till's receipt id of the cash the order was paid with")
    refunded_at: str
    movement_id: str = Field(description="The budget movement cash:owed_back → cash:received")
    replayed: bool = False


class FundingRecorded(Model):
    funding_id: str
    amount: Amount
    reference: str
    created_at: str
    replayed: bool = False


class BudgetBalance(Model):
    currency: str
    available: int = Field(description="budget:available, minor units")
    held: int = Field(description="budget:held: set aside for the lines of accepted batches, not paid out yet")
    funded: int = Field(description="Everything ever funded (the negated budget:fundings account)")
    paid_face_value: int = Field(description="payouts:face")
    paid_fees: int = Field(description="payouts:fees")
    cash_received: int = Field(default=0, description="Cash members paid at the tills for points + cash orders, "
                                                      "received into the budget (the negated cash:received)")
    cash_owed_back: int = Field(default=0, description="cash:owed_back: the cash of points + cash orders that "
                                                       "failed or were canceled, owed back to the members (until "
                                                       "finance records each refund)")
    low_balance_threshold: int
    low: bool = Field(description="available is below the threshold")


class BudgetMovement(Model):
    id: str
    created_at: str
    type: MovementType = Field(description="funding | draw | return | hold | release | cash | cash_owed_back | "
                                           "cash_refunded")
    currency: str
    debit: str
    credit: str
    amount: int
    order_id: str | None = None
    reference: str
    actor: str


class Budget(Model):
    budgets: list[BudgetBalance]
    movements: list[BudgetMovement]
    next_cursor: str | None = None


class Payout(Model):
    order_id: str
    created_at: str
    status: OrderStatus
    type: ItemType
    item_id: str
    item_name: str
    member_id: str | None = Field(default=None, description="None for a reward sent to a non-member")
    quantity: int
    face_value: int = Field(description="Face value of all units, minor units of currency")
    fee: int = Field(description="Provider fee, minor units of currency")
    currency: str
    points: int
    provider: str | None = None
    provider_reference: str | None = Field(default=None, description="Provider reference or donation receipt id")
    failure_reason: str | None = None
    completed_at: str | None = None
    cash_value: int | None = Field(default=None, description="Points + cash: the cash part the till took, minor "
                                                             "units of currency (null: points only)")
    cash_reference: str | None = Field(default=None, description="Points + cash: the till's receipt id")
    cash_owed_back: int | None = Field(default=None, description="Points + cash: the cash still owed back to the "
                                                                 "member (the order failed or was canceled and "
                                                                 "finance has not recorded its refund; else 0)")
    cash_refunded: int | None = Field(default=None, description="Points + cash: the owed-back cash finance refunded "
                                                                "(POST /v1/finance/cash-refunds; else 0)")


class PayoutList(Model):
    items: list[Payout]
    next_cursor: str | None = None


class JournalLine(Model):
    id: str
    created_at: str
    type: PostingType | MovementType = Field(
        description="A posting's type (unit: points) or a budget movement's (unit: its currency)")
    unit: str = Field(description="points, or the currency of a budget movement")
    debit: str
    credit: str
    amount: int
    member_id: str | None = None
    order_id: str | None = None
    reference: str | None = None
    reason: str | None = None
    actor: str | None = None


class Journal(Model):
    items: list[JournalLine]
    next_cursor: str | None = None


class AccountBalance(Model):
    account: str
    balance: int


class UnitBalance(Model):
    unit: str = Field(description="points, or a currency")
    accounts: list[AccountBalance]
    total: int = Field(description="Always 0 on a healthy system")


class TrialBalance(Model):
    as_of: str
    units: list[UnitBalance]
    balanced: bool


class LiabilityPoints(Model):
    available: int
    held: int
    pending: int = Field(default=0, description="Earned, not spendable yet (the program's pending_days)")
    outstanding: int = Field(description="available + held + pending: what the programme owes in points")
    debt: int = Field(default=0, description="Points members owe (returns after their points were spent), "
                                            "paid back from points they earn later; not netted")


class PointValue(Model):
    points: int
    value: int
    currency: str


class Liability(Model):
    as_of: str
    points: LiabilityPoints
    value: Amount
    point_value: PointValue


class Difference(Model):
    check: str
    order_id: str | None = None
    unit: str
    expected: int | str
    actual: int | str | None = None
    detail: str


class ReconciliationChecked(Model):
    orders: int
    postings: int
    movements: int


class Reconciliation(Model):
    date: str
    checked: ReconciliationChecked
    in_flight: list[str] = Field(description="Orders of the day still being paid out (not differences)")
    differences: list[Difference]


class PaidOut(Model):
    currency: str
    face_value: int
    fees: int


class RulePoints(Model):
    rule_id: str = Field(description="An earning rule's id, or base for the program's earn rate")
    name: str | None = Field(description="The rule's name as it stands (Base rate for base)")
    points: int


class TierRow(Model):
    tier: str | None = Field(description="A tier id; null: members without a tier")
    members: int


class TierMembers(Model):
    computed_at: str
    tiers: list[TierRow]


class Kpis(Model):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    members: int
    active_members: int
    active_members_ratio_bps: int
    points_earned: int
    points_adjusted: int
    points_redeemed: int
    points_expired: int
    points_reversed: int = Field(default=0, description="Points returns took back (reversal postings); "
                                                       "points_by_rule shows each rule's net of them")
    redemption_rate_bps: int
    repurchase_rate_bps: int
    liability: Amount
    liability_points: int
    payouts: list[PaidOut]
    points_by_rule: list[RulePoints] = Field(
        default_factory=list, description="Points earned in the period per source: the base rate first (rule_id "
        "base: program:issued), then each earning rule (its account program:bonus:<rule id>), most points first")
    members_by_tier: TierMembers | None = Field(
        default=None, description="Members per tier from the segment snapshot (GET /v1/segments), with when it "
        "was computed; null before the first count")


class AuditRecord(Model):
    seq: int
    id: str
    at: str
    action: str
    subject_type: str
    subject_id: str
    actor: str
    scope: str
    request_id: str
    source_ip: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(Model):
    items: list[AuditRecord]
    pending: int = Field(description="Records written but not yet sealed into the chain")
    next_after: int | None = None


class ReportRequest(Model):
    """POST /v1/finance/reports: a report computed asynchronously (no size limit)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["reconciliation", "kpis", "payouts", "journal"]
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$",
                             description="One UTC day (required for a reconciliation)")
    from_: str | None = Field(default=None, alias="from", max_length=40,
                              description="Date or UTC time, inclusive (kpis, payouts, journal)")
    to: str | None = Field(default=None, max_length=40, description="Date (whole day included) or UTC time, exclusive")
    format: Literal["json", "csv"] = "json"


class ReportProgress(Model):
    phase: str | None = Field(default=None, description="orders | journal | balances | checks | members | done")
    items: int = Field(description="Items read so far")
    pages: int = Field(description="Pages read so far")
    orders_checked: int = Field(description="Orders checked so far (reconciliation)")
    continuations: int = Field(description="How many times the worker checkpointed and continued")


class ReportResult(Model):
    url: str = Field(description="Pre-signed GET URL of the result; short-lived, ask the report again for a new one")
    expires_at: str
    content_type: str
    bytes: int
    file_name: str


class Report(Model):
    report_id: str
    type: ReportType
    params: dict[str, Any] = Field(description="date, or from/to")
    format: ReportFormat
    status: ReportStatus = Field(description="queued | running | completed | failed")
    created_at: str
    updated_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    progress: ReportProgress
    summary: dict[str, Any] | None = Field(default=None, description="A few figures of the completed report")
    failure_reason: str | None = None
    result: ReportResult | None = Field(default=None, description="When completed: where to download it")


class ReportAccepted(Report):
    replayed: bool


class ReportPage(Model):
    items: list[Report]
    next_cursor: str | None = None
