"""Response models of the partner API (what partners code against; not storage models)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Member(BaseModel):
    id: str
    program_id: str
    status: str
    card_number: str
    qr_token: str
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    name: str | None = None
    locale: str | None = None
    country: str | None = None
    marketing_consent: bool = False
    created_at: str


class MemberList(BaseModel):
    items: list[Member]
    next_cursor: str | None = None


class Balance(BaseModel):
    available: int = Field(description="Points the member can spend now")
    held: int = Field(description="Points held for orders in flight")
    lifetime_earned: int
    lifetime_redeemed: int


class PurchaseResult(BaseModel):
    transaction_id: str
    points_earned: int
    replayed: bool = Field(description="True when this transaction_id was already accrued")
    balance: Balance


class AdjustmentResult(BaseModel):
    entry_id: str
    reference: str
    points: int
    replayed: bool
    balance: Balance


class LedgerEntry(BaseModel):
    id: str
    type: str = Field(description="earn | adjustment | hold | capture | release | refund")
    points: int = Field(description="Change of the member's available points (negative = debit)")
    held: int = Field(default=0, description="Change of the member's held points (orders in flight)")
    reason: str
    reference: str
    actor: str
    created_at: str


class Statement(BaseModel):
    entries: list[LedgerEntry]
    next_cursor: str | None = None


class Denomination(BaseModel):
    face_value: int = Field(description="Minor units of the item's currency")
    points: int = Field(description="What it costs in this program's points")


class OpenValue(BaseModel):
    min: int
    max: int
    min_points: int
    max_points: int


class CatalogItem(BaseModel):
    id: str
    type: str = Field(description="gift_card | voucher | charity")
    name: str
    category: str
    countries: list[str]
    currency: str
    denominations: list[Denomination] = Field(description="Fixed values; empty for open-value items")
    open_value: OpenValue | None = Field(default=None, description="Any value from min to max (minor units)")
    min_points: int = Field(description="The cheapest way to get this item, in points")
    delivery_methods: list[str]
    cancel_policy: dict
    max_quantity: int
    brand: str | None = None
    fee: dict | None = None
    expiry: dict | None = None
    discount: dict | None = None
    minimum_spend: int | None = None
    validity_days: int | None = None
    terms: str | None = None
    registration_id: str | None = None
    cause: str | None = None
    description: str | None = None


class CatalogPage(BaseModel):
    items: list[CatalogItem]
    next_cursor: str | None = None


class OrderAccepted(BaseModel):
    order_id: str
    status: str = Field(description="PENDING when accepted; the payout workflow moves it on")
    points: int = Field(description="Points held for the order")
    replayed: bool = Field(description="True when this Idempotency-Key was already used with this body")


class StatusChange(BaseModel):
    status: str
    at: str
    reason: str | None = None


class MaskedCode(BaseModel):
    masked: str
    expires_at: str | None = None


class Order(BaseModel):
    order_id: str
    member_id: str
    type: str
    item: dict
    status: str = Field(description="PENDING | PROCESSING | ISSUED | COMPLETED | FAILED | CANCELED")
    history: list[StatusChange]
    points: int
    face_value: dict = Field(description="{value, currency} of one unit")
    quantity: int
    delivery: dict
    codes: list[MaskedCode]
    failure_reason: str | None = None
    donation_id: str | None = None
    provider: dict | None = None
    delivered: dict | None = Field(default=None, description="Delivery: method, masked address, time, event id")
    canceled_reason: str | None = None
    created_at: str
    updated_at: str


class OrderList(BaseModel):
    items: list[Order]
    next_cursor: str | None = None


class RevealedCode(BaseModel):
    code: str
    masked: str
    expires_at: str | None = None


class RevealedCodes(BaseModel):
    order_id: str
    codes: list[RevealedCode]


class Donation(BaseModel):
    id: str
    order_id: str
    member_id: str
    charity_id: str
    charity_name: str
    registration_id: str
    country: str
    amount: int = Field(description="Minor units")
    currency: str
    receipt_number: str
    adapter: str = Field(description="How the donation is paid out: recorded = by the operator's transfers")
    created_at: str


class CharityTotal(BaseModel):
    charity_id: str
    charity_name: str
    currency: str
    total: int = Field(description="Minor units donated")
    donations: int


class DonationTotals(BaseModel):
    charities: list[CharityTotal]


class VoucherStatus(BaseModel):
    code: str = Field(description="Masked")
    status: str = Field(description="ACTIVE | REDEEMED | VOID | EXPIRED")
    name: str
    discount: dict
    value: dict
    minimum_spend: dict
    expires_at: str
    order_id: str
    redeemed_at: str | None = None
    redemption_reference: str | None = None
    voided_at: str | None = None
    void_reason: str | None = None


class VoucherRedeemed(VoucherStatus):
    replayed: bool


class Amount(BaseModel):
    value: int = Field(description="Integer minor units")
    currency: str


class FundingRecorded(BaseModel):
    funding_id: str
    amount: Amount
    reference: str
    created_at: str
    replayed: bool = False


class BudgetBalance(BaseModel):
    currency: str
    available: int = Field(description="budget:available, minor units")
    held: int = Field(description="budget:held: set aside for the lines of accepted batches, not paid out yet")
    funded: int = Field(description="Everything ever funded (the negated budget:fundings account)")
    paid_face_value: int = Field(description="payouts:face")
    paid_fees: int = Field(description="payouts:fees")
    low_balance_threshold: int
    low: bool = Field(description="available is below the threshold")


class BudgetMovement(BaseModel):
    id: str
    created_at: str
    type: str = Field(description="funding | draw | return | hold | release")
    currency: str
    debit: str
    credit: str
    amount: int
    order_id: str | None = None
    reference: str
    actor: str


class Budget(BaseModel):
    budgets: list[BudgetBalance]
    movements: list[BudgetMovement]
    next_cursor: str | None = None


class Payout(BaseModel):
    order_id: str
    created_at: str
    status: str
    type: str
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


class PayoutList(BaseModel):
    items: list[Payout]
    next_cursor: str | None = None


class JournalLine(BaseModel):
    id: str
    created_at: str
    type: str = Field(description="earn | adjustment | hold | capture | release | refund | funding | draw | return")
    unit: str = Field(description="points, or the currency of a budget movement")
    debit: str
    credit: str
    amount: int
    member_id: str | None = None
    order_id: str | None = None
    reference: str | None = None
    reason: str | None = None
    actor: str | None = None


class Journal(BaseModel):
    items: list[JournalLine]
    next_cursor: str | None = None


class AccountBalance(BaseModel):
    account: str
    balance: int


class UnitBalance(BaseModel):
    unit: str = Field(description="points, or a currency")
    accounts: list[AccountBalance]
    total: int = Field(description="Always 0 on a healthy system")


class TrialBalance(BaseModel):
    as_of: str
    units: list[UnitBalance]
    balanced: bool


class LiabilityPoints(BaseModel):
    available: int
    held: int
    outstanding: int


class PointValue(BaseModel):
    points: int
    value: int
    currency: str


class Liability(BaseModel):
    as_of: str
    points: LiabilityPoints
    value: Amount
    point_value: PointValue


class Difference(BaseModel):
    check: str
    order_id: str | None = None
    unit: str
    expected: int | str
    actual: int | str | None = None
    detail: str


class ReconciliationChecked(BaseModel):
    orders: int
    postings: int
    movements: int


class Reconciliation(BaseModel):
    date: str
    checked: ReconciliationChecked
    in_flight: list[str] = Field(description="Orders of the day still being paid out (not differences)")
    differences: list[Difference]


class PaidOut(BaseModel):
    currency: str
    face_value: int
    fees: int


class Kpis(BaseModel):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    members: int
    active_members: int
    active_members_ratio_bps: int
    points_earned: int
    points_adjusted: int
    points_redeemed: int
    points_expired: int
    redemption_rate_bps: int
    repurchase_rate_bps: int
    liability: Amount
    liability_points: int
    payouts: list[PaidOut]


class AuditRecord(BaseModel):
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
    data: dict
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRecord]
    pending: int = Field(description="Records written but not yet sealed into the chain")
    next_after: int | None = None


class WebhookSecret(BaseModel):
    created_at: str
    expires_at: str | None = Field(default=None, description="A rotated-out secret signs until then")


class WebhookFailure(BaseModel):
    at: str
    attempt: int | None = None
    status_code: int | None = None
    error: str | None = None


class Webhook(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None = None
    status: str = Field(description="active, or failing after a failed delivery (never disabled silently)")
    consecutive_failures: int
    deliveries: int = Field(description="Successful deliveries")
    created_at: str
    last_attempt_at: str | None = None
    last_success_at: str | None = None
    last_failure: WebhookFailure | None = None
    secrets: list[WebhookSecret]


class WebhookCreated(Webhook):
    secret: str = Field(description="The signing secret, shown only now")


class WebhookList(BaseModel):
    items: list[Webhook]


class Event(BaseModel):
    id: str
    type: str
    created_at: str
    data: dict


class EventPage(BaseModel):
    items: list[Event]
    next_after: str = Field(description="Ask again with after= this cursor (the log has no end)")
    settle_seconds: int = Field(description="Events younger than this are listed on a later call")


class Redelivered(BaseModel):
    event_id: str
    endpoints: list[str]


class RewardAccepted(BaseModel):
    reward_id: str
    status: str = Field(description="PENDING when accepted; the payout workflow moves it on")
    replayed: bool = Field(description="True when this Idempotency-Key was already used with this body")


class Reward(BaseModel):
    reward_id: str
    type: str
    item: dict
    recipient: dict
    reference: str | None = None
    member_id: str | None = None
    batch_id: str | None = None
    message: str | None = None
    status: str = Field(description="PENDING | PROCESSING | ISSUED | COMPLETED | FAILED | CANCELED")
    history: list[StatusChange]
    face_value: dict = Field(description="{value, currency}")
    delivery: dict
    codes: list[MaskedCode]
    failure_reason: str | None = None
    provider: dict | None = None
    delivered: dict | None = None
    funds: dict | None = Field(default=None, description="What the budget paid: face, fee, currency")
    created_at: str
    updated_at: str


class MoneyValue(BaseModel):
    value: int = Field(description="Minor units")
    currency: str


class LineProblem(BaseModel):
    line: int = Field(description="1 = the first line (in a CSV: the first row after the header)")
    reference: str | None = None
    field: str
    reason: str


class BatchCounts(BaseModel):
    pending: int
    processing: int
    issued: int
    failed: int
    rejected: int


class Batch(BaseModel):
    batch_id: str
    status: str = Field(description="queued | running | completed | completed_with_failures | halted")
    name: str | None = None
    lines: int = Field(description="Lines submitted (rejected ones included)")
    counts: BatchCounts
    rejected: int
    runs: int = Field(description="Runs so far: 1 for the first, one more per retry")
    cost: list[MoneyValue] = Field(description="What the accepted lines draw from the budget per currency")
    tolerated_failure_percentage: int
    created_at: str
    updated_at: str
    completed_at: str | None = None
    halted_reason: str | None = None


class BatchAccepted(Batch):
    replayed: bool = Field(description="True when this Idempotency-Key was already used with this body")
    rejected_lines: list[LineProblem] = Field(description="With partial: true, the lines not issued and why")


class BatchPage(BaseModel):
    items: list[Batch]
    next_cursor: str | None = None


class BatchLine(BaseModel):
    line: int
    reference: str | None = None
    status: str = Field(description="pending | processing | issued | failed | rejected")
    attempt: int = Field(description="1 for the first try; a retry of a failed line starts the next")
    reward_id: str | None = Field(default=None, description="The reward of the current attempt (GET /v1/rewards/{id})")
    item_id: str | None = None
    face_value: MoneyValue | None = None
    recipient: dict
    failure_reason: str | None = None
    updated_at: str


class BatchLinePage(BaseModel):
    items: list[BatchLine]
    next_cursor: str | None = Field(default=None, description="Ask again with cursor= this value; none at the end")


class BatchRetried(BaseModel):
    batch_id: str
    status: str
    run: int = Field(description="The run that re-drives the lines")
    lines: int = Field(description="Lines re-driven (failed ones get a new attempt); -1 when the run was queued before")


class BatchUpload(BaseModel):
    upload_id: str
    url: str = Field(description="PUT the CSV here (Content-Type: text/csv) before it expires")
    method: str
    headers: dict[str, str]
    expires_at: str
    max_lines: int
    columns: list[str] = Field(description="The CSV header: reference and item_id required, the others optional")


class ReportRequest(BaseModel):
    """POST /v1/finance/reports: a report computed asynchronously (no size limit)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["reconciliation", "kpis", "payouts", "journal"]
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$",
                             description="One UTC day (required for a reconciliation)")
    from_: str | None = Field(default=None, alias="from", max_length=40,
                              description="Date or UTC time, inclusive (kpis, payouts, journal)")
    to: str | None = Field(default=None, max_length=40, description="Date (whole day included) or UTC time, exclusive")
    format: Literal["json", "csv"] = "json"


class ReportProgress(BaseModel):
    phase: str | None = Field(default=None, description="orders | journal | balances | checks | members | done")
    items: int = Field(description="Items read so far")
    pages: int = Field(description="Pages read so far")
    orders_checked: int = Field(description="Orders checked so far (reconciliation)")
    continuations: int = Field(description="How many times the worker checkpointed and continued")


class ReportResult(BaseModel):
    url: str = Field(description="Pre-signed GET URL of the result; short-lived, ask the report again for a new one")
    expires_at: str
    content_type: str
    bytes: int
    file_name: str


class Report(BaseModel):
    report_id: str
    type: str
    params: dict = Field(description="date, or from/to")
    format: str
    status: str = Field(description="queued | running | completed | failed")
    created_at: str
    updated_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    progress: ReportProgress
    summary: dict | None = Field(default=None, description="A few figures of the completed report")
    failure_reason: str | None = None
    result: ReportResult | None = Field(default=None, description="When completed: where to download it")


class ReportAccepted(Report):
    replayed: bool


class ReportPage(BaseModel):
    items: list[Report]
    next_cursor: str | None = None
