"""The program budget: money a program funds up front, drawn by every gift card and donation it pays.

A second double-entry ledger, in integer minor units per currency. Its accounts:

    budget:fundings   where top-ups come from (goes negative by everything ever funded)
    budget:available  what the program can still spend
    payouts:face      face value of the rewards paid
    payouts:fees      the providers' fees for them

A funding moves money fundings → available; paying a reward moves available → face (+ fees); a
failed or canceled reward moves it back. Each currency's accounts sum to zero at all times.
Vouchers draw nothing: their cost falls to the brand at the till.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from treue.errors import IdempotencyConflict
from treue.logic import catalog
from treue.logic.ids import new_id
from treue.logic.ledger import request_fingerprint
from treue.store.dynamodb import StaleCondition


class MoneyAccount(StrEnum):
    FUNDINGS = "budget:fundings"
    AVAILABLE = "budget:available"
    FACE = "payouts:face"
    FEES = "payouts:fees"


class MovementType(StrEnum):
    FUNDING = "funding"
    DRAW = "draw"  # a reward paid from the budget
    RETURN = "return"  # the reward failed or was canceled: the money goes back


class InsufficientFunds(Exception):
    """The budget cannot pay the reward (the workflow fails the order with ``insufficient_funds``)."""


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


def cost_of(order: dict[str, Any]) -> tuple[int, int]:
    """(face value, fee) in minor units of the order's currency that the budget pays for the order."""
    item = catalog.parse_item(order["item"])
    quantity = order["quantity"]
    fee = item.fee.of(order["face_value"]) * quantity if item.type == "gift_card" else 0
    return order["face_value"] * quantity, fee


def draws_budget(order: dict[str, Any]) -> bool:
    return order["type"] in ("gift_card", "charity")


def fund(budgets, program_id: str, currency: str, amount: int, reference: str, idempotency_key: str,
         actor: str, now: str) -> tuple[dict[str, Any], bool]:
    """Record a top-up; the same Idempotency-Key answers the first answer (another body: 409)."""
    fingerprint = request_fingerprint({"currency": currency, "amount": amount, "reference": reference})
    movement = Movement(
        id=new_id("mov"), program_id=program_id, currency=currency, type=MovementType.FUNDING,
        debit=MoneyAccount.FUNDINGS, credit=MoneyAccount.AVAILABLE, amount=amount, reference=reference,
        reason=f"funding {reference}", actor=actor, created_at=now,
    )
    answer = {"funding_id": movement.id, "amount": {"value": amount, "currency": currency}, "reference": reference,
              "created_at": now}
    replay = budgets.fund(movement, (idempotency_key, fingerprint), answer)
    if replay is None:
        return answer, False
    if replay.fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different funding",
                                  idempotency_key=idempotency_key)
    return {k: v for k, v in replay.result.items() if k != "member_id"}, True


def draw(budgets, orders, order: dict[str, Any], now: str) -> bool:
    """Pay the order's face value and fee from the budget, once; False when an earlier attempt did.

    The balance is decremented with a condition (``balance >= need``), never read-then-written, so
    many rewards drawing at once (a batch) do not contend for the budget item. When the balance read
    before the draw says this draw leaves it below the low-balance threshold, the same transaction
    raises the budget's ``low`` flag (only if not raised yet) and writes the ``budget.low`` event: one
    event each time the balance falls below the threshold; a funding or a new threshold lowers the flag.
    """
    if order.get("funds"):
        return False
    face, fee = cost_of(order)
    need = face + fee
    pid, cur = order["program_id"], order["currency"]
    balance, threshold, low_flagged = budgets.available_with_flag(pid, cur)
    if balance < need:
        raise InsufficientFunds(f"the {cur} budget has {balance} minor units; the order needs {need}")
    moves = [Movement(
        id=new_id("mov"), program_id=pid, currency=cur, type=MovementType.DRAW, debit=MoneyAccount.AVAILABLE,
        credit=MoneyAccount.FACE, amount=face, reference=order["id"], reason=f"order {order['id']}: face value",
        actor="workflow:payout", created_at=now, order_id=order["id"],
    )]
    if fee:
        moves.append(Movement(
            id=new_id("mov"), program_id=pid, currency=cur, type=MovementType.DRAW,
            debit=MoneyAccount.AVAILABLE, credit=MoneyAccount.FEES, amount=fee, reference=order["id"],
            reason=f"order {order['id']}: provider fee", actor="workflow:payout", created_at=now,
            order_id=order["id"],
        ))
    funds = {"face": face, "fee": fee, "currency": cur, "drawn_at": now, "movements": [m.id for m in moves]}
    low = None
    if threshold and balance - need < threshold and not low_flagged:
        from treue.store.events import event_put

        low = event_put(orders.table, pid, "budget.low", {
            "currency": cur, "balance": {"value": balance - need, "currency": cur},
            "threshold": {"value": threshold, "currency": cur}, "order_id": order["id"]}, now)
    for flag in ((low, None) if low else (None,)):
        try:
            budgets.draw(order, funds, moves, need, low_event=flag, now=now)
            return True
        except StaleCondition as err:
            if err.index == 0:  # the order: drawn by an earlier attempt, or no longer payable
                current = orders.require(pid, order["id"])
                if current.get("funds"):
                    return False
                from treue.logic.payout import OrderNotPayable

                raise OrderNotPayable(f"order {order['id']} is {current['status']}") from err
            if err.index == 1:  # the balance fell below what the order needs meanwhile
                balance, _, _ = budgets.available_with_flag(pid, cur)
                raise InsufficientFunds(f"the {cur} budget has {balance} minor units; the order needs {need}") from err
            continue  # another draw raised the low flag first: draw without the event
    raise AssertionError("unreachable")


def returns(order: dict[str, Any], now: str, why: str, actor: str) -> list[Movement]:
    """The movements giving back what the order drew (none when it drew nothing)."""
    funds = order.get("funds")
    if not funds or order.get("funds_returned_at"):
        return []
    pid, cur, oid = order["program_id"], funds["currency"], order["id"]
    moves = [Movement(
        id=new_id("mov"), program_id=pid, currency=cur, type=MovementType.RETURN, debit=MoneyAccount.FACE,
        credit=MoneyAccount.AVAILABLE, amount=funds["face"], reference=oid, reason=f"order {oid} {why}: face value",
        actor=actor, created_at=now, order_id=oid,
    )]
    if funds["fee"]:
        moves.append(Movement(
            id=new_id("mov"), program_id=pid, currency=cur, type=MovementType.RETURN, debit=MoneyAccount.FEES,
            credit=MoneyAccount.AVAILABLE, amount=funds["fee"], reference=oid, reason=f"order {oid} {why}: fee",
            actor=actor, created_at=now, order_id=oid,
        ))
    return moves
