"""Response models of the partner API (what partners code against; not storage models)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    delivered: dict | None = Field(default=None, description="The delivery outbox event")
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
