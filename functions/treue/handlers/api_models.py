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
    type: str = Field(description="earn | adjustment")
    points: int = Field(description="Change of the member's available points (negative = debit)")
    reason: str
    reference: str
    actor: str
    created_at: str


class Statement(BaseModel):
    entries: list[LedgerEntry]
    next_cursor: str | None = None
