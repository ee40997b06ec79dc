"""Members and points: enrollment and accrual: response models."""

from __future__ import annotations

from pydantic import Field

from treue.core.ledger import PostingType
from treue.core.statuses import MemberStatus
from treue.handlers.models import Model


class Member(Model):
    id: str
    program_id: str
    status: MemberStatus
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


class MemberList(Model):
    items: list[Member]
    next_cursor: str | None = None


class Balance(Model):
    available: int = Field(description="Points the member can spend now")
    held: int = Field(description="Points held for orders in flight")
    lifetime_earned: int
    lifetime_redeemed: int


class PurchaseResult(Model):
    transaction_id: str
    points_earned: int
    replayed: bool = Field(description="True when this transaction_id was already accrued")
    balance: Balance


class AdjustmentResult(Model):
    entry_id: str
    reference: str
    points: int
    replayed: bool
    balance: Balance


class LedgerEntry(Model):
    id: str
    type: PostingType = Field(description="earn | adjustment | hold | capture | release | refund")
    points: int = Field(description="Change of the member's available points (negative = debit)")
    held: int = Field(default=0, description="Change of the member's held points (orders in flight)")
    reason: str
    reference: str
    actor: str
    created_at: str


class Statement(Model):
    entries: list[LedgerEntry]
    next_cursor: str | None = None
