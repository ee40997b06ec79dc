"""Redemption orders: validate, hold the points, start the payout workflow; views, cancel, code reveal.

Statuses (every change is in ``history`` with its time and reason):

    PENDING     points held, payout workflow started
    PROCESSING  the workflow verified the hold and is issuing the reward
    ISSUED      the reward exists (codes sealed, provider reference or donation receipt)
    COMPLETED   delivered and the held points captured
    FAILED      a terminal failure; the held points were released (``failure_reason`` says why)
    CANCELED    a completed order undone where the reward's policy allows it; points refunded
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from treue.core import times
from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType, request_fingerprint
from treue.core.programs import Program
from treue.core.records import Order
from treue.core.statuses import ORDER_TRANSITIONS, IssuanceStatus, ItemType, OrderStatus
from treue.errors import (
    IdempotencyConflict,
    ItemNotFound,
    NotCancelable,
    NotOrderable,
    OrderStateConflict,
    ProviderNotAnswering,
    StaleCondition,
    ValidationFailed,
)
from treue.logic import budget, catalog, lifecycle, members
from treue.logic.models import OrderRequest, Payment
from treue.providers.giftcards import ProviderRejected, ProviderTimeout, ProviderUnavailable

if TYPE_CHECKING:
    from treue.logic.ports import BudgetPort, GiftCardPort, ItemLookup, OrdersPort, Replayed, VaultPort, WorkflowStarter

STATUSES = tuple(OrderStatus)
# A DynamoDB transaction holds at most 100 items. A voucher order writes one item per code when it is
# issued and changes each again in the cancel's refund, which also posts the refund (8 more items
# today, measured in tests/integration/test_input_limits.py); 10 stay reserved for those.
TRANSACTION_ITEMS = 100
VOUCHER_ORDER_OVERHEAD_ITEMS = 10
MAX_VOUCHERS_PER_ORDER = TRANSACTION_ITEMS - VOUCHER_ORDER_OVERHEAD_ITEMS
TRANSITIONS = ORDER_TRANSITIONS


def sources_of(status: str) -> tuple[OrderStatus, ...]:
    """The statuses an order may move to ``status`` from."""
    return tuple(s for s, targets in TRANSITIONS.items() if status in targets)


def place(
    orders: OrdersPort,
    starter: WorkflowStarter,
    program: Program,
    find_item: ItemLookup,
    request: OrderRequest,
    idempotency_key: str,
    actor: str,
    now: str,
    budgets: BudgetPort | None = None,
) -> tuple[dict[str, Any], bool]:
    """Validate and place an order; returns ``(answer, replayed)``.

    The order, its hold (available → held) and the idempotency guard are one transaction. The same
    Idempotency-Key with the same body answers the first answer (and restarts the workflow if it
    never started); with another body it is a 409 and nothing happens. A replay is answered before
    anything is checked against live state (member, catalog, balance): the item may have been
    retired or the points spent since, and the client must still learn what its first request did.

    In a program with tiers, the points are those of the member's tier (``catalog.member_discount``:
    their ``TIER`` item read once; ``catalog_discount_bps`` off each item's price, rounded in the
    programme's favour); the order keeps the discount (``tier_discount``) and its hold, capture and
    release move the discounted points. The face value and the budget are those of the item.

    With ``payment`` (points + cash, ``split_payment``) the order holds only the points part, and the
    cash the partner's till took comes into the budget (``budget.cash_received``, on ``budgets``) in
    the same transaction as the order and its hold.
    """
    fingerprint = request_fingerprint(request.fingerprint_payload())
    earlier = orders.replay_of(program.id, "order", idempotency_key)
    if earlier is not None:
        return _replayed(orders, starter, program.id, earlier, fingerprint, idempotency_key), True
    member = members.get(orders.store, program.id, request.member_id)
    lifecycle.settle(orders.store, program, member["id"], times.parse(now))  # pending points now due count
    raw = find_item(request.item_id)
    if raw is None:
        raise ItemNotFound(f"catalog item {request.item_id} does not exist", item_id=request.item_id)
    item = catalog.parse_item(raw)
    country = member.get("country") or program.country
    if not country:
        raise NotOrderable("the member has no country and the program none either; enroll with country",
                           reason="country_unknown")
    if country not in item.countries:
        raise NotOrderable(f"{item.name} is not available in {country}", reason="country",
                           countries=list(item.countries))
    value = request.value if request.value is not None else (
        item.face_value if isinstance(item, catalog.Voucher) else None)
    if value is None or not item.accepts(value):
        raise NotOrderable(f"{item.name} takes a face value {item.value_rule()} {item.currency} minor units",
                           reason="face_value")
    if request.quantity > item.max_quantity:
        raise NotOrderable(f"at most {item.max_quantity} of {item.name} per order", reason="quantity")
    if isinstance(item, catalog.Voucher) and request.quantity > MAX_VOUCHERS_PER_ORDER:
        raise NotOrderable(f"at most {MAX_VOUCHERS_PER_ORDER} vouchers per order", reason="quantity",
                           max_quantity=MAX_VOUCHERS_PER_ORDER)
    if request.delivery.method not in item.delivery_methods:
        raise NotOrderable(f"{item.name} is delivered by {', '.join(item.delivery_methods)}",
                           reason="delivery_method")
    delivery = request.delivery.model_dump(exclude_none=True)
    if request.delivery.method == "email":
        delivery["email"] = request.delivery.email or member.get("email")
        if not delivery["email"]:
            raise NotOrderable("delivery by email needs an email (the member has none)", reason="delivery_email")
    try:
        listed = catalog.points_for(program, item.currency, value)
    except catalog.NotPriceable as err:
        raise NotOrderable(f"the program does not offer rewards in {item.currency}", reason="currency") from err
    discount = catalog.member_discount(orders.store, program, member["id"])  # no read without tiers
    each = discount.price(listed) if discount else listed
    points = each * request.quantity
    applied = None
    if discount:
        applied = {**discount.view(), "points_each_before": listed, "points_before": listed * request.quantity,
                   "points_after": points}
    payment = None
    if request.payment is not None:
        payment = split_payment(program, item, points, request.payment)
        points = payment["points"]  # the order holds, captures or releases only the points part
    order_id = new_id("ord")
    order = Order(
        id=order_id, program_id=program.id, member_id=member["id"], type=ItemType(item.type), item_id=item.id, item=raw,
        face_value=value, currency=item.currency, quantity=request.quantity, points=points, points_each=each,
        delivery=delivery, status=OrderStatus.PENDING,
        history=[{"status": OrderStatus.PENDING, "at": now, "reason": "points held"}],
        client_reference=idempotency_key, actor=actor, created_at=now, updated_at=now, codes=[],
        tier_discount=applied, payment=payment,
    )
    hold = Posting(
        id=new_id("pst"), program_id=program.id, member_id=member["id"], type=PostingType.HOLD,
        debit=Account.MEMBER_AVAILABLE, credit=Account.MEMBER_HELD, points=points, reference=order_id,
        reason=f"order {order_id}: {item.name}", actor=actor, created_at=now,
        metadata={"order_id": order_id, "item_id": item.id},
    )
    answer = {"order_id": order_id, "status": OrderStatus.PENDING, "points": points}
    more = []
    if payment is not None:
        if budgets is None:
            raise ValueError("a points + cash order needs the budget to receive its cash")
        received = budget.cash_received(order, actor)
        payment["received"] = received.id  # the order (written below) names its cash movement
        more = budgets.movement_items([received])
    replay = orders.create(order, hold, (idempotency_key, fingerprint), answer, more)
    if replay is not None:  # a concurrent request with the same key won
        return _replayed(orders, starter, program.id, replay, fingerprint, idempotency_key), True
    starter.start(order)
    return answer, False


def cash_for(program: Program, points: int) -> int:
    """What ``points`` are worth in minor units of the program currency, rounded up: the cash that pays
    for them in a points + cash order (a fraction of a minor unit is paid as a whole one)."""
    return -(-points * program.value_minor // program.value_points)


def min_points(price: int, bps: int) -> int:
    """The fewest points a points + cash order of ``price`` points must pay: ``bps`` of the price, rounded
    up, and at least 1."""
    return max(-(-price * bps // catalog.BPS), 1)


def _payment_invalid(field: str, reason: str, **extra: Any) -> ValidationFailed:
    return ValidationFailed(f"{field}: {reason}", errors=[{"location": "body", "field": field, "reason": reason}],
                            **extra)


def split_payment(program: Program, item: catalog.Item, price: int, payment: Payment) -> dict[str, Any]:
    """Check a points + cash payment of an order costing ``price`` points (after any tier discount) and
    answer what the order keeps of it.

    The item must allow it (``points_cash``) and be in the program's currency, which the cash is in too;
    the points pay at least ``min_points_bps`` of the price (rounded up) and less than all of it; the cash
    pays exactly the rest at the program's point value, rounded up in the programme's favour:
    ``cash = ceil((price - points) × value_minor / value_points)``. Anything else is a 422 naming the field.
    """
    rule = item.points_cash if isinstance(item, catalog.GiftCard) else None
    if rule is None:
        raise _payment_invalid("payment", f"{item.name} cannot be paid with points + cash (no points_cash)")
    cash = payment.cash
    if item.currency != program.currency:
        raise _payment_invalid("payment.cash.currency", f"points + cash is paid in the program's currency "
                               f"{program.currency}; {item.name} is in {item.currency}")
    if cash.currency != item.currency:
        raise _payment_invalid("payment.cash.currency", f"the cash must be in {item.currency}, the order's currency")
    least = min_points(price, rule.min_points_bps)
    if payment.points >= price:
        raise _payment_invalid("payment.points", f"{payment.points} points pay the whole price of {price} points: "
                               "order without payment", price_points=price)
    if payment.points < least:
        raise _payment_invalid("payment.points", f"at least {least} points ({rule.min_points_bps} bps of the price "
                               f"of {price} points)", price_points=price, min_points=least)
    due = cash_for(program, price - payment.points)
    if cash.value != due:
        raise _payment_invalid("payment.cash.value", f"the {price - payment.points} points not paid in points cost "
                               f"{due} {item.currency} minor units, not {cash.value}", expected=due,
                               price_points=price)
    return {"points": payment.points, "cash": cash.model_dump(), "price_points": price,
            "point_value": {"points": program.value_points, "value": program.value_minor}}


def _replayed(orders: OrdersPort, starter: WorkflowStarter, program_id: str, replay: Replayed, fingerprint: str,
              idempotency_key: str) -> dict[str, Any]:
    """The first answer under this Idempotency-Key (409 for another body); restarts the payout when
    the first request's answer was lost before its execution started."""
    if replay.fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different order",
                                  idempotency_key=idempotency_key)
    answer = {k: replay.result[k] for k in ("order_id", "status", "points")}
    order = orders.require(program_id, answer["order_id"])
    if order.status == OrderStatus.PENDING:
        starter.start(order)
    return answer


def masked_codes(order: Order) -> list[dict[str, Any]]:
    """An order's codes as the API shows them: masked, never sealed values or hashes."""
    return [{k: c.get(k) for k in ("masked", "expires_at", "status") if c.get(k) is not None}
            for c in order.codes]


def view(order: Order) -> dict[str, Any]:
    """What the API shows of an order: codes masked, never sealed values or hashes."""
    item = order.item
    out = {
        "order_id": order.id,
        "member_id": order.member_id,
        "type": order.type,
        "item": {"id": item["id"], "name": item["name"], "type": order.type},
        "status": order.status,
        "history": order.history,
        "points": order.points,
        "face_value": {"value": order.face_value, "currency": order.currency},
        "quantity": order.quantity,
        "delivery": order.delivery,
        "codes": masked_codes(order),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }
    if order.payment:
        out["payment"] = {k: order.payment[k] for k in ("points", "cash", "price_points", "owed_back", "refunded")
                          if order.payment.get(k) is not None}
    for name in ("tier_discount", "failure_reason", "donation_id", "provider", "delivered", "canceled_reason"):
        if getattr(order, name):
            out[name] = getattr(order, name)
    return out


def cancel(orders: OrdersPort, provider: GiftCardPort, budgets: BudgetPort, order_id: str, program_id: str,
           reason: str, actor: str, now: str) -> dict[str, Any]:
    """Cancel a completed order where the reward's policy allows it, and refund its points.

    Vouchers: every code must still be unredeemed; they are voided in the same transaction as the
    refund. Gift cards: the provider must cancel the cards, and only once the refund can commit:
    the cancel is first claimed on the order in one conditional write (COMPLETED, no other cancel
    under way), then the provider cancels, then the refund commits. When the provider refuses (or
    the commit fails), the claim is given up and the order stays COMPLETED; a claim left by a
    request that died is taken over after ``CANCEL_CLAIM_SECONDS``. Donations cannot be canceled.
    """
    order = orders.require(program_id, order_id)
    if order.status == OrderStatus.CANCELED:
        return view(order)
    policy = order.item.get("cancel_policy") or {"policy": "none"}
    if order.type == ItemType.CHARITY or policy.get("policy") == "none":
        raise NotCancelable(f"{order.item['name']} cannot be canceled", policy="none")
    if order.status != OrderStatus.COMPLETED:
        raise OrderStateConflict(
            f"only a completed order can be canceled; this one is {order.status}", status=order.status
        )
    completed_at = order.completed_at or order.updated_at
    deadline = times.parse(completed_at) + timedelta(days=policy["days"])
    if times.parse(now) > deadline:
        raise NotCancelable(f"the cancel window of {policy['days']} days ended at {deadline.isoformat()}",
                            policy=policy)
    fields: dict[str, Any] = {"canceled_reason": reason, "canceled_by": actor}
    returned = budget.returns(order, now, "canceled", actor)
    if returned:
        fields["funds_returned_at"] = now
    owed = budget.cash_owed_back(order, now, "canceled", actor)
    fields.update(budget.owed_back_fields(order, owed, now, "canceled"))
    returned = returned + owed
    extra = [orders.order_update(program_id, order_id, OrderStatus.CANCELED, (OrderStatus.COMPLETED,), now, reason,
                                fields)]
    if order.type == ItemType.VOUCHER:
        for code in order.codes:
            extra.append(orders.voucher_void(program_id, code["hash"], now, reason))
    claim_id = None
    if order.type == ItemType.GIFT_CARD:
        claim_id = _claim_cancel(orders, program_id, order_id, actor, now)
        if claim_id is None:  # another cancel finished meanwhile
            return view(orders.require(program_id, order_id))
        try:
            canceled = _cancel_at_provider(provider, program_id, order_id)
        except (ProviderTimeout, ProviderUnavailable) as err:  # nothing changed: the caller may retry
            orders.unclaim_cancel(program_id, order_id, claim_id)
            raise ProviderNotAnswering(f"the provider did not cancel the gift card: {err}") from err
        except ProviderRejected as err:
            orders.unclaim_cancel(program_id, order_id, claim_id)
            raise NotCancelable(f"the provider refused to cancel the gift card: {err}", policy=policy) from err
        except Exception:
            orders.unclaim_cancel(program_id, order_id, claim_id)
            raise
        if not canceled:
            orders.unclaim_cancel(program_id, order_id, claim_id)
            raise NotCancelable("the provider did not cancel the gift card", policy=policy)
    if returned:
        extra.extend(budgets.movement_items(returned))
    refund = Posting(
        id=new_id("pst"), program_id=program_id, member_id=order.holder, type=PostingType.REFUND,
        debit=Account.PROGRAM_REDEEMED, credit=Account.MEMBER_AVAILABLE, points=order.points,
        reference=order_id, reason=f"order {order_id} canceled: {reason}", actor=actor, created_at=now,
        metadata={"order_id": order_id},
    )
    try:
        orders.settle(order, refund, "refund", extra[0], now, more=extra[1:])
    except StaleCondition as err:
        if err.index == 0:
            raise OrderStateConflict("the order changed meanwhile; read it again") from err
        raise NotCancelable("a voucher of this order was already redeemed or voided") from err
    except Exception:
        if claim_id:  # the card is canceled but the refund did not commit: a retry may claim again
            orders.unclaim_cancel(program_id, order_id, claim_id)
        raise
    return view(orders.require(program_id, order_id))


CANCEL_CLAIM_SECONDS = 60  # longer than any API request runs (29 s): a claim this old was left by a dead one


def _claim_cancel(orders: OrdersPort, program_id: str, order_id: str, actor: str, now: str) -> str | None:
    """Claim the completed order for this cancel: the claim's id, None when the order is CANCELED
    already, OrderStateConflict when it is not COMPLETED or another cancel is under way."""
    claim_id = new_id("ccl")
    stale = times.iso(times.parse(now) - timedelta(seconds=CANCEL_CLAIM_SECONDS))
    if orders.claim_cancel(program_id, order_id, {"id": claim_id, "at": now, "by": actor}, stale):
        return claim_id
    current = orders.require(program_id, order_id)
    if current.status == OrderStatus.CANCELED:
        return None
    if current.status != OrderStatus.COMPLETED:
        raise OrderStateConflict(f"only a completed order can be canceled; this one is {current.status}",
                                 status=current.status)
    raise OrderStateConflict("another cancel of this order is under way; read it again shortly",
                             status=current.status)


def _cancel_at_provider(provider: GiftCardPort, program_id: str, order_id: str) -> bool:
    """Cancel the order's cards; True once the provider says they are canceled. After an error (a
    timeout may hide a cancel that happened) the provider's own record decides."""
    try:
        result = provider.cancel(program_id, order_id)
    except Exception:
        result = provider.status(program_id, order_id)
        if result is None or result.status != IssuanceStatus.CANCELED:
            raise
    return result is not None and result.status == IssuanceStatus.CANCELED


def reveal(orders: OrdersPort, vault: VaultPort, program_id: str, order_id: str, actor: str, now: str
           ) -> dict[str, Any]:
    """Decrypt an order's codes; every reveal is recorded with its actor and time."""
    order = orders.require(program_id, order_id)
    if order.status not in (OrderStatus.ISSUED, OrderStatus.COMPLETED):
        raise OrderStateConflict(f"codes are revealed for issued or completed orders; this one is {order.status}",
                                 status=order.status)
    codes = []
    for code in order.codes:
        entry = {"code": vault.open(code["sealed"], program_id, order_id), "masked": code["masked"]}
        if code.get("expires_at"):
            entry["expires_at"] = code["expires_at"]
        codes.append(entry)
    orders.record_reveal(program_id, order_id, new_id("rvl"), actor, now, len(codes))
    return {"order_id": order_id, "codes": codes}
