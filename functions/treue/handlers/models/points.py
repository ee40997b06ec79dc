"""Points: accrual's response models (balances, breakdowns, statements); the members' are in
``treue.handlers.models.members``."""

from __future__ import annotations

from pydantic import Field

from treue.core.ledger import PostingType
from treue.handlers.models import Model


class Expiring(Model):
    points: int
    on: str = Field(description="ISO date: the last day these points can be spent")


class Balance(Model):
    available: int = Field(description="Points the member can spend now (pending points whose time has come "
                                       "count already)")
    pending: int = Field(default=0, description="Points earned and not spendable yet (the program's pending_days "
                                                "after the purchase's occurred_at)")
    held: int = Field(description="Points held for orders in flight")
    debt: int = Field(default=0, description="Points the member owes (a return after its points were spent); new "
                                             "points pay it back first")
    expiring: list[Expiring] = Field(default_factory=list, description="The next three expiry dates of the "
                                     "available points, earliest first (spending takes the earliest first)")
    lifetime_earned: int
    lifetime_redeemed: int


class BreakdownLine(Model):
    rule_id: str = Field(description='"base" (the program\'s earn rate), "tier:<id>" or an earning rule\'s id')
    version: int = Field(description="The program settings' version (base, tier) or the rule's version")
    points: int
    line_index: int | None = Field(default=None, description="The purchase line (from 0); absent: the part of the "
                                   "amount no line covers, or a bonus for the purchase as a whole")
    reason: str | None = Field(default=None, description="Why a rule paid less or nothing (a limit)")


class PurchaseResult(Model):
    transaction_id: str
    points_earned: int = Field(description="The sum of the breakdown's points")
    breakdown: list[BreakdownLine] = Field(default_factory=list, description="The points per rule and line")
    replayed: bool = Field(description="True when this transaction_id was already accrued")
    available_at: str | None = Field(default=None, description="When the points become available, while they are "
                                     "pending (the program's pending_days after occurred_at); null: available now")
    balance: Balance


class ActivityResult(Model):
    reference: str = Field(description="Your id of the activity")
    points_earned: int = Field(description="The sum of the breakdown's points; 0 when no rule paid (see reason)")
    breakdown: list[BreakdownLine] = Field(default_factory=list, description="The points per activity rule")
    reason: str | None = Field(default=None, description="Why nothing was earned: the limits that stopped the "
                               "rules, or that no activity rule in force matches the type")
    replayed: bool = Field(description="True when this reference was already recorded")
    balance: Balance


class Simulated(Model):
    member_id: str
    transaction_id: str
    points_earned: int = Field(description="What the purchase would earn now (nothing is posted)")
    breakdown: list[BreakdownLine]


class AdjustmentResult(Model):
    entry_id: str
    reference: str
    points: int
    replayed: bool
    balance: Balance


class PurchaseAmount(Model):
    value: int = Field(description="Minor units")
    currency: str


class PurchaseOrigin(Model):
    transaction_id: str = Field(description="The purchase's transaction_id")
    amount: PurchaseAmount = Field(description="What the purchase was worth")
    occurred_at: str | None = Field(default=None, description="When the purchase happened")


class LedgerEntry(Model):
    id: str
    type: PostingType = Field(description="earn | adjustment | hold | capture | release | refund | activation "
                              "(pending → available) | expiry | reversal (a return) | repayment (available → debt)")
    points: int = Field(description="Change of the member's available points (negative = debit)")
    held: int = Field(default=0, description="Change of the member's held points (orders in flight)")
    pending: int = Field(default=0, description="Change of the member's pending points (earned, not spendable yet)")
    debt: int = Field(default=0, description="Change of the points the member owes (positive: owes more)")
    reason: str
    reference: str
    actor: str
    created_at: str
    expires_on: str | None = Field(default=None, description="ISO date: the last day the points of this credit "
                                   "can be spent (its expiry bucket); of an expiry, the latest bucket it expired; "
                                   "absent: they do not expire")
    available_at: str | None = Field(default=None, description="When points credited as pending become available")
    rule_id: str | None = Field(default=None, description="The earning rule that paid these points (a bonus)")
    return_id: str | None = Field(default=None, description="Of a reversal: the return that took the points back")
    purchase: PurchaseOrigin | None = Field(default=None, description="The purchase the points came from (of a "
                                            "reversal: its amount is the part returned, occurred_at the return's)")


class Statement(Model):
    entries: list[LedgerEntry]
    next_cursor: str | None = None
