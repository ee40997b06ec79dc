"""Rewards: gift cards and vouchers a brand issues from its budget, without points.

A reward is an order of kind ``reward`` (id ``rwd_…``): the same payout workflow issues, delivers and
completes it, the budget pays it (gift cards: face value and fee), and finance sees it with the
orders. It holds no points, so capture and release move only its status and the budget.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from treue.core import ids
from treue.core.ids import new_id
from treue.core.ledger import request_fingerprint
from treue.core.programs import Program
from treue.core.records import Order
from treue.core.statuses import ItemType, OrderStatus
from treue.errors import BudgetTooLow, IdempotencyConflict, ItemNotFound, NotOrderable, RewardNotFound
from treue.logic import budget, catalog, members
from treue.logic.models import RewardRequest
from treue.logic.orders import masked_codes

if TYPE_CHECKING:
    from treue.logic.ports import BudgetPort, ItemLookup, OrdersPort, Replayed, WorkflowStarter

REWARD_TYPES = (ItemType.GIFT_CARD, ItemType.VOUCHER)


def build(program: Program, raw_item: dict[str, Any] | None, request: RewardRequest, member: dict[str, Any] | None,
          now: str, actor: str) -> Order:
    """The reward order for ``request`` (its id still empty: the caller gives it one), or NotOrderable /
    ItemNotFound saying why not."""
    if raw_item is None:
        raise ItemNotFound(f"catalog item {request.item_id} does not exist", item_id=request.item_id)
    item = catalog.parse_item(raw_item)
    if item.type not in REWARD_TYPES:
        raise NotOrderable(f"{item.name} is a {item.type}; rewards are gift cards or vouchers", reason="item_type")
    country = (member or {}).get("country") or program.country
    if country and country not in item.countries:
        raise NotOrderable(f"{item.name} is not available in {country}", reason="country",
                           countries=list(item.countries))
    value = request.face_value if request.face_value is not None else (
        item.face_value if isinstance(item, catalog.Voucher) else None)
    if value is None or not item.accepts(value):
        raise NotOrderable(f"{item.name} takes a face value {item.value_rule()} {item.currency} minor units",
                           reason="face_value")
    recipient = request.recipient.model_dump(exclude_none=True)
    email = request.recipient.email or (member or {}).get("email")
    if request.delivery is not None:
        delivery = request.delivery.model_dump(exclude_none=True)
        if delivery["method"] == "email":
            delivery["email"] = delivery.get("email") or email
            if not delivery["email"]:
                raise NotOrderable("delivery by email needs the recipient's email", reason="delivery_email")
    else:
        delivery = {"method": "email", "email": email} if email else {"method": "api"}
    if delivery["method"] not in item.delivery_methods:
        raise NotOrderable(f"{item.name} is delivered by {', '.join(item.delivery_methods)}",
                           reason="delivery_method")
    return Order(
        id="", kind="reward", program_id=program.id, type=ItemType(item.type), item_id=item.id, item=raw_item,
        face_value=value, currency=item.currency, quantity=1, points=0, points_each=0,
        recipient=recipient, delivery=delivery, reference=request.reference, status=OrderStatus.PENDING,
        history=[{"status": OrderStatus.PENDING, "at": now, "reason": "reward accepted (paid from the budget)"}],
        actor=actor, client_reference="", created_at=now, updated_at=now, codes=[],
        member_id=member["id"] if member else None, message=request.message or None,
    )


def cost(order: Order) -> int:
    face, fee = budget.cost_of(order)
    return face + fee if budget.draws_budget(order) else 0


def issue(orders: OrdersPort, budgets: BudgetPort, starter: WorkflowStarter, program: Program, find_item: ItemLookup,
          request: RewardRequest, idempotency_key: str, actor: str, now: str) -> tuple[dict[str, Any], bool]:
    """Accept one reward: check it and the budget, store it with its idempotency guard, start the payout.

    A replayed Idempotency-Key is answered before any check against live state (catalog, member,
    budget): a retry after the budget fell must learn that its first request was accepted, not 409."""
    fingerprint = request_fingerprint(request.fingerprint_payload())
    earlier = orders.replay_of(program.id, "reward", idempotency_key)
    if earlier is not None:
        return _replayed(orders, starter, program.id, earlier, fingerprint, idempotency_key), True
    member = None
    if request.recipient.member_id:
        member = members.get(orders.store, program.id, request.recipient.member_id)
    order = replace(build(program, find_item(request.item_id), request, member, now, actor), id=new_id("rwd"),
                    client_reference=idempotency_key)
    need = cost(order)
    if need:
        available, _ = budgets.available(program.id, order.currency)
        if available < need:
            raise BudgetTooLow(f"the {order.currency} budget has {available} minor units; this reward needs {need}",
                               currency=order.currency, available=available, needed=need)
    answer = {"reward_id": order.id, "status": OrderStatus.PENDING}
    replay = orders.create_reward(order, ("reward", idempotency_key, fingerprint), answer)
    if replay is not None:  # a concurrent request with the same key won
        return _replayed(orders, starter, program.id, replay, fingerprint, idempotency_key), True
    starter.start(order)
    return answer, False


def _replayed(orders: OrdersPort, starter: WorkflowStarter, program_id: str, replay: Replayed, fingerprint: str,
              idempotency_key: str) -> dict[str, Any]:
    """The reward the first request under this Idempotency-Key accepted, with its current status (409
    for another body); restarts the payout when the first answer was lost before it started."""
    if replay.fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different reward",
                                  idempotency_key=idempotency_key)
    order = orders.require(program_id, replay.result["reward_id"])
    if order.status == OrderStatus.PENDING:
        starter.start(order)
    return {"reward_id": order.id, "status": order.status}


def view(order: Order) -> dict[str, Any]:
    """What the API shows of a reward: like an order, with recipient and reference instead of points."""
    item = order.item
    out = {
        "reward_id": order.id, "type": order.type,
        "item": {"id": item["id"], "name": item["name"], "type": order.type},
        "recipient": order.recipient or {}, "reference": order.reference,
        "status": order.status, "history": order.history,
        "face_value": {"value": order.face_value, "currency": order.currency},
        "delivery": order.delivery,
        "codes": masked_codes(order),
        "created_at": order.created_at, "updated_at": order.updated_at,
    }
    for name in ("member_id", "batch_id", "message", "failure_reason", "provider", "delivered", "funds"):
        if getattr(order, name):
            out[name] = getattr(order, name)
    return out


def require_id(reward_id: str) -> str:
    if not ids.well_formed(reward_id, "rwd"):
        raise RewardNotFound(f"reward {reward_id[:40]} does not exist")
    return reward_id
