"""The points ledger: double-entry postings between accounts.

Every posting moves a positive number of points from one account to another, so the sum over all
accounts of a program is zero at all times. Member accounts (``available``, ``pending``, ``held``, ``debt``) live on the
member's balance item; program accounts (``issued``, ``adjustments``, …) are sharded counters.
Posted entries are never changed: a correction is a new posting with a reason and an actor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Account(StrEnum):
    MEMBER_AVAILABLE = "member:available"
    MEMBER_HELD = "member:held"
    MEMBER_PENDING = "member:pending"  # earned, not yet spendable (the program's pending_days)
    MEMBER_DEBT = "member:debt"  # negative while the member owes points (a return after they were spent)
    PROGRAM_ISSUED = "program:issued"
    PROGRAM_ADJUSTMENTS = "program:adjustments"
    PROGRAM_REDEEMED = "program:redeemed"
    PROGRAM_EXPIRED = "program:expired"


MEMBER_ACCOUNTS: dict[Account | str, str] = {Account.MEMBER_AVAILABLE: "available", Account.MEMBER_HELD: "held",
                                              Account.MEMBER_PENDING: "pending", Account.MEMBER_DEBT: "debt"}
# The balance item keeps what the member owes as a positive ``debt``: the negative of member:debt's balance
FIELD_SIGN: dict[str, int] = {"debt": -1}
BONUS_PREFIX = "program:bonus:"


def bonus_account(rule_id: str) -> str:
    """The account an earning rule's bonus points come from (issue 16 item 10: what each rule cost)."""
    return f"{BONUS_PREFIX}{rule_id}"


class PostingType(StrEnum):
    EARN = "earn"
    ADJUSTMENT = "adjustment"
    HOLD = "hold"  # available → held when an order is placed
    CAPTURE = "capture"  # held → program:redeemed when the reward is issued and delivered
    RELEASE = "release"  # held → available when the order fails
    REFUND = "refund"  # program:redeemed → available when a completed order is canceled
    ACTIVATION = "activation"  # pending → available when the purchase's pending days are over
    EXPIRY = "expiry"  # available → program:expired: points whose expiry date has passed
    REVERSAL = "reversal"  # pending | available | debt → the issuing account: a returned purchase's points
    REPAYMENT = "repayment"  # available → debt: new points pay back what the member owes first


@dataclass(frozen=True)
class Posting:
    """``points`` move from ``debit`` to ``credit`` (debit decreases, credit increases)."""

    id: str
    program_id: str
    member_id: str
    type: PostingType
    debit: Account | str  # an Account, or a rule's bonus account (bonus_account)
    credit: Account | str
    points: int
    reference: str
    reason: str
    actor: str
    created_at: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.points, int) or isinstance(self.points, bool) or self.points <= 0:
            raise ValueError("a posting moves a positive integer number of points")
        if self.debit == self.credit:
            raise ValueError("a posting moves points between two different accounts")

    def deltas(self) -> dict[Account | str, int]:
        """Signed change per account; always sums to zero."""
        return {self.debit: -self.points, self.credit: self.points}

    def member_delta(self) -> int:
        """Change of the member's available points, as shown on a statement."""
        return self.deltas().get(Account.MEMBER_AVAILABLE, 0)

    def held_delta(self) -> int:
        """Change of the member's held points."""
        return self.deltas().get(Account.MEMBER_HELD, 0)

    def pending_delta(self) -> int:
        """Change of the member's pending points."""
        return self.deltas().get(Account.MEMBER_PENDING, 0)

    def debt_delta(self) -> int:
        """Change of what the member owes (positive: owes more)."""
        return -self.deltas().get(Account.MEMBER_DEBT, 0)


def request_fingerprint(payload: Any) -> str:
    """A stable hash of a request, to tell a replay from a different request with the same id."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
