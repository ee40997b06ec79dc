"""Budget movements: the money ledger's value types (``treue.logic.budget`` says how money moves).

A movement moves a positive integer amount of minor units of one currency from one budget account to
another, so each currency's accounts sum to zero at all times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class MoneyAccount(StrEnum):
    FUNDINGS = "budget:fundings"
    AVAILABLE = "budget:available"
    HELD = "budget:held"
    FACE = "payouts:face"
    FEES = "payouts:fees"
    MEMBERSHIP_FEES = "membership:fees_received"  # paid membership fees the partner's payment provider took
    MEMBERSHIP_REVENUE = "revenue:memberships"  # those fees as the programme's revenue (never the reward budget)
    CASH_RECEIVED = "cash:received"  # the cash part of points + cash orders, taken at the partner's till
    CASH_OWED_BACK = "cash:owed_back"  # that cash, of orders that failed or were canceled: owed to the member


class MovementType(StrEnum):
    FUNDING = "funding"
    DRAW = "draw"  # a reward paid from the budget
    RETURN = "return"  # the reward failed or was canceled: the money goes back
    HOLD = "hold"  # set aside for a batch's lines
    RELEASE = "release"  # what a batch run's lines did not use goes back
    MEMBERSHIP_FEE = "membership_fee"  # a paid membership's fee: membership:fees_received → revenue:memberships
    CASH = "cash"  # a points + cash order's cash part, received into the budget (cash:received → available)
    CASH_OWED_BACK = "cash_owed_back"  # that order failed or was canceled: the cash is owed back to the member
    CASH_REFUNDED = "cash_refunded"  # finance paid that cash back to the member (cash:owed_back → cash:received)


@dataclass(frozen=True)
class Movement:
    id: str
    program_id: str
    currency: str
    type: MovementType
    debit: MoneyAccount
    credit: MoneyAccount
    amount: int
    reference: str
    reason: str
    actor: str
    created_at: str
    order_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool) or self.amount <= 0:
            raise ValueError("a movement moves a positive integer amount of minor units")

    def data(self) -> dict[str, Any]:
        return {
            "id": self.id, "program_id": self.program_id, "unit": self.currency, "currency": self.currency,
            "type": str(self.type), "debit": str(self.debit), "credit": str(self.credit), "amount": self.amount,
            "reference": self.reference, "reason": self.reason, "actor": self.actor, "created_at": self.created_at,
            "order_id": self.order_id, "metadata": self.metadata or None,
        }
