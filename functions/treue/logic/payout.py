"""The steps of the payout workflow (one Lambda task each; the ASL is infra/payout.asl.json).

Every step is idempotent: Step Functions retries a task after a timeout or a transient error, so a
step that already did its work answers as if it had just done it. Steps raise named exceptions the
state machine's Retry/Catch match: ``Contention`` and the provider's ``ProviderTimeout`` /
``ProviderUnavailable`` are retried; ``OrderNotPayable``, ``HoldNotFound``, ``OutOfStock`` and
``ProviderRejected`` end the order FAILED after its points are released.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from treue.core import times
from treue.core.ids import new_id
from treue.core.issued_records import Voucher
from treue.core.ledger import Account, Posting, PostingType
from treue.core.records import Order
from treue.core.statuses import EventType, IssuanceStatus, ItemType, OrderStatus, VoucherState
from treue.errors import HoldNotFound, InsufficientPoints, OrderNotPayable, StaleCondition
from treue.logic import budget, catalog, codes
from treue.logic.orders import sources_of
from treue.providers.giftcards import IssueRequest
from treue.store.events import event_put

if TYPE_CHECKING:
    from treue.logic.ports import BudgetPort, CharityPort, GiftCardPort, OrdersPort, VaultPort

# Error names of the state machine → the failure reason an order shows
FAILURE_REASONS = {
    "InsufficientFunds": "insufficient_funds",
    "OutOfStock": "out_of_stock",
    "ProviderRejected": "provider_rejected",
    "ProviderUnavailable": "provider_unavailable",
    "ProviderTimeout": "provider_timeout",
    "HoldNotFound": "hold_not_found",
    "OrderNotPayable": "order_not_payable",
    "Contention": "storage_busy",
    "States.Timeout": "timeout",
}


def is_reward(order: Order) -> bool:
    return order.is_reward


def _order(orders: OrdersPort, event: dict[str, Any]) -> Order:
    return orders.require(event["program_id"], event["order_id"])


def verify_hold(orders: OrdersPort, event: dict[str, Any], now: str) -> dict[str, Any]:
    """PENDING → PROCESSING once the member's held points are seen to cover the order."""
    order = _order(orders, event)
    if order.status in (OrderStatus.PROCESSING, OrderStatus.ISSUED, OrderStatus.COMPLETED):
        return {"status": order.status}
    if order.status != OrderStatus.PENDING:
        raise OrderNotPayable(f"order {order.id} is {order.status}")
    if is_reward(order):  # no points to hold: the budget pays it when it is issued
        _move(orders, order, OrderStatus.PROCESSING, now, "reward: paid from the budget")
        return {"status": OrderStatus.PROCESSING}
    balance = orders.store.get_balance(order.program_id, order.holder)
    if balance is None or balance["held"] < order.points:
        raise HoldNotFound(f"the member holds fewer than the order's {order.points} points")
    _move(orders, order, OrderStatus.PROCESSING, now, "hold verified")
    return {"status": OrderStatus.PROCESSING}


def _move(orders: OrdersPort, order: Order, to: str, now: str, reason: str,
          fields: dict[str, Any] | None = None, more: list[dict[str, Any]] | None = None) -> bool:
    """Move the order (with ``more`` items in the same transaction); False when another attempt already did."""
    update = orders.order_update(order.program_id, order.id, to, sources_of(to), now, reason, fields)
    try:
        orders.transact([update, *(more or [])])
    except StaleCondition as err:
        current = orders.require(order.program_id, order.id)
        if err.index == 0 and _reached(current.status, to):
            return False
        if err.index == 0:
            raise OrderNotPayable(f"order {order.id} is {current.status}") from err
        raise
    return True


_ORDER: dict[str, int] = {s: i for i, s in enumerate(
    (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.ISSUED, OrderStatus.COMPLETED))}


def _reached(current: str, target: str) -> bool:
    return current in _ORDER and target in _ORDER and _ORDER[current] >= _ORDER[target]


def _processing(orders: OrdersPort, event: dict[str, Any]) -> Order | None:
    """The order when it still needs issuing; None when an earlier attempt already issued it."""
    order = _order(orders, event)
    if order.status in (OrderStatus.ISSUED, OrderStatus.COMPLETED):
        return None
    if order.status != OrderStatus.PROCESSING:
        raise OrderNotPayable(f"order {order.id} is {order.status}")
    return order


def issue_voucher(orders: OrdersPort, vault: VaultPort, event: dict[str, Any], now: str) -> dict[str, Any]:
    """Generate the voucher codes, seal them, and store them with a keyed hash for the till."""
    order = _processing(orders, event)
    if order is None:
        return {"issued": "before"}
    item = catalog.parse_item(order.item)
    if not isinstance(item, catalog.Voucher):
        raise OrderNotPayable(f"order {order.id} is not a voucher order")
    pid, oid = order.program_id, order.id
    expires = times.iso(times.parse(now) + timedelta(days=item.validity_days))
    for _attempt in range(3):  # a hash collision of 80-bit codes is astronomically rare; retry anyway
        sealed, vouchers = [], []
        for _ in range(order.quantity):
            code = codes.new_voucher_code()
            code_hash = vault.lookup_hash(pid, codes.normalize(code))
            masked = codes.mask(code)
            sealed.append({"sealed": vault.seal(code, pid, oid), "hash": code_hash, "masked": masked,
                           "expires_at": expires})
            vouchers.append(orders.voucher_put(pid, code_hash, Voucher(
                order_id=oid, member_id=order.member_id, item_id=item.id, name=item.name,
                discount=item.discount.model_dump(exclude_none=True), currency=item.currency,
                face_value=item.face_value, minimum_spend=item.minimum_spend, status=VoucherState.ACTIVE,
                masked=masked, issued_at=now, expires_at=expires,
            )))
        try:
            _move(orders, order, OrderStatus.ISSUED, now, f"{len(sealed)} voucher code(s) issued",
                  {"codes": sealed, "issued_at": now}, vouchers)
            return {"issued": len(sealed)}
        except StaleCondition:
            continue
    raise OrderNotPayable("could not store unique voucher codes")


def issue_gift_card(orders: OrdersPort, vault: VaultPort, provider: GiftCardPort, budgets: BudgetPort,
                    event: dict[str, Any], now: str) -> dict[str, Any]:
    """Pay face value and fee from the budget, ask the provider for the cards (order id = idempotency
    key) and seal the codes."""
    order = _processing(orders, event)
    if order is None:
        return {"issued": "before"}
    item = catalog.parse_item(order.item)
    if not isinstance(item, catalog.GiftCard):
        raise OrderNotPayable(f"order {order.id} is not a gift card order")
    budget.draw(budgets, orders, order, now)
    issuance = provider.issue(IssueRequest(
        order_id=order.id, program_id=order.program_id, client_reference=order.client_reference,
        item_id=item.id, brand=item.brand, currency=item.currency, face_value=order.face_value,
        quantity=order.quantity, expiry_months=item.expiry.months,
    ))
    sealed = []
    for card in issuance.cards:
        entry = {"sealed": vault.seal(card.code, order.program_id, order.id), "masked": codes.mask(card.code)}
        if card.expires_at:
            entry["expires_at"] = card.expires_at
        sealed.append(entry)
    try:
        _move(orders, order, OrderStatus.ISSUED, now, f"{len(sealed)} gift card(s) issued by {issuance.provider}",
              {"codes": sealed, "issued_at": now,
               "provider": {"name": issuance.provider, "reference": issuance.reference}})
    except OrderNotPayable:
        current = orders.require(order.program_id, order.id)
        if current.releasing or current.status == OrderStatus.FAILED:
            # a release claimed the order while the provider was issuing: these cards can never be
            # delivered, and the release may have looked before they existed
            provider.cancel(order.program_id, order.id)
        raise
    return {"issued": len(sealed)}


def record_donation(orders: OrdersPort, charities: CharityPort, budgets: BudgetPort, event: dict[str, Any], now: str
                    ) -> dict[str, Any]:
    """Pay the donation from the budget, record it with the charity adapter and keep its receipt."""
    order = _processing(orders, event)
    if order is None:
        return {"issued": "before"}
    budget.draw(budgets, orders, order, now)
    donation = charities.donate(order, now)
    _move(orders, order, OrderStatus.ISSUED, now, f"donation {donation.id} recorded",
          {"donation_id": donation.id}, orders.donation_items(order.program_id, donation))
    return {"issued": donation.id}


def _subject(order: Order) -> dict[str, Any]:
    """Who and what an order event is about (its ``data``)."""
    out = {"order_id": order.id, "type": order.type, "item_id": order.item_id,
           "face_value": {"value": order.face_value, "currency": order.currency},
           "quantity": order.quantity}
    for name in ("member_id", "recipient", "batch_id", "reference"):
        if getattr(order, name):
            out[name] = getattr(order, name)
    return out


def deliver(orders: OrdersPort, event: dict[str, Any], now: str) -> dict[str, Any]:
    """Mark the reward delivered and write its ``reward.delivered`` event (the mailer and the webhooks
    read the event log)."""
    order = _order(orders, event)
    if order.delivered:
        return {"delivered": "before"}
    if order.status != OrderStatus.ISSUED:
        raise OrderNotPayable(f"order {order.id} is {order.status}")
    method = order.delivery["method"]
    event_id = "evt_" + order.id.split("_", 1)[1]
    summary = {"event_id": event_id, "method": method, "at": now}
    if method == "email":
        summary["to"] = _mask_email(order.delivery["email"])
    outbox = event_put(orders.table, order.program_id, EventType.REWARD_DELIVERED, {
        **_subject(order), "method": method, "to": order.delivery.get("email"),
        "codes": [c["masked"] for c in order.codes], "donation_id": order.donation_id,
    }, now, event_id)
    update = orders.order_update(order.program_id, order.id, None, (OrderStatus.ISSUED,), now, None,
                                 {"delivered": summary})
    try:
        orders.transact([update, outbox])
    except StaleCondition as err:
        if orders.require(order.program_id, order.id).delivered:
            return {"delivered": "before"}
        raise OrderNotPayable(f"order {order.id} could not be marked delivered") from err
    return {"delivered": event_id}


def _mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"


def capture(orders: OrdersPort, event: dict[str, Any], now: str) -> dict[str, Any]:
    """held → program:redeemed, and the order COMPLETED, in one transaction."""
    order = _order(orders, event)
    if order.status == OrderStatus.COMPLETED:
        return {"status": OrderStatus.COMPLETED}
    if order.status != OrderStatus.ISSUED:
        raise OrderNotPayable(f"order {order.id} is {order.status}")
    done = event_put(orders.table, order.program_id, EventType.ORDER_COMPLETED,
                     {**_subject(order), "points": order.points}, now)
    unwatch = orders.unwatch_item(order.program_id, order.id)  # final: off the sweeper's list
    if is_reward(order):
        _move(orders, order, OrderStatus.COMPLETED, now, "reward delivered", {"completed_at": now}, [done, unwatch])
        return {"status": OrderStatus.COMPLETED}
    posting = Posting(
        id=new_id("pst"), program_id=order.program_id, member_id=order.holder, type=PostingType.CAPTURE,
        debit=Account.MEMBER_HELD, credit=Account.PROGRAM_REDEEMED, points=order.points, reference=order.id,
        reason=f"order {order.id} completed", actor="workflow:payout", created_at=now,
        metadata={"order_id": order.id},
    )
    update = orders.order_update(order.program_id, order.id, OrderStatus.COMPLETED, (OrderStatus.ISSUED,), now,
                                 "points captured", {"completed_at": now})
    _settle(orders, order, posting, "capture", update, now, [done, unwatch])
    return {"status": OrderStatus.COMPLETED}


def release(orders: OrdersPort, provider: GiftCardPort, budgets: BudgetPort, event: dict[str, Any], now: str
            ) -> dict[str, Any]:
    """Compensation: undo what was issued, give back what the budget paid, release the held points,
    owe a points + cash order's cash back (``budget.cash_owed_back``), and end the order FAILED.

    Check first, undo after: the order is first claimed for the release in one conditional write
    (``releasing``; only while it is PENDING, PROCESSING or ISSUED and not delivered). A delivered or
    completed order cannot fail any more: its release changes nothing, cancels nothing and answers
    ``released: False``. Once claimed, no step moves the order forward, draws for it or delivers it,
    so only then is a gift card canceled at the provider; a retried release continues its claim.
    """
    order = _order(orders, event)
    if order.status == OrderStatus.FAILED:
        return {"status": OrderStatus.FAILED, "reason": order.failure_reason, "released": True}
    error = event.get("error") or {}
    name = error.get("Error", "")
    claim = {"at": now, "reason": FAILURE_REASONS.get(name, "internal_error"), "error": name,
             "detail": error_detail(error)}
    claimed = orders.claim_release(order.program_id, order.id, claim, now)
    if claimed is None:  # delivered, completed, canceled, or failed by another attempt meanwhile
        current = orders.require(order.program_id, order.id)
        if current.status == OrderStatus.FAILED:
            return {"status": OrderStatus.FAILED, "reason": current.failure_reason, "released": True}
        return {"status": current.status, "reason": None, "released": False}
    order, claim = claimed, claimed.releasing or claim  # a retried release continues the first claim
    name, reason = claim["error"], claim["reason"]
    more = []
    if order.type == ItemType.GIFT_CARD:
        issued = provider.status(order.program_id, order.id)  # it may have issued before timing out
        if issued is not None and issued.status != IssuanceStatus.CANCELED:
            provider.cancel(order.program_id, order.id)
    if order.type == ItemType.VOUCHER:
        more = [orders.voucher_void(order.program_id, c["hash"], now, "order failed")
                for c in order.codes]
    fields = {"failure_reason": reason, "failure_detail": claim["detail"]}
    returned = budget.returns(order, now, "failed", "workflow:payout")
    if returned:
        fields["funds_returned_at"] = now
    owed = budget.cash_owed_back(order, now, "failed", "workflow:payout")  # a points + cash order's cash
    fields.update(budget.owed_back_fields(order, owed, now, "failed"))
    if returned or owed:
        more.extend(budgets.movement_items(returned + owed))
    failed = {**_subject(order), "points_released": order.points, "reason": reason}
    if order.payment:
        failed["cash_refund_due"] = budget.cash_refund_due(order)
    more.append(event_put(orders.table, order.program_id, EventType.ORDER_FAILED, failed, now))
    more.append(orders.unwatch_item(order.program_id, order.id))  # final: off the sweeper's list
    if is_reward(order):  # nothing was held: the status, the budget and the event move together
        try:
            _move(orders, order, OrderStatus.FAILED, now, reason, fields, more)
        except OrderNotPayable:
            current = orders.require(order.program_id, order.id)
            if current.status != OrderStatus.FAILED:
                raise
            reason = current.failure_reason  # a concurrent try of this release committed first
        return {"status": OrderStatus.FAILED, "reason": reason, "released": True}
    posting = Posting(
        id=new_id("pst"), program_id=order.program_id, member_id=order.holder, type=PostingType.RELEASE,
        debit=Account.MEMBER_HELD, credit=Account.MEMBER_AVAILABLE, points=order.points, reference=order.id,
        reason=f"order {order.id} failed: {reason}", actor="workflow:payout", created_at=now,
        metadata={"order_id": order.id, "error": name},
    )
    update = orders.order_update(order.program_id, order.id, OrderStatus.FAILED, sources_of(OrderStatus.FAILED),
                                 now, reason, fields)
    _settle(orders, order, posting, "release", update, now, more)
    return {"status": OrderStatus.FAILED, "reason": reason, "released": True}


def error_detail(error: dict[str, Any]) -> str:
    """The message of a failed task's error as Step Functions passes it on (``Cause``: the task's JSON
    error, else text), at most 300 characters."""
    cause = error.get("Cause") or ""
    try:
        return str(json.loads(cause).get("errorMessage", ""))[:300]
    except (ValueError, AttributeError):
        return str(cause)[:300]


def _settle(orders: OrdersPort, order: Order, posting: Posting, kind: str, update: dict[str, Any], now: str,
            more: Sequence[dict[str, Any]] = ()) -> None:
    try:
        replay = orders.settle(order, posting, kind, update, now, more=list(more))
    except InsufficientPoints as err:
        raise HoldNotFound(f"the member holds fewer than the order's {order.points} points") from err
    except StaleCondition as err:
        current = orders.require(order.program_id, order.id)
        target = OrderStatus.COMPLETED if kind == "capture" else OrderStatus.FAILED
        if current.status == target:
            return
        raise OrderNotPayable(f"order {order.id} is {current.status}") from err
    if replay is not None and replay.fingerprint != kind:
        raise OrderNotPayable(f"order {order.id} was already settled by {replay.fingerprint}")
