"""The program budget: money a program funds up front, drawn by every gift card and donation it pays.

A second double-entry ledger, in integer minor units per currency (its movements:
``treue.core.money``). Its accounts:

    budget:fundings   where top-ups come from (goes negative by everything ever funded)
    budget:available  what the program can still spend
    budget:held       set aside for the lines of accepted batches, not yet paid out
    payouts:face      face value of the rewards paid
    payouts:fees      the providers' fees for them
    cash:received     the cash part of points + cash orders, taken at the partners' tills (negative)
    cash:owed_back    that cash, of orders that failed or were canceled: owed back to the members until
                      finance records the refund (``refund_cash``: cash:owed_back → cash:received)

A funding moves money fundings → available; paying a reward moves available → face (+ fees); a
failed or canceled reward moves it back to available. A batch holds what its lines cost when it is
accepted (available → held, in the transaction that creates it, so two batches cannot both count on
the same money); its lines are paid from the hold (held → face + fees), and when a run ends what
its lines did not use goes back (held → available). A points + cash order's cash comes in when it
is placed (cash:received → available); when it fails or is canceled the cash is owed back
(available → cash:owed_back). Each currency's accounts sum to zero at all times. Vouchers draw
nothing: their cost falls to the brand at the till.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treue.core.ids import new_id
from treue.core.ledger import request_fingerprint
from treue.core.money import MoneyAccount, Movement, MovementType
from treue.core.records import Order
from treue.core.statuses import EventType, ItemType
from treue.errors import IdempotencyConflict, InsufficientFunds, OrderNotPayable, OrderStateConflict, StaleCondition
from treue.logic import catalog
from treue.store.events import event_put

if TYPE_CHECKING:
    from treue.logic.ports import BudgetPort, OrdersPort


def cost_of(order: Order) -> tuple[int, int]:
    """(face value, fee) in minor units of the order's currency that the budget pays for the order."""
    item = catalog.parse_item(order.item)
    quantity = order.quantity
    fee = item.fee.of(order.face_value) * quantity if isinstance(item, catalog.GiftCard) else 0
    return order.face_value * quantity, fee


def draws_budget(order: Order) -> bool:
    return order.type in (ItemType.GIFT_CARD, ItemType.CHARITY)


def fund(budgets: BudgetPort, program_id: str, currency: str, amount: int, reference: str, idempotency_key: str,
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


def batch_moves(program_id: str, batch_id: str, run: int, amounts: dict[str, int], release: bool,
                now: str) -> list[Movement]:
    """The hold of run ``run`` of a batch (available → held), or its release (held → available)."""
    kind, debit, credit = ((MovementType.RELEASE, MoneyAccount.HELD, MoneyAccount.AVAILABLE) if release
                           else (MovementType.HOLD, MoneyAccount.AVAILABLE, MoneyAccount.HELD))
    why = "not used by its lines, released" if release else "held for its lines"
    return [Movement(
        id=new_id("mov"), program_id=program_id, currency=cur, type=kind, debit=debit, credit=credit,
        amount=amount, reference=batch_id, reason=f"batch {batch_id} run {run}: {why}",
        actor=f"batch:{batch_id}", created_at=now, metadata={"batch_id": batch_id, "run": run},
    ) for cur, amount in sorted(amounts.items()) if amount > 0]


def hold_plan(budgets: BudgetPort, program_id: str, batch_id: str, run: int, amounts: dict[str, int], now: str,
              low_events: bool = True) -> tuple[list[dict[str, Any]], int, list[int]]:
    """Transaction items holding ``amounts`` for run ``run`` of a batch: (items, how many leading
    items are the balance conditions, positions of the low flags). Per currency, a hold that takes
    the balance below the low-balance threshold raises the flag and writes ``budget.low`` (as a draw
    does); when a flag was raised meanwhile, plan again with ``low_events=False``."""
    moves = batch_moves(program_id, batch_id, run, amounts, release=False, now=now)
    items = budgets.hold_items(moves, batch_id)
    flags: list[int] = []
    for move in moves if low_events else []:
        balance, threshold, flagged = budgets.available_with_flag(program_id, move.currency)
        if threshold and balance - move.amount < threshold and not flagged:
            flags.append(len(items))
            items += [budgets.raise_flag_item(program_id, move.currency, now), event_put(
                budgets.table, program_id, EventType.BUDGET_LOW, {
                    "currency": move.currency, "balance": {"value": balance - move.amount, "currency": move.currency},
                    "threshold": {"value": threshold, "currency": move.currency}, "batch_id": batch_id}, now)]
    return items, len(moves), flags


def release_plan(budgets: BudgetPort, program_id: str, batch_id: str, run: int, currencies: list[str], now: str
                 ) -> list[dict[str, Any]]:
    """Transaction items giving back what a batch still holds once its run ``run`` has ended (none
    when it holds nothing). They fail the transaction if a line drew from the hold meanwhile: plan
    again. A release that lifts the balance back to the threshold or above lowers the low flag."""
    remaining = budgets.held_by(program_id, batch_id, currencies)
    moves = batch_moves(program_id, batch_id, run, remaining, release=True, now=now)
    items = budgets.release_items(moves, batch_id, remaining)
    for move in moves:
        balance, threshold, flagged = budgets.available_with_flag(program_id, move.currency)
        if flagged and balance + move.amount >= threshold:
            items.append(budgets.lower_flag_item(program_id, move.currency))
    return items


def draw(budgets: BudgetPort, orders: OrdersPort, order: Order, now: str) -> bool:
    """Pay the order's face value and fee from the budget, once; False when an earlier attempt did.

    The balance is decremented with a condition (``balance >= need``), never read-then-written, so
    many rewards drawing at once (a batch) do not contend for the budget item. When the balance read
    before the draw says this draw leaves it below the low-balance threshold, the same transaction
    raises the budget's ``low`` flag (only if not raised yet) and writes the ``budget.low`` event: one
    event each time the balance falls below the threshold; a funding or a new threshold lowers the flag.
    A batch line's reward is paid from its batch's hold instead (``remaining >= need`` on the hold),
    which leaves the available balance and its flag alone: the hold took the money from there.
    """
    if order.funds:
        return False
    face, fee = cost_of(order)
    need = face + fee
    pid, cur = order.program_id, order.currency
    batch_id = order.batch_id
    source = MoneyAccount.HELD if batch_id else MoneyAccount.AVAILABLE
    balance, threshold, low_flagged = (0, 0, True) if batch_id else budgets.available_with_flag(pid, cur)
    if not batch_id and balance < need:
        raise InsufficientFunds(f"the {cur} budget has {balance} minor units; the order needs {need}")
    moves = [Movement(
        id=new_id("mov"), program_id=pid, currency=cur, type=MovementType.DRAW, debit=source,
        credit=MoneyAccount.FACE, amount=face, reference=order.id, reason=f"order {order.id}: face value",
        actor="workflow:payout", created_at=now, order_id=order.id,
    )]
    if fee:
        moves.append(Movement(
            id=new_id("mov"), program_id=pid, currency=cur, type=MovementType.DRAW,
            debit=source, credit=MoneyAccount.FEES, amount=fee, reference=order.id,
            reason=f"order {order.id}: provider fee", actor="workflow:payout", created_at=now,
            order_id=order.id,
        ))
    funds = {"face": face, "fee": fee, "currency": cur, "drawn_at": now, "movements": [m.id for m in moves]}
    if batch_id:
        funds["batch_id"] = batch_id
    low = None
    if threshold and balance - need < threshold and not low_flagged:
        low = event_put(orders.table, pid, EventType.BUDGET_LOW, {
            "currency": cur, "balance": {"value": balance - need, "currency": cur},
            "threshold": {"value": threshold, "currency": cur}, "order_id": order.id}, now)
    for flag in ((low, None) if low else (None,)):
        try:
            budgets.draw(order, funds, moves, need, low_event=flag, now=now, batch_id=batch_id)
            return True
        except StaleCondition as err:
            if err.index == 0:  # the order: drawn by an earlier attempt, or no longer payable
                current = orders.require(pid, order.id)
                if current.funds:
                    return False
                raise OrderNotPayable(f"order {order.id} is {current.status}") from err
            if err.index == 1 and batch_id:  # the run ended and released the hold meanwhile
                raise InsufficientFunds(f"batch {batch_id} holds no more {cur} for this line (its run has "
                                        "ended); retry the batch") from err
            if err.index == 1:  # the balance fell below what the order needs meanwhile
                balance, _, _ = budgets.available_with_flag(pid, cur)
                raise InsufficientFunds(f"the {cur} budget has {balance} minor units; the order needs {need}") from err
            continue  # another draw raised the low flag first: draw without the event
    raise AssertionError("unreachable")


def cash_received(order: Order, actor: str) -> Movement:
    """A points + cash order's cash part, taken by the partner's till, received into the budget
    (``cash:received`` → ``budget:available``) when the order is placed; the till's receipt id is the
    movement's reference."""
    cash = (order.payment or {})["cash"]
    return Movement(
        id=new_id("mov"), program_id=order.program_id, currency=cash["currency"], type=MovementType.CASH,
        debit=MoneyAccount.CASH_RECEIVED, credit=MoneyAccount.AVAILABLE, amount=cash["value"],
        reference=cash["reference"], reason=f"order {order.id}: cash part paid at the till", actor=actor,
        created_at=order.created_at, order_id=order.id, metadata={"member_id": order.member_id},
    )


def cash_owed_back(order: Order, now: str, why: str, actor: str) -> list[Movement]:
    """A failed or canceled points + cash order's cash, owed back to the member (``budget:available`` →
    ``cash:owed_back``); none for an order without cash or whose cash is owed back already."""
    payment = order.payment
    if not payment or payment.get("owed_back"):
        return []
    cash = payment["cash"]
    return [Movement(
        id=new_id("mov"), program_id=order.program_id, currency=cash["currency"], type=MovementType.CASH_OWED_BACK,
        debit=MoneyAccount.AVAILABLE, credit=MoneyAccount.CASH_OWED_BACK, amount=cash["value"],
        reference=cash["reference"], reason=f"order {order.id} {why}: cash part owed back to the member",
        actor=actor, created_at=now, order_id=order.id, metadata={"member_id": order.member_id},
    )]


def owed_back_fields(order: Order, moves: list[Movement], now: str, why: str) -> dict[str, Any]:
    """The order's ``payment`` with its owed-back cash (for the order update in the same transaction)."""
    if not moves:
        return {}
    owed = {"value": moves[0].amount, "currency": moves[0].currency, "at": now, "why": why, "movement": moves[0].id}
    return {"payment": {**(order.payment or {}), "owed_back": owed}}


def cash_refund_due(order: Order) -> dict[str, Any] | None:
    """What a failed or canceled order's event says is owed back in cash (None without cash)."""
    if not order.payment:
        return None
    cash = order.payment["cash"]
    return {"value": cash["value"], "currency": cash["currency"], "reference": cash["reference"]}


def refund_cash(orders: OrdersPort, budgets: BudgetPort, program_id: str, order_id: str, reference: str,
                actor: str, now: str) -> tuple[dict[str, Any], bool]:
    """Record that finance paid a failed or canceled points + cash order's owed-back cash to the member
    (``cash:owed_back`` → ``cash:received``): once per order, in one transaction with the order's
    ``payment.refunded``. The same order and reference again answers the first answer (``replayed``);
    another reference is a 409, and so is an order that owes no cash back."""
    order = orders.require(program_id, order_id)
    for _attempt in range(2):
        payment = order.payment or {}
        done = payment.get("refunded")
        if done:
            if done["reference"] != reference:
                raise IdempotencyConflict(f"order {order_id}'s cash was refunded with reference {done['reference']}",
                                          order_id=order_id)
            return _refund_answer(order, done), True
        owed = payment.get("owed_back")
        if not owed:
            raise OrderStateConflict(f"order {order_id} owes no cash back (it is {order.status}"
                                     f"{'' if payment else ', paid in points only'})", status=order.status)
        move = Movement(
            id=new_id("mov"), program_id=program_id, currency=owed["currency"], type=MovementType.CASH_REFUNDED,
            debit=MoneyAccount.CASH_OWED_BACK, credit=MoneyAccount.CASH_RECEIVED, amount=owed["value"],
            reference=reference, reason=f"order {order_id}: owed-back cash refunded to the member", actor=actor,
            created_at=now, order_id=order_id, metadata={"member_id": order.member_id,
                                                         "till_reference": payment["cash"]["reference"]},
        )
        refunded = {"value": owed["value"], "currency": owed["currency"], "reference": reference, "at": now,
                    "by": actor, "movement": move.id}
        try:
            orders.transact([orders.cash_refund_item(program_id, order_id, refunded, now),
                             *budgets.movement_items([move])])
        except StaleCondition as err:
            if err.index != 0:
                raise
            order = orders.require(program_id, order_id)  # refunded or failed meanwhile: answer as it is now
            continue
        return _refund_answer(order, refunded), False
    raise OrderStateConflict(f"order {order_id} changed meanwhile; read it again", status=order.status)


def _refund_answer(order: Order, refunded: dict[str, Any]) -> dict[str, Any]:
    cash = (order.payment or {})["cash"]
    return {"order_id": order.id, "amount": {"value": refunded["value"], "currency": refunded["currency"]},
            "reference": refunded["reference"], "till_reference": cash["reference"], "refunded_at": refunded["at"],
            "movement_id": refunded["movement"]}


def returns(order: Order, now: str, why: str, actor: str) -> list[Movement]:
    """The movements giving back what the order drew (none when it drew nothing)."""
    funds = order.funds
    if not funds or order.funds_returned_at:
        return []
    pid, cur, oid = order.program_id, funds["currency"], order.id
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
