"""A member's progress after a purchase: the referral it completes and the milestones it reaches (issue 16 items
5 and 7), paid by the Progress function from the event log's ``points.earned`` (the table's stream).

``on_points_earned`` looks at the posting the event names: only a purchase's counts (an award's or a welcome's
points name their trigger in the posting's metadata and are skipped). Then:

- **Referral**: a member enrolled with ``referred_by`` completes the referral with their first purchase that
  earns points. The referral rules in force at the purchase's ``occurred_at`` pay the member referred
  ``referee_points`` and the referrer ``referrer_points`` (``treue.logic.awards``), each exactly once
  (idempotency ``("referral", "<referee id>:<role>")``); the referral item in the referrer's partition is
  marked completed with the points, and ``referral.completed`` is written with the referrer's award.
- **Milestones**: each ``trigger: milestone`` rule in force at ``occurred_at`` whose ``milestone`` condition
  measures ``purchases``, ``spend`` or ``points`` and whose threshold the member's balance item has reached
  (``purchases``, ``lifetime_spend``, ``lifetime_earned``) pays once per member ever (idempotency
  ``("milestone", "<member id>:<rule id>")``), ``milestone.reached`` written with it. ``membership_years`` is
  paid by the daily occasions schedule, not here.

Every payment is a replay when done before, so a stream record delivered again, or twenty at once, pays
nothing more. A purchase evaluated later than its balance moved (a batch behind) measures the balance as it is
then: a milestone reached meanwhile is paid with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from treue.core import times
from treue.core.ledger import PostingType
from treue.core.statuses import EventType
from treue.logic.awards import award
from treue.logic.earning import MemberEvent

if TYPE_CHECKING:
    from treue.core.programs import Program
    from treue.logic.ports import LedgerPort, RulesAt, SegmentsOf
    from treue.logic.rules import Rule

# What each milestone metric measures on the member's balance item (``LedgerPort.progress``)
MEASURES = {"purchases": "purchases", "spend": "lifetime_spend", "points": "lifetime_earned"}
ACTOR = "progress"


def is_purchase(entry: dict[str, Any]) -> bool:
    """Whether a posting is a purchase's (accrual): its metadata has the amount and names no other trigger."""
    metadata = entry.get("metadata") or {}
    return "amount" in metadata and "trigger" not in metadata and entry.get("type") == PostingType.EARN


def on_points_earned(store: LedgerPort, program: Program, rules: RulesAt, data: dict[str, Any], now: str,
                     segments_of: SegmentsOf | None = None) -> dict[str, Any]:
    """Pay what a ``points.earned`` event's purchase completes or reaches; answers what it did (for the log)."""
    member_id, posting_id = data["member_id"], data["posting_id"]
    entry = store.get_entry(program.id, member_id, posting_id)
    if entry is None or not is_purchase(entry):
        return {"purchase": False}
    at = times.parse(entry["metadata"]["occurred_at"]).astimezone(UTC)
    in_force = rules(program.id, times.iso(at))
    done: dict[str, Any] = {"purchase": True}
    member = store.get_member(program.id, member_id) or {}
    if member.get("referred_by"):
        done["referral"] = referral(store, program, member_id, member["referred_by"], in_force, at, now, segments_of)
    done["milestones"] = milestones(store, program, member_id, in_force, at, now, segments_of)
    return done


def referral(store: LedgerPort, program: Program, referee_id: str, referrer_id: str, rules: list[Rule],
             at: datetime, now: str, segments_of: SegmentsOf | None = None) -> dict[str, int]:
    """Both sides of a referral paid once: the member referred first, then the referrer with the event."""
    pid = program.id
    payload = {"referee_id": referee_id, "referrer_id": referrer_id}

    def referee_items(result: dict[str, Any]) -> list[dict[str, Any]]:
        return [store.referral_paid_item(pid, referrer_id, referee_id, "referee", result["points_earned"], now)]

    referee = award(store, program, referee_id, MemberEvent(trigger="referral", occurred_at=at, role="referee"),
                    rules, ("referral", f"{referee_id}:referee"), {**payload, "role": "referee"}, ACTOR, now,
                    also=referee_items, segments_of=segments_of)

    def referrer_items(result: dict[str, Any]) -> list[dict[str, Any]]:
        return [store.referral_paid_item(pid, referrer_id, referee_id, "referrer", result["points_earned"], now),
                store.event_item(pid, EventType.REFERRAL_COMPLETED, {
                    "referrer_id": referrer_id, "referee_id": referee_id,
                    "referrer_points": result["points_earned"], "referee_points": referee["points_earned"],
                    "completed_at": now}, now)]

    referrer = award(store, program, referrer_id, MemberEvent(trigger="referral", occurred_at=at, role="referrer"),
                     rules, ("referral", f"{referee_id}:referrer"), {**payload, "role": "referrer"}, ACTOR, now,
                     also=referrer_items, segments_of=segments_of)
    return {"referee_points": referee["points_earned"], "referrer_points": referrer["points_earned"]}


def reached(rules: list[Rule], progress: dict[str, int]) -> list[tuple[Rule, int]]:
    """The milestone rules (purchases, spend, points) whose threshold ``progress`` has reached, with the value."""
    out = []
    for rule in rules:
        milestone = rule.conditions.milestone
        if rule.trigger != "milestone" or milestone is None or milestone.metric not in MEASURES:
            continue
        value = progress.get(MEASURES[milestone.metric], 0)
        if value >= milestone.threshold:
            out.append((rule, value))
    return out


def milestones(store: LedgerPort, program: Program, member_id: str, rules: list[Rule], at: datetime, now: str,
               segments_of: SegmentsOf | None = None) -> dict[str, int]:
    """Each milestone reached paid once per member: ``{rule id: points}`` of this call's payments and replays."""
    candidates = [rule for rule in rules if rule.trigger == "milestone"]
    if not candidates:
        return {}
    progress = store.progress(program.id, member_id) or {}
    paid = {}
    for rule, value in reached(candidates, progress):
        milestone = rule.conditions.milestone
        assert milestone is not None  # reached() keeps only rules with one
        reached_data = {"member_id": member_id, "rule_id": rule.id, "rule_version": rule.version,
                        "metric": milestone.metric, "threshold": milestone.threshold, "value": value}

        def items(result: dict[str, Any], data: dict[str, Any] = reached_data) -> list[dict[str, Any]]:
            return [store.event_item(program.id, EventType.MILESTONE_REACHED,
                                     {**data, "points": result["points_earned"]}, now)]

        found = award(store, program, member_id, MemberEvent(trigger="milestone", occurred_at=at), [rule],
                      ("milestone", f"{member_id}:{rule.id}"), {"rule_id": rule.id}, ACTOR, now, also=items,
                      segments_of=segments_of)
        paid[rule.id] = found["points_earned"]
    return paid
