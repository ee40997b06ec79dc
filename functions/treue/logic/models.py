"""Domain input models, shared by the HTTP and the queue paths (pydantic v2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from treue.core import ids
from treue.core.expiry import add_months

Reference = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#@+=-]*$"),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
MinorUnits = Annotated[int, Field(ge=0, le=10**13, strict=True)]


class Strict(BaseModel):
    """Input: unknown fields are refused, text is trimmed, and no text field holds control characters."""

    # defer_build: validators are built on first use, so a function builds only the models it reads
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)
    MULTILINE_FIELDS: ClassVar[frozenset[str]] = frozenset({"message"})  # may hold line feeds

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any, info: ValidationInfo) -> Any:
        multiline = info.field_name in cls.MULTILINE_FIELDS
        if isinstance(value, str):
            ids.check_text(value, multiline)
        elif isinstance(value, list):
            for element in value:
                if isinstance(element, str):
                    ids.check_text(element, multiline)
        return value


class Money(Strict):
    """An amount in integer minor units (cents) of an ISO 4217 currency."""

    value: MinorUnits = Field(description="Integer minor units, e.g. 1999 for 19.99 EUR")
    currency: Currency = Field(description="ISO 4217 code, e.g. EUR")


class PurchaseLine(Strict):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100_000, strict=True)
    amount: Money
    category: str | None = Field(default=None, max_length=64)


PURCHASE_WINDOW_MONTHS = 24  # a purchase reported later than this after its occurred_at is refused


class Purchase(Strict):
    """A purchase a member made; ``transaction_id`` is the partner's id and makes accrual exactly-once.
    ``occurred_at`` may lie up to 24 months back (a late report): pending days and expiry count from it."""

    transaction_id: Reference
    amount: Money
    occurred_at: datetime
    lines: list[PurchaseLine] | None = Field(default=None, max_length=500)

    @field_validator("occurred_at")
    @classmethod
    def _past(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-24T10:00:00Z")
        now = datetime.now(UTC)
        if value > now + timedelta(minutes=5):
            raise ValueError("lies in the future")
        if value.astimezone(UTC).date() < add_months(now.date(), -PURCHASE_WINDOW_MONTHS):
            raise ValueError(f"lies more than {PURCHASE_WINDOW_MONTHS} months in the past: a purchase may be "
                             "reported late, but not that late")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Purchase:
        if self.lines:
            if any(line.amount.currency != self.amount.currency for line in self.lines):
                raise ValueError("every line must be in the purchase currency")
            if sum(line.amount.value for line in self.lines) > self.amount.value:
                raise ValueError("the lines add up to more than the purchase amount")
        return self

    def fingerprint_payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


ACTIVITY_WINDOW_DAYS = 30  # an activity older than this is refused: its rules, caps and counters are settled
FUTURE_SKEW = timedelta(minutes=5)  # clocks of tills and apps run this far ahead at most


class Activity(Strict):
    """Something a member did that the activity rules may pay (``POST /v1/members/{id}/activities``):
    ``reference`` is the partner's id of it and makes it exactly-once."""

    type: str = Field(min_length=1, max_length=64, description="What the member did: review, survey, event, "
                      "profile_completed, app_download… (matched exactly by the rules' activity_type)")
    reference: Reference = Field(description="Your id of this activity; sending it again is a replay")
    occurred_at: datetime = Field(description="When it happened, with a time zone: not in the future, at most "
                                  f"{ACTIVITY_WINDOW_DAYS} days ago")

    @field_validator("occurred_at")
    @classmethod
    def _recent(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-24T10:00:00Z")
        now = datetime.now(UTC)
        if value > now + FUTURE_SKEW:
            raise ValueError("lies in the future")
        if value < now - timedelta(days=ACTIVITY_WINDOW_DAYS):
            raise ValueError(f"lies more than {ACTIVITY_WINDOW_DAYS} days in the past")
        return value

    def fingerprint_payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Simulation(Purchase):
    """A purchase as a till would send it, and the member it would earn for (``POST /v1/rules/simulate``)."""

    member_id: str = Field(min_length=1, max_length=64)

    def purchase(self) -> Purchase:
        return Purchase.model_validate(self.model_dump(exclude={"member_id"}))


def _check(fn: Callable[[str], str]) -> AfterValidator:
    def validate(value: str | None) -> str | None:
        return None if value is None else fn(value)

    return AfterValidator(validate)


class MemberIdentifiers(Strict):
    """The ways a member is recognised; each is unique within a program."""

    email: Annotated[str | None, _check(ids.normalize_email)] = Field(default=None, max_length=254)
    phone: Annotated[str | None, _check(ids.normalize_phone)] = Field(
        default=None, max_length=32, description="E.164, e.g. +4915112345678"
    )
    card_number: Annotated[str | None, _check(ids.normalize_card_number)] = Field(default=None, max_length=32)
    external_id: Reference | None = None

    def present(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Enrollment(MemberIdentifiers):
    name: str | None = Field(default=None, max_length=200)
    locale: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = Field(
        default=None, description="ISO 3166-1 alpha-2; decides which rewards the member can order "
        "(default: the program's country)"
    )
    marketing_consent: bool = False
    referred_by: Annotated[str | None, _check(ids.normalize_referral_code)] = Field(
        default=None, max_length=16, description="The referral code of the member who referred this one "
        "(case, spaces and hyphens do not matter)")
    birth_date: date | None = Field(default=None, description="YYYY-MM-DD: not in the future, not before 1900")

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth_date(cls, value: date | None) -> date | None:
        if value is not None:
            if value > datetime.now(UTC).date() + timedelta(days=1):  # a day of slack for time zones ahead of UTC
                raise ValueError("lies in the future")
            if value < date(1900, 1, 1):
                raise ValueError("lies before 1900")
        return value

    @model_validator(mode="after")
    def _one_identifier(self) -> Enrollment:
        if not self.present_identifiers():
            raise ValueError("give at least one of email, phone, card_number, external_id")
        return self

    def present_identifiers(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in MemberIdentifiers.model_fields if getattr(self, k) is not None}


class Adjustment(Strict):
    """A manual correction: positive credits, negative debits the member's available points."""

    points: int = Field(strict=True, ge=-10**9, le=10**9)
    reason: str = Field(min_length=3, max_length=500)
    reference: Reference

    @model_validator(mode="after")
    def _nonzero(self) -> Adjustment:
        if self.points == 0:
            raise ValueError("an adjustment moves a nonzero number of points")
        return self


class Delivery(Strict):
    """How the reward reaches the member: an email, a link the partner shows, or the API only."""

    method: Literal["email", "link", "api"]
    email: Annotated[str | None, _check(ids.normalize_email)] = Field(
        default=None, max_length=254, description="For method email; default: the member's email"
    )


class CashPart(Strict):
    """The cash part of a points + cash order, already taken by the partner's till or shop."""

    value: int = Field(ge=1, le=10**9, strict=True, description="Integer minor units, e.g. 1000 for 10.00 EUR")
    currency: Currency = Field(description="ISO 4217 code: the program's (and the item's) currency")
    reference: Reference = Field(description="The till's receipt id: finance refunds a failed order's cash by it")


class Payment(Strict):
    """Points + cash: ``points`` are held and spent like any order's; ``cash`` covers the rest of the price
    exactly, at the program's point value (see the README, "Points + cash")."""

    points: int = Field(ge=1, le=10**9, strict=True, description="The points to hold for the order")
    cash: CashPart


class OrderRequest(Strict):
    """Spend points on a catalog item; an order on a charity is a donation."""

    member_id: str = Field(min_length=1, max_length=64)
    item_id: str = Field(min_length=1, max_length=64)
    face_value: int | None = Field(default=None, ge=1, le=10**9, strict=True,
                                   description="Minor units of the item's currency (open-value items)")
    denomination: int | None = Field(default=None, ge=1, le=10**9, strict=True,
                                     description="Minor units of one of the item's denominations")
    quantity: int = Field(default=1, ge=1, le=100, strict=True)
    delivery: Delivery
    payment: Payment | None = Field(default=None, description="Points + cash, for items with points_cash "
                                                               "(absent: the whole price in points)")

    @model_validator(mode="after")
    def _one_value(self) -> OrderRequest:
        if self.face_value is not None and self.denomination is not None and self.face_value != self.denomination:
            raise ValueError("give face_value or denomination, not two different values")
        return self

    @property
    def value(self) -> int | None:
        return self.face_value if self.face_value is not None else self.denomination

    def fingerprint_payload(self) -> dict[str, Any]:
        out = {"member_id": self.member_id, "item_id": self.item_id, "value": self.value,
               "quantity": self.quantity, "delivery": self.delivery.model_dump()}
        if self.payment is not None:  # absent: the fingerprint of an order without payment, as before
            out["payment"] = self.payment.model_dump()
        return out


class CancelRequest(Strict):
    reason: str = Field(min_length=3, max_length=500)


VoucherCode = Annotated[str, StringConstraints(min_length=10, max_length=40)]


class VoucherLookup(Strict):
    code: VoucherCode


class VoucherRedemption(Strict):
    code: VoucherCode
    reference: Reference = Field(description="The till's transaction id; redeeming again with it is a replay")
    purchase_amount: Money | None = Field(default=None, description="Checked against the minimum spend")


class VoucherVoid(Strict):
    code: VoucherCode
    reason: str = Field(min_length=3, max_length=500)


class CashRefund(Strict):
    """Finance paid a failed or canceled points + cash order's cash back to the member (admin scope)."""

    order_id: str = Field(min_length=1, max_length=64)
    reference: Reference = Field(description="Your reference of the refund, e.g. the till's refund receipt; "
                                             "recording the order's refund again with it is a replay")


class Funding(Strict):
    """A top-up of the program budget in one currency (admin scope; Idempotency-Key required)."""

    amount: Money
    reference: Reference = Field(description="Your reference, e.g. the bank transfer's id")

    @field_validator("amount")
    @classmethod
    def _positive(cls, amount: Money) -> Money:
        if amount.value <= 0:
            raise ValueError("a funding adds a positive amount")
        return amount


class BudgetSettings(Strict):
    """Below this balance (minor units of the path's currency) a budget.low event is emitted."""

    low_balance_threshold: MinorUnits


EventType = Literal["member.enrolled", "points.earned", "order.completed", "order.failed", "reward.delivered",
                    "batch.completed", "budget.low", "referral.completed", "milestone.reached", "tier.upgraded",
                    "tier.downgraded", "activity.recorded", "membership.started", "membership.renewed",
                    "membership.ended", "points.activated", "points.expiring", "points.expired", "points.reversed"]


class WebhookRequest(Strict):
    """An endpoint that receives the program's events of the given types, signed with its own secret."""

    url: str = Field(min_length=10, max_length=2048, description="https URL that accepts POSTed events")
    event_types: list[EventType | Literal["*"]] = Field(min_length=1, max_length=16,
                                                        description='Event types, or ["*"] for all')
    description: str | None = Field(default=None, max_length=200)


class SecretRotation(Strict):
    """A new secret; the old one keeps signing (a second v1=) for this many hours, 0 to drop it at once."""

    expire_previous_in_hours: int = Field(default=24, ge=0, le=72, strict=True)


class Redelivery(Strict):
    endpoint_id: str | None = Field(default=None, max_length=64,
                                    description="Only this endpoint (default: every endpoint subscribed)")


class Recipient(Strict):
    """Who receives a reward: a member, or a person known by email or your own id."""

    member_id: str | None = Field(default=None, max_length=64)
    email: Annotated[str | None, _check(ids.normalize_email)] = Field(default=None, max_length=254)
    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=120)

    @model_validator(mode="after")
    def _one_identity(self) -> Recipient:
        if not (self.member_id or self.email or self.external_id):
            raise ValueError("name the recipient by email, member_id or external_id")
        return self


class RewardRequest(Strict):
    """Issue a gift card or voucher paid from the program budget (no points)."""

    recipient: Recipient
    item_id: str = Field(min_length=1, max_length=64)
    face_value: int | None = Field(default=None, ge=1, le=10**9, strict=True,
                                   description="Minor units of the item's currency (vouchers: their own value)")
    message: str | None = Field(default=None, max_length=1000)
    reference: Reference = Field(description="Your id of this reward (unique within a batch)")
    delivery: Delivery | None = Field(default=None, description="Default: email when the recipient has one, else api")

    def fingerprint_payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class UploadRequest(Strict):
    """The size of the CSV to upload: the pre-signed URL takes exactly this many bytes (S3 refuses others)."""

    content_length: int = Field(ge=1, le=20_000_000, strict=True,
                                description="Bytes of the CSV file, at most 20,000,000")


class BatchRequest(Strict):
    """Issue many rewards at once: lines inline (each like a POST /v1/rewards body) or an uploaded CSV."""

    lines: list[Any] | None = Field(
        default=None, min_length=1, max_length=10_000,
        description="Up to 10,000 lines, each with the fields of POST /v1/rewards; `reference` unique in the batch")
    upload_id: str | None = Field(default=None, pattern=r"^upl_[0-9a-z]{26}$",
                                  description="A CSV uploaded with POST /v1/batches/uploads (up to 50,000 lines)")
    partial: bool = Field(default=False, description="Issue the valid lines and reject the others (default: "
                                                     "any invalid line refuses the whole batch)")
    name: str | None = Field(default=None, max_length=120, description="Your name for the batch")
    tolerated_failure_percentage: int = Field(
        default=10, ge=0, le=100, strict=True,
        description="A run stops (status halted) once more than this share of its lines failed")

    @model_validator(mode="after")
    def _one_source(self) -> BatchRequest:
        if (self.lines is None) == (self.upload_id is None):
            raise ValueError("give the lines inline or an upload_id, not both")
        return self

    def fingerprint_payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
