"""What fits a member now (``GET /v1/members/{id}/offers``): earning rules they can earn by and catalog items they
can afford or nearly afford, each list in a documented, deterministic order.

**Rules.** The purchase, activity and referral rules in force now (``RuleStore.in_force``) whose member
conditions (``tier``, ``segment``) this member meets. Each is evaluated by the earning engine itself
(``treue.logic.earning.evaluate``, alone, with the member's tier, segments and counters) on a sample event: a
purchase of ``SAMPLE_MINOR`` minor units (100.00 EUR; the rule's ``min_amount`` when higher) on one line of the
rule's first category and sku, one unit; an activity of its first activity type; a referral as the referrer.
``potential_points`` is what the rule pays on it (a multiplier's extra points, a cashback, a fixed bonus). A rule
restricted to weekdays or dates is tried on the next 7 days from today: ``applies_on`` is the first day it pays.
A rule that pays nothing within them, or whose limits are used up for this member (``remaining_uses`` 0) or
whose budget is spent, is left out. Order: rules targeted at this member (a ``segment`` or ``tier`` condition)
first, then ``potential_points`` descending, ``priority`` descending, rule id.

**Catalog.** Items priced in the program's points for this member (``treue.logic.catalog.present`` with their
tier's catalog discount, as ``GET /v1/catalog?member_id=``) and
offered in the member's country (their own, else the program's; any when neither is set): *affordable* when
``min_points`` ≤ the member's available points, *nearly* when the available points are at least
``NEARLY_BPS`` (80 %) of ``min_points`` (``points_missing`` says how many are missing), and *targeted* when a
custom segment the member is in lists it in its ``catalog_items`` (shown whatever its price, with those
``segments``). Targeted items come first, then affordable ones before the others; within each, the most
valuable first (``best``: the highest face value the points pay for), then by ``points_missing`` ascending;
ties by item id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from treue.core.programs import Program
from treue.logic import catalog
from treue.logic.earning import Line, Member, MemberEvent, PurchaseEvent, RuleCounters, Tier, evaluate
from treue.logic.rules import Rule
from treue.logic.segments import Facts

SAMPLE_MINOR = 10_000
NEARLY_BPS = 8_000
LOOKAHEAD_DAYS = 7
TRIGGERS = ("purchase", "activity", "referral")


@dataclass(frozen=True)
class RuleOffer:
    rule: Rule
    points: int
    applies_on: str
    remaining_uses: int | None
    budget_left: int | None

    @property
    def targeted(self) -> bool:
        return self.rule.conditions.segment is not None or self.rule.conditions.tier is not None

    def view(self) -> dict[str, Any]:
        r = self.rule
        return {"rule_id": r.id, "version": r.version, "name": r.name, "trigger": r.trigger,
                "targeted": self.targeted, "segment": r.conditions.segment, "tier": r.conditions.tier,
                "effect": r.effect.model_dump(exclude_none=True), "description": describe(r, self.points),
                "potential_points": self.points, "applies_on": self.applies_on,
                "remaining_uses": self.remaining_uses, "budget_left": self.budget_left, "ends_at": _iso(r.ends_at)}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def describe(rule: Rule, points: int) -> str:
    """A sentence for the till or the app, e.g. ``2× base points on books (50 more points on 100.00 spent)``."""
    c, e = rule.conditions, rule.effect
    on = " or ".join([*(c.category or []), *(c.sku or [])]) or "every purchase"
    if e.multiplier_bps is not None:
        times = f"{e.multiplier_bps / 10_000:g}×"
        return f"{times} base points on {on} ({points} more points on a sample of {SAMPLE_MINOR} minor units)"
    if e.cashback_bps is not None:
        return f"{e.cashback_bps / 100:g} % back as points on {on} ({points} points on a sample of {SAMPLE_MINOR} " \
               "minor units)"
    if e.points_per_unit is not None:
        return f"{e.points_per_unit} points per unit of {on}"
    if rule.trigger == "activity":
        return f"{points} points for a {' or '.join(c.activity_type or ['activity'])}"
    if rule.trigger == "referral":
        return f"{points} points for referring a friend"
    return f"{points} points on {on}"


def _sample(rule: Rule, at: datetime) -> PurchaseEvent | MemberEvent:
    c = rule.conditions
    if rule.trigger == "purchase":
        amount = max(SAMPLE_MINOR, c.min_amount or 0)
        line = Line(amount=amount, quantity=1, sku=c.sku[0] if c.sku else None,
                    category=c.category[0] if c.category else None)
        return PurchaseEvent(occurred_at=at, amount=amount, lines=(line,),
                             channel=c.channel[0] if c.channel else None)
    if rule.trigger == "activity":
        return MemberEvent("activity", at, activity_type=c.activity_type[0] if c.activity_type else "activity",
                           channel=c.channel[0] if c.channel else None)
    return MemberEvent("referral", at, role="referrer", channel=c.channel[0] if c.channel else None)


def _remaining(rule: Rule, counters: RuleCounters) -> tuple[int | None, int | None]:
    """(uses left for this member, None: unlimited; points left of the budget, None: no budget)."""
    limits = rule.limits
    left = [cap - used for cap, used in ((limits.per_member_per_day, counters.today),
                                         (limits.per_member_per_period.times if limits.per_member_per_period
                                          else None, counters.period),
                                         (limits.per_member_lifetime, counters.lifetime)) if cap is not None]
    budget = None if limits.budget_points is None else max(limits.budget_points - counters.total_points, 0)
    return (max(min(left), 0) if left else None), budget


def rule_offers(program: Program, rules: Sequence[Rule], facts: Facts, segments: frozenset[str], now: datetime,
                counters: Mapping[str, RuleCounters]) -> list[RuleOffer]:
    """The rules that fit the member now, ranked (see the module's docstring)."""
    member = Member(tier=Tier(facts.tier) if facts.tier else None, segments=segments)
    found = []
    for rule in rules:
        if rule.trigger not in TRIGGERS:
            continue
        c = rule.conditions
        if (c.tier is not None and facts.tier not in c.tier) or (c.segment is not None
                                                                 and not segments.intersection(c.segment)):
            continue
        counter = counters.get(rule.id, RuleCounters())
        uses, budget = _remaining(rule, counter)
        if uses == 0 or budget == 0:
            continue
        for day in range(LOOKAHEAD_DAYS + 1):
            at = now + timedelta(days=day)
            paid = sum(line.points for line in evaluate(program, [rule], member, _sample(rule, at), counters).lines
                       if line.rule_id == rule.id)
            if paid > 0:
                found.append(RuleOffer(rule, paid, at.date().isoformat(), uses, budget))
                break
    found.sort(key=lambda o: (not o.targeted, -o.points, -o.rule.priority, o.rule.id))
    return found


def _best(shown: dict[str, Any], item: Any, program: Program, available: int,
          discount: catalog.TierDiscount | None = None) -> dict[str, int] | None:
    """The highest face value ``available`` points pay for at the member's prices (None: not even the cheapest)."""
    if shown["denominations"]:
        fits = [{"face_value": d["face_value"], "points": d["points"]} for d in shown["denominations"]
                if d["points"] <= available]
        return max(fits, key=lambda d: (d["points"], d["face_value"])) if fits else None

    def price(face_value: int) -> int:
        listed = catalog.points_for(program, item.currency, face_value)
        return discount.price(listed) if discount else listed

    low, high = item.value_range()
    if price(low) > available:
        return None
    while low < high:  # the highest face value whose price fits (prices rise with the face value)
        middle = (low + high + 1) // 2
        if price(middle) <= available:
            low = middle
        else:
            high = middle - 1
    return {"face_value": low, "points": price(low)}


def catalog_offers(program: Program, items: Mapping[str, Any], available: int, country: str | None,
                   targeted: Mapping[str, Sequence[str]] | None = None,
                   discount: catalog.TierDiscount | None = None) -> list[dict[str, Any]]:
    """Catalog items the member can afford or nearly afford, and those targeted at their custom segments
    (``targeted``: item id → segment ids) whatever their price, ranked (see the module's docstring); priced with
    the member's tier ``discount`` (``treue.logic.catalog.tier_discount``) when they have one."""
    targeted = targeted or {}
    found = []
    for item_id in sorted(items):
        shown = catalog.present(items[item_id], program, discount)
        if shown is None or (country and country not in shown["countries"]):
            continue
        need = shown["min_points"]
        aimed = list(targeted.get(item_id, ()))
        if not aimed and need > available and available * 10_000 < need * NEARLY_BPS:
            continue
        best = _best(shown, items[item_id], program, available, discount)
        found.append({"item_id": shown["id"], "type": shown["type"], "name": shown["name"],
                      "category": shown["category"], "currency": shown["currency"], "min_points": need,
                      "affordable": need <= available, "points_missing": max(need - available, 0), "best": best,
                      "targeted": bool(aimed), "segments": aimed})
    found.sort(key=lambda o: (not o["targeted"], not o["affordable"], -(o["best"] or {}).get("points", 0),
                              o["points_missing"], o["item_id"]))
    return found
