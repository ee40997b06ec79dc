"""Points for events other than purchases: activities, welcome (enrollment), birthdays, referrals, milestones.

``award`` pays the earning rules of the event's trigger that are in force at its ``occurred_at``, by the
engine (``treue.logic.earning``: order, stacking and limits as for purchases, without base or tier points),
exactly once per idempotency reference:

- each rule that pays posts from its own bonus account (``program:bonus:<rule_id>``) to the member's
  available points, naming the rule's id and version;
- its counters (times per member per day, period and lifetime; points of its budget) are added in the same
  transaction, conditioned on their caps; when a concurrent award reached a cap first, the event is evaluated
  again with the counters as they are then (``ATTEMPTS`` times, then ``Contention``);
- an event no rule pays (none in force, none matching, all capped) still writes its idempotency guard, so a
  replay answers the same 0 points with the same reason.

Answers ``{"points_earned", "breakdown", "reference", "reason"?, "replayed", "balance"}``.

``record_activity`` is ``POST /v1/members/{id}/activities`` (and an activity on the accrual queue): the activity
rules in force at the activity's ``occurred_at``, exactly once per the partner's ``reference``, with its
``activity.recorded`` event (paid or not) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from treue.core import times
from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType, bonus_account, request_fingerprint
from treue.core.statuses import EventType
from treue.errors import Contention, IdempotencyConflict, StaleCondition
from treue.logic.earning import Member, MemberEvent, evaluate
from treue.logic.lifecycle import repay
from treue.logic.members import require_id
from treue.logic.points import ATTEMPTS, balance, credit_terms, member_for, rule_counter_uses, rule_counters

if TYPE_CHECKING:
    from treue.core.programs import Program
    from treue.logic.earning import Breakdown
    from treue.logic.models import Activity
    from treue.logic.ports import LedgerPort, RulesAt, SegmentsOf
    from treue.logic.rules import Rule


Also = Callable[[dict[str, Any]], list[dict[str, Any]]]  # an award's result → more items of its transaction


def matching(rules: list[Rule], event: MemberEvent) -> list[Rule]:
    """The rules of ``event``'s trigger among ``rules`` (the engine checks the rest)."""
    return [rule for rule in rules if rule.trigger == event.trigger]


def postings(program: Program, member_id: str, event: MemberEvent, found: Breakdown, rules: list[Rule],
             reference: str, actor: str, now: str) -> list[Posting]:
    """One posting per rule that pays, from its bonus account to the member's available points."""
    versions = {rule.id: rule.version for rule in rules}
    out = []
    for rule_id, points in found.paid().items():
        metadata: dict[str, Any] = {"trigger": str(event.trigger), "occurred_at": event.occurred_at.isoformat(),
                                    "rule_id": rule_id, "rule_version": versions[rule_id],
                                    "rules": [{"rule_id": rule_id, "version": versions[rule_id]}],
                                    **credit_terms(program, event.occurred_at)}
        if event.activity_type is not None:
            metadata["activity_type"] = event.activity_type
        if event.role is not None:
            metadata["role"] = event.role
        out.append(Posting(
            id=new_id("pst"), program_id=program.id, member_id=member_id, type=PostingType.EARN,
            debit=bonus_account(rule_id), credit=Account.MEMBER_AVAILABLE, points=points, reference=reference,
            reason=f"{event.trigger}: rule {rule_id} v{versions[rule_id]}", actor=actor, created_at=now,
            metadata=metadata))
    return out


def why_nothing(found: Breakdown, event: MemberEvent) -> str:
    """Why an event earned 0 points: the caps that stopped its rules, or that no rule matched."""
    capped = [f"{line.rule_id}: {line.reason}" for line in found.capped()]
    if capped:
        return "; ".join(capped)
    what = f"{event.trigger} of type {event.activity_type}" if event.activity_type else str(event.trigger)
    return f"no earning rule in force matches this {what}"


def award(store: LedgerPort, program: Program, member_id: str, event: MemberEvent, rules: list[Rule],
          idempotency: tuple[str, str], payload: dict[str, Any], actor: str, now: str,
          member: Member | None = None, also: Also | None = None, segments_of: SegmentsOf | None = None
          ) -> dict[str, Any]:
    """Pay ``event``'s rules among ``rules`` (the versions in force at its ``occurred_at``) to the member, once
    per ``idempotency`` = ``(kind, reference)``; ``payload`` is what the request said (its fingerprint tells a
    replay from a different request with the same reference: ``IdempotencyConflict``). ``also`` gives items to
    write in the award's transaction from its result (an event naming the points, a referral's status): written
    once, with the award, never on a replay. Without ``member``, what the candidate rules ask of the member (a
    tier, segments by ``segments_of``) is read once (``treue.logic.points.member_for``)."""
    require_id(member_id)
    kind, reference = idempotency
    candidates = matching(rules, event)
    if member is None:
        member = member_for(store, program, member_id, candidates, event.occurred_at, segments_of)
    fingerprint = request_fingerprint({"member_id": member_id, **payload})
    for _ in range(ATTEMPTS):
        counters = rule_counters(store, program.id, member_id, candidates, event.occurred_at)
        found = evaluate(program, candidates, member or Member(), event, counters)
        paid = postings(program, member_id, event, found, candidates, reference, actor, now)
        result: dict[str, Any] = {"points_earned": found.total, "reference": reference,
                                  "breakdown": [line.to_json() for line in found.lines]}
        if not found.total:
            result["reason"] = why_nothing(found, event)
        uses = rule_counter_uses(found, candidates, event.occurred_at)
        extra = store.rule_use_items(program.id, member_id, uses) if uses else None
        if also is not None:
            extra = [*(extra or []), *also(result)]
        try:
            replay = store.post(program.id, member_id, (kind, reference, fingerprint), result,
                                paid[0] if paid else None, now, extra, more=paid[1:])
        except StaleCondition:
            continue  # a cap was reached meanwhile: evaluate with the counters as they are now
        break
    else:
        raise Contention(f"concurrent {event.trigger} awards kept reaching an earning rule's limit first; retry")
    if replay is not None:
        if replay.fingerprint != fingerprint:
            raise IdempotencyConflict(f"{kind} {reference} was already recorded with a different payload",
                                      reference=reference)
        result = {key: replay.result[key] for key in ("points_earned", "reference", "breakdown", "reason")
                  if key in replay.result}
    found_balance = balance(store, program.id, member_id, program.expiry_policy() is not None)
    if found_balance["debt"] > 0 and found_balance["available"] > 0:  # new points pay back what is owed first
        if repay(store, program.id, member_id, f"{kind}:{reference}", now, actor):
            found_balance = balance(store, program.id, member_id, program.expiry_policy() is not None)
    return {**result, "replayed": replay is not None, "balance": found_balance}


def record_activity(store: LedgerPort, program: Program, member_id: str, activity: Activity, actor: str, now: str,
                    rules: RulesAt, member: Member | None = None, segments_of: SegmentsOf | None = None
                    ) -> dict[str, Any]:
    """Pay an activity by the activity rules in force at its ``occurred_at`` (their ``activity_type``
    conditions, caps and budgets), exactly once per ``activity.reference``: a replay answers the first result,
    the same reference with another body is ``IdempotencyConflict``."""
    event = MemberEvent(trigger="activity", occurred_at=activity.occurred_at, activity_type=activity.type)
    in_force = rules(program.id, times.iso(activity.occurred_at.astimezone(UTC)))

    def recorded(result: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``activity.recorded`` event, in the award's transaction (never again on a replay)."""
        data = {"member_id": member_id, "type": activity.type, "reference": activity.reference,
                "occurred_at": activity.occurred_at.isoformat(), "points_earned": result["points_earned"],
                "reason": result.get("reason")}
        return [store.event_item(program.id, EventType.ACTIVITY_RECORDED, data, now)]

    return award(store, program, member_id, event, in_force, ("activity", activity.reference),
                 activity.fingerprint_payload(), actor, now, member, also=recorded, segments_of=segments_of)
