"""Paid membership (issue 17 item 5): a member buys a plan of the program's ``membership_plans`` at the partner's
payment provider; Treue records it, grants the plan's benefits while it is active and ends it when it lapses.
The rules of the game (plans, periods, states, the grant) are in ``treue.core.memberships``.

- **Start** (``POST /v1/members/{id}/memberships``) is one DynamoDB transaction, exactly once per
  ``payment_reference`` (an idempotency guard of kind ``membership``, which renewals share: one payment pays one
  period): the membership item (listed for the daily run by its period's end), the grant on the member's
  ``TIER`` item (on condition that no other membership's grant is active: one active membership at a time, else
  409 ``membership-active``), the plan's ``welcome_points`` as an earn posting from
  ``program:bonus:membership:<plan id>`` (so the KPIs show what each plan's welcome cost, like a rule's bonus;
  exactly once with the membership), the fee as a money movement ``membership:fees_received`` →
  ``revenue:memberships`` in the plan's currency (the journal and the trial balance show it; the reward budget
  never sees it), ``membership.started`` and the audit records.
- **Renew** moves ``current_period_end`` on by the plan's ``period_months`` (counted from the start: see the core
  module), books the fee, moves the grant's ``until`` and writes ``membership.renewed``; once per reference. A
  membership that has ended is not renewed (409 ``membership-ended``: start a new one).
- **Cancel** sets ``cancel_at_period_end``: the membership stays active, with its benefits, until the period
  ends (nothing is refunded); canceling again changes nothing.
- **The daily run** (``run_memberships``: the ``MembershipReview`` schedule and ``treue jobs run memberships``)
  ends every active membership whose period has ended: the item ``ended`` (``lapsed`` or ``canceled``), the grant
  removed, ``membership.ended`` with the tier before and after; each write is conditioned on the version read,
  so reruns and concurrent runs end a membership once. Reads never wait for it: a grant whose ``until`` has passed
  grants nothing, and a membership whose period has ended answers ``status: ended``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from treue.core import memberships as rules
from treue.core import times
from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType, bonus_account, request_fingerprint
from treue.core.money import MoneyAccount, Movement, MovementType
from treue.core.statuses import EventType
from treue.errors import (
    Contention,
    IdempotencyConflict,
    MemberNotFound,
    MembershipActive,
    MembershipEnded,
    MembershipNotFound,
    StaleCondition,
    ValidationFailed,
)
from treue.logic.lifecycle import repay
from treue.logic.members import require_id
from treue.logic.points import credit_terms
from treue.store.budget import BudgetStore
from treue.store.memberships import MembershipStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from treue.core.programs import Program
    from treue.logic.ports import ProgramLookup
    from treue.store.dynamodb import Store

KIND = "membership"  # the idempotency guard of a payment (start or renewal), by payment_reference
ATTEMPTS = 5
RUN_PAGE = 100
_TICK = datetime.resolution  # the last instant of a period (its end is the first instant after it)


def _plan(program: Program, plan_id: str) -> rules.Plan:
    found = next((plan for plan in program.plans() if plan.id == plan_id), None)
    if found is None:
        known = ", ".join(plan.id for plan in program.plans()) or "none"
        raise ValidationFailed(f"plan_id: no membership plan {plan_id} in the program's membership_plans ({known})",
                               errors=[{"location": "body", "field": "plan_id", "reason": "unknown plan"}])
    return found


def view(membership: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The membership as the API answers it (its status at ``now``: ended once its period has passed)."""
    status = rules.status_at(membership, now)
    ended = status == rules.ENDED and membership["status"] == rules.ACTIVE  # not written by the daily run yet
    return {
        "membership_id": membership["membership_id"], "member_id": membership["member_id"],
        "plan_id": membership["plan_id"], "plan": membership["plan"], "status": status,
        "starts_at": membership["starts_at"], "current_period_end": membership["current_period_end"],
        "cancel_at_period_end": bool(membership.get("cancel_at_period_end")),
        "canceled_at": membership.get("canceled_at"),
        "ended_at": membership["current_period_end"] if ended else membership.get("ended_at"),
        "ended_reason": rules.end_reason(membership) if ended else membership.get("ended_reason"),
        "periods": int(membership["periods"]), "payments": membership.get("payments") or [],
        "created_at": membership["created_at"],
    }


def _fee(program_id: str, membership: dict[str, Any], plan: rules.Plan, reference: str, actor: str, now: str
         ) -> list[Movement]:
    """The fee of the period just paid as revenue (none for a free plan)."""
    if plan.price <= 0:
        return []
    paid = membership["payments"][-1]
    return [Movement(
        id=new_id("mov"), program_id=program_id, currency=plan.currency, type=MovementType.MEMBERSHIP_FEE,
        debit=MoneyAccount.MEMBERSHIP_FEES, credit=MoneyAccount.MEMBERSHIP_REVENUE, amount=plan.price,
        reference=reference,
        reason=f"membership {membership['membership_id']} ({plan.id}): {paid['period_start']} to {paid['period_end']}",
        actor=actor, created_at=now,
        metadata={"membership_id": membership["membership_id"], "member_id": membership["member_id"],
                  "plan_id": plan.id, "period_start": paid["period_start"], "period_end": paid["period_end"]})]


def _welcome(program: Program, member_id: str, membership: dict[str, Any], plan: rules.Plan, actor: str,
             now: str) -> Posting | None:
    """The plan's welcome points, from the plan's own bonus account (None: the plan pays none)."""
    if plan.welcome_points <= 0:
        return None
    metadata: dict[str, Any] = {"trigger": "membership", "membership_id": membership["membership_id"],
                                "plan_id": plan.id, "occurred_at": membership["starts_at"],
                                "rules": [{"rule_id": plan.bonus_account_id, "version": program.version}]}
    metadata.update(credit_terms(program, rules.parse(membership["starts_at"])))  # its expiry date, if any
    return Posting(
        id=new_id("pst"), program_id=program.id, member_id=member_id, type=PostingType.EARN,
        debit=bonus_account(plan.bonus_account_id), credit=Account.MEMBER_AVAILABLE, points=plan.welcome_points,
        reference=membership["membership_id"], reason=f"membership {plan.id}: welcome points", actor=actor,
        created_at=now, metadata=metadata)


def _replayed(store: Store, program: Program, member_id: str, replay: Any, fingerprint: str, reference: str,
              now: datetime) -> dict[str, Any]:
    if replay.fingerprint != fingerprint:
        raise IdempotencyConflict(f"payment {reference} was already recorded with a different request",
                                  payment_reference=reference)
    found = MembershipStore(store).get(program.id, member_id, replay.result["membership_id"])
    if found is None:  # written in the guard's own transaction: never missing
        raise MembershipNotFound(f"membership {replay.result['membership_id']} does not exist")
    return {**view(found, now), "welcome": replay.result.get("welcome"), "replayed": True}


def start(store: Store, program: Program, member_id: str, plan_id: str, payment_reference: str,
          starts_at: datetime | None, actor: str, now: str) -> dict[str, Any]:
    """Start a membership of ``plan_id`` paid by ``payment_reference`` (exactly once per reference)."""
    require_id(member_id)
    plan = _plan(program, plan_id)
    clock = times.parse(now)
    begin = (starts_at or clock).astimezone(UTC)
    fingerprint = request_fingerprint({"member_id": member_id, "plan_id": plan_id, "action": "start",
                                       "starts_at": starts_at.isoformat() if starts_at else None})
    replay = store.replay_of(program.id, KIND, payment_reference)
    if replay is not None:
        return _replayed(store, program, member_id, replay, fingerprint, payment_reference, clock)
    membership = rules.started(new_id("msh"), member_id, plan, begin, payment_reference, clock)
    if rules.parse(membership["current_period_end"]) <= clock:
        raise ValidationFailed(f"starts_at: a membership starting {membership['starts_at']} would have ended at "
                               f"{membership['current_period_end']}, before now",
                               errors=[{"location": "body", "field": "starts_at", "reason": "period already over"}])
    memberships = MembershipStore(store)
    grant = rules.grant_of(membership).to_item()
    welcome = _welcome(program, member_id, membership, plan, actor, now)
    event = {"member_id": member_id, "membership_id": membership["membership_id"], "plan_id": plan.id,
             "tier": plan.tier, "starts_at": membership["starts_at"],
             "current_period_end": membership["current_period_end"],
             "price": {"value": plan.price, "currency": plan.currency}, "payment_reference": payment_reference,
             "welcome_points": plan.welcome_points}
    extra = [memberships.membership_put(program.id, membership, 0, "started", now),
             memberships.grant_put(program.id, member_id, grant, rules.iso(clock)),
             store.event_item(program.id, EventType.MEMBERSHIP_STARTED, event, now),
             *BudgetStore(store).movement_items(_fee(program.id, membership, plan, payment_reference, actor, now))]
    answer_welcome = {"points_earned": plan.welcome_points,
                      "breakdown": [{"rule_id": plan.bonus_account_id, "version": program.version,
                                     "points": plan.welcome_points}] if plan.welcome_points else []}
    result = {"membership_id": membership["membership_id"], "welcome": answer_welcome}
    try:
        written = store.post(program.id, member_id, (KIND, payment_reference, fingerprint), result, welcome, now,
                             extra)
    except StaleCondition as err:
        if err.index == 1:
            raise MembershipActive(f"member {member_id} already has an active paid membership: renew or cancel it",
                                   member_id=member_id) from err
        raise
    if written is not None:
        return _replayed(store, program, member_id, written, fingerprint, payment_reference, clock)
    if welcome is not None:  # new points pay back what the member owes first
        repay(store, program.id, member_id, f"membership:{membership['membership_id']}", now, actor)
    return {**view(membership, clock), "welcome": answer_welcome, "replayed": False}


def _require(store: Store, program_id: str, member_id: str, membership_id: str) -> dict[str, Any]:
    require_id(member_id)
    found = MembershipStore(store).get(program_id, member_id, membership_id)
    if found is None:
        if store.get_balance(program_id, member_id) is None:
            raise MemberNotFound(f"member {member_id} does not exist")
        raise MembershipNotFound(f"member {member_id} has no membership {membership_id}")
    return found


def renew(store: Store, program: Program, member_id: str, membership_id: str, payment_reference: str, actor: str,
          now: str) -> dict[str, Any]:
    """One more period of the membership, paid by ``payment_reference`` (exactly once per reference), at the
    plan's current price and length; it undoes a cancel."""
    clock = times.parse(now)
    fingerprint = request_fingerprint({"member_id": member_id, "membership_id": membership_id, "action": "renew"})
    memberships = MembershipStore(store)
    for _ in range(ATTEMPTS):
        current = _require(store, program.id, member_id, membership_id)
        replay = store.replay_of(program.id, KIND, payment_reference)
        if replay is not None:
            return _replayed(store, program, member_id, replay, fingerprint, payment_reference, clock)
        if rules.status_at(current, clock) != rules.ACTIVE:
            raise MembershipEnded(f"membership {membership_id} ended at {current['current_period_end']}: start a new "
                                  "one", membership_id=membership_id)
        plan = _plan(program, current["plan_id"])
        membership = rules.renewed(current, plan, payment_reference, clock)
        event = {"member_id": member_id, "membership_id": membership_id, "plan_id": plan.id, "tier": plan.tier,
                 "current_period_end": membership["current_period_end"],
                 "price": {"value": plan.price, "currency": plan.currency}, "payment_reference": payment_reference}
        extra = [memberships.membership_put(program.id, membership, int(current["version"]), "renewed", now),
                 memberships.grant_put(program.id, member_id, rules.grant_of(membership).to_item(), rules.iso(clock)),
                 store.event_item(program.id, EventType.MEMBERSHIP_RENEWED, event, now),
                 *BudgetStore(store).movement_items(_fee(program.id, membership, plan, payment_reference, actor,
                                                         now))]
        try:
            written = store.post(program.id, member_id, (KIND, payment_reference, fingerprint),
                                 {"membership_id": membership_id}, None, now, extra)
        except StaleCondition:
            continue  # renewed, canceled or ended meanwhile: read it again
        if written is not None:
            return _replayed(store, program, member_id, written, fingerprint, payment_reference, clock)
        return {**view(membership, clock), "replayed": False}
    raise Contention(f"membership {membership_id} is changing concurrently; retry")


def cancel(store: Store, program: Program, member_id: str, membership_id: str, actor: str, now: str
           ) -> dict[str, Any]:
    """Cancel at the period's end: the membership keeps its benefits until then. Idempotent: a membership already
    canceled, or ended, is answered as it is."""
    clock = times.parse(now)
    memberships = MembershipStore(store)
    for _ in range(ATTEMPTS):
        current = _require(store, program.id, member_id, membership_id)
        membership = rules.canceled(current, clock)
        if membership == current:
            return {**view(current, clock), "replayed": True}
        try:
            store.transact([memberships.membership_put(program.id, membership, int(current["version"]), "canceled",
                                                       now)])
        except StaleCondition:
            continue
        return {**view(membership, clock), "replayed": False}
    raise Contention(f"membership {membership_id} is changing concurrently; retry")


def of_member(store: Store, program_id: str, member_id: str, now: str) -> list[dict[str, Any]]:
    """The member's memberships, oldest first (404 for an unknown member)."""
    require_id(member_id)
    found = MembershipStore(store).of_member(program_id, member_id)
    if not found and store.get_balance(program_id, member_id) is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    clock = times.parse(now)
    return [view(m, clock) for m in found]


# ---------------------------------------------------------------- the daily run


def run_memberships(store: Store, programs: ProgramLookup, now: datetime, program_id: str | None = None,
                    seconds_left: Callable[[], float] | None = None) -> dict[str, Any]:
    """End every active membership whose period ended by ``now`` (of ``program_id`` only, when given): the
    membership ``ended``, its grant off the ``TIER`` item, ``membership.ended`` with the member's tier before and
    after. Answers JSON-able counts: ``due`` (listed), ``ended``, ``skipped`` (renewed, or ended by another run,
    meanwhile), and ``at``."""
    counts: dict[str, Any] = {"at": rules.iso(now), "due": 0, "ended": 0, "skipped": 0}
    memberships = MembershipStore(store)
    for shard in range(rules.DUE_SHARDS):
        after = None
        while True:
            page, after = memberships.due(shard, rules.iso(now), RUN_PAGE, after)
            for listed in page:
                if program_id is not None and listed["program_id"] != program_id:
                    continue
                counts["due"] += 1
                counts["ended" if end_one(store, programs, listed, now) else "skipped"] += 1
            if after is None or (seconds_left is not None and seconds_left() < 10):
                break
    return counts


def end_one(store: Store, programs: ProgramLookup, listed: dict[str, Any], now: datetime) -> bool:
    """End one membership listed as due; False when it was renewed or ended meanwhile (nothing written)."""
    program_id, member_id, membership_id = listed["program_id"], listed["member_id"], listed["membership_id"]
    memberships = MembershipStore(store)
    stamp = rules.iso(now)
    for _ in range(ATTEMPTS):
        current = memberships.get(program_id, member_id, membership_id)
        if current is None or current["status"] != rules.ACTIVE or current["current_period_end"] > stamp:
            return False
        program = programs(program_id)
        state = memberships.tier_item(program_id, member_id)
        config = program.tier_config()
        before = rules.effective_tier(config, state, rules.parse(current["current_period_end"]) - _TICK)
        after = config.level((state or {}).get("tier")).id if config else None
        finished = rules.ended(current)
        event = {"member_id": member_id, "membership_id": membership_id, "plan_id": current["plan_id"],
                 "reason": finished["ended_reason"], "ended_at": finished["ended_at"], "tier_before": before,
                 "tier_after": after}
        items = [memberships.membership_put(program_id, finished, int(current["version"]), "ended", stamp)]
        if ((state or {}).get("membership") or {}).get("membership_id") == membership_id:
            items.append(memberships.grant_remove(program_id, member_id, membership_id))
        items.append(store.event_item(program_id, EventType.MEMBERSHIP_ENDED, event, stamp))
        try:
            return store.transact_first(items)
        except StaleCondition:
            continue  # the grant changed between the read and the write: read both again
    raise Contention(f"membership {membership_id} kept changing while it was ended; the next run ends it")

