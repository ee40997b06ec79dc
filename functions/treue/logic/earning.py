"""The earning engine: (program, rules in force, member, event, counters) → a breakdown of points per rule.

``evaluate`` is pure and deterministic: it reads nothing but its arguments, and the order of ``rules`` does not
matter. Simulate (``POST /v1/rules/simulate``) and accrual are to share it; neither is wired yet, nor are the
rules API and storage, the tier configuration or the counters' store (issue 16, later rounds). The caller
passes the rule versions in force at the event's ``occurred_at`` and the counters of the day and period that
contain it.

A purchase is evaluated line by line. Its lines are the purchase's ``lines``; the part of the amount they do
not cover (all of it for a purchase without lines) is one more line without sku, category or units, shown
without ``line_index``.

1. **Base**: each line earns ``program.points_for(line amount)``, rounded down per line (``rule_id: "base"``).
2. **Tier**: a member whose tier has ``earn_multiplier_bps`` above 10000 earns, per line,
   ``base × bps // 10000 − base`` more (``rule_id: "tier:<id>"``); a member with an active paid membership whose
   plan has ``earn_multiplier_bps`` above 10000 likewise (``rule_id: "membership:<plan id>"``, on the base too,
   never on the tier's points). Base, tier and membership are always paid: no rule stops them, no limit caps them.
3. **Rules** whose trigger is the event's, in force at ``occurred_at`` (``starts_at ≤ occurred_at <
   ends_at``) and whose event conditions hold (min_amount, channel, weekdays, dates, tier, segment, activity
   type), run in order: ``priority`` descending, then rule id. Each pays on the lines that match its line
   conditions (category, sku) and that no earlier non-stackable rule has taken:

   - ``multiplier_bps``: ``base × bps // 10000 − base`` per line (on the base, never on other rules' points:
     two 2× rules make 3×);
   - ``cashback_bps``: ``amount × bps × value_points // (10000 × value_minor)`` per line, i.e. that share of
     the amount as the points worth it at the program's point value, rounded down once;
   - ``points_per_unit``: ``quantity × points`` per line with units (the uncovered remainder has none);
   - ``points``: once per event (shown without ``line_index``), when at least one line matches.

   A rule that pays a line more than 0 points and is not ``stackable`` takes that line: the rules after it
   pay nothing on it (a fixed ``points`` bonus takes every line it matched). A rule capped to 0 takes
   nothing.
4. **Limits**: a rule that would pay but has already paid this member ``per_member_per_day`` times today,
   ``per_member_per_period.times`` this period or ``per_member_lifetime`` times, pays 0: one line with the
   reason. ``budget_points`` (all members) cuts the rule's lines in order to what is left; a line cut shows
   the reason. Each event a rule pays counts as one time.

Other events (activity, enrollment, birthday, referral, milestone) have no base and no tier multiplier: the
matching rules pay their ``points`` (a referral its ``referrer_points`` or ``referee_points``, by the
member's role) in the same order, with the same stop and limits.

Every line's points are integers ≥ 0 and ``total`` is their sum. Lines with 0 points appear only for the base
(every line of a purchase has one) and for capped rules (with the reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from treue.logic.rules import WEEKDAYS, Rule, Trigger

if TYPE_CHECKING:
    from treue.core.programs import Program
    from treue.logic.models import Purchase

BPS = 10_000


@dataclass(frozen=True)
class Tier:
    """The member's tier and its earn benefit (10000 = 1×, i.e. none)."""

    id: str
    earn_multiplier_bps: int = BPS

    def __post_init__(self) -> None:
        if not self.id or self.earn_multiplier_bps < BPS:
            raise ValueError("a tier has an id and an earn_multiplier_bps of at least 10000")


@dataclass(frozen=True)
class MembershipBenefit:
    """The member's active paid membership: its plan and the plan's earn benefit (10000 = 1×, i.e. none)."""

    plan_id: str
    earn_multiplier_bps: int = BPS


@dataclass(frozen=True)
class Member:
    """What the rules may ask about a member."""

    tier: Tier | None = None
    segments: frozenset[str] = frozenset()
    membership: MembershipBenefit | None = None


@dataclass(frozen=True)
class Line:
    """A purchase line: ``amount`` in minor units of the program currency."""

    amount: int
    quantity: int = 1
    sku: str | None = None
    category: str | None = None

    def __post_init__(self) -> None:
        if self.amount < 0 or self.quantity < 1:
            raise ValueError("a line has an amount ≥ 0 and a quantity ≥ 1")


@dataclass(frozen=True)
class PurchaseEvent:
    """A purchase: ``amount`` (minor units of the program currency) and its lines, which add up to at most it."""

    occurred_at: datetime
    amount: int
    lines: tuple[Line, ...] = ()
    channel: str | None = None
    trigger: Literal["purchase"] = "purchase"

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at needs a time zone")
        if self.amount < 0 or sum(line.amount for line in self.lines) > self.amount:
            raise ValueError("the lines add up to more than the purchase amount")


@dataclass(frozen=True)
class MemberEvent:
    """Any other trigger: an activity (with its type), an enrollment, a birthday, a referral (the member's
    role in it) or a milestone reached."""

    trigger: Trigger
    occurred_at: datetime
    activity_type: str | None = None
    role: Literal["referrer", "referee"] | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at needs a time zone")
        if self.trigger == "purchase":
            raise ValueError("a purchase is a PurchaseEvent")
        if (self.trigger == "activity") != (self.activity_type is not None):
            raise ValueError("an activity, and only an activity, has an activity_type")
        if (self.trigger == "referral") != (self.role is not None):
            raise ValueError("a referral, and only a referral, has the member's role")


Event = PurchaseEvent | MemberEvent


@dataclass(frozen=True)
class RuleCounters:
    """What a rule has paid so far: to this member (times) today, this period and ever; to all (points)."""

    today: int = 0
    period: int = 0
    lifetime: int = 0
    total_points: int = 0


@dataclass(frozen=True)
class BreakdownLine:
    rule_id: str
    version: int
    points: int
    line_index: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule_id": self.rule_id, "version": self.version, "points": self.points}
        if self.line_index is not None:
            out["line_index"] = self.line_index
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Breakdown:
    lines: tuple[BreakdownLine, ...]
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(line.points for line in self.lines))

    def paid(self) -> dict[str, int]:
        """Points per rule (not base, tier or membership) that paid something: the uses the counters add."""
        paid: dict[str, int] = {}
        for line in self.lines:
            if line.points and line.rule_id != "base" and not line.rule_id.startswith(("tier:", "membership:")):
                paid[line.rule_id] = paid.get(line.rule_id, 0) + line.points
        return paid

    def capped(self) -> list[BreakdownLine]:
        return [line for line in self.lines if line.reason is not None]

    def to_json(self) -> dict[str, Any]:
        return {"lines": [line.to_json() for line in self.lines], "total": self.total}


def purchase_event(purchase: Purchase, channel: str | None = None) -> PurchaseEvent:
    """The engine's view of a validated purchase (its currency is the program's: the caller checks)."""
    lines = tuple(Line(amount=line.amount.value, quantity=line.quantity, sku=line.sku, category=line.category)
                  for line in purchase.lines or ())
    return PurchaseEvent(occurred_at=purchase.occurred_at, amount=purchase.amount.value, lines=lines,
                         channel=channel)


def in_force(rules: Iterable[Rule], at: datetime) -> list[Rule]:
    """The rules in force at ``at``, in evaluation order; two versions of one rule in force is an error."""
    chosen = sorted((rule for rule in rules if rule.in_force(at)), key=lambda rule: (-rule.priority, rule.id))
    for first, second in zip(chosen, chosen[1:], strict=False):
        if first.id == second.id:
            raise ValueError(f"versions {first.version} and {second.version} of rule {first.id} are both in "
                             f"force at {at.isoformat()}")
    return chosen


def _any(values: Sequence[str] | None, value: str | None) -> bool:
    return values is None or (value is not None and value in values)


def _event_matches(rule: Rule, member: Member, event: Event) -> bool:
    c = rule.conditions
    local = event.occurred_at.date()  # the calendar day in occurred_at's own offset
    if c.weekdays is not None and WEEKDAYS[local.weekday()] not in c.weekdays:
        return False
    if (c.date_from is not None and local < c.date_from) or (c.date_to is not None and local > c.date_to):
        return False
    if not _any(c.channel, event.channel) or not _any(c.tier, member.tier.id if member.tier else None):
        return False
    if c.segment is not None and not member.segments.intersection(c.segment):
        return False
    if isinstance(event, PurchaseEvent):
        return c.min_amount is None or event.amount >= c.min_amount
    return _any(c.activity_type, event.activity_type)


def _line_matches(rule: Rule, line: Line | None) -> bool:
    """``None`` is the uncovered remainder: it has no sku or category."""
    c = rule.conditions
    return _any(c.category, line.category if line else None) and _any(c.sku, line.sku if line else None)


def _count_cap(rule: Rule, counters: RuleCounters) -> str | None:
    limits = rule.limits
    if limits.per_member_per_day is not None and counters.today >= limits.per_member_per_day:
        return f"per_member_per_day: paid {counters.today} of {limits.per_member_per_day} times today"
    period = limits.per_member_per_period
    if period is not None and counters.period >= period.times:
        return f"per_member_per_period: paid {counters.period} of {period.times} times this {period.period}"
    if limits.per_member_lifetime is not None and counters.lifetime >= limits.per_member_lifetime:
        return f"per_member_lifetime: paid {counters.lifetime} of {limits.per_member_lifetime} times"
    return None


def _rule_points(rule: Rule, program: Program, line: Line | None, amount: int, base: int) -> int:
    """What ``rule`` pays on one line (``line`` None: the remainder of ``amount``), before limits."""
    effect = rule.effect
    if effect.multiplier_bps is not None:
        return base * effect.multiplier_bps // BPS - base
    if effect.cashback_bps is not None:
        return amount * effect.cashback_bps * program.value_points // (BPS * program.value_minor)
    if effect.points_per_unit is not None:
        return line.quantity * effect.points_per_unit if line is not None else 0
    return 0


def evaluate(program: Program, rules: Iterable[Rule], member: Member, event: Event,
             counters: Mapping[str, RuleCounters] | None = None) -> Breakdown:
    """The breakdown of the points ``event`` earns ``member`` (the order and rules: this module's docstring)."""
    counters = counters or {}
    out: list[BreakdownLine] = []
    # The lines: (index or None for the remainder, the line or None, amount, base points)
    parts: list[tuple[int | None, Line | None, int, int]] = []
    if isinstance(event, PurchaseEvent):
        for position, line in enumerate(event.lines):
            parts.append((position, line, line.amount, program.points_for(line.amount)))
        rest = event.amount - sum(line.amount for line in event.lines)
        if rest > 0 or not event.lines:
            parts.append((None, None, rest, program.points_for(rest)))
        for at, _, _, base in parts:
            out.append(BreakdownLine("base", program.version, base, at))
        tier = member.tier
        if tier is not None and tier.earn_multiplier_bps > BPS:
            for at, _, _, base in parts:
                extra = base * tier.earn_multiplier_bps // BPS - base
                if extra:
                    out.append(BreakdownLine(f"tier:{tier.id}", program.version, extra, at))
        plan = member.membership
        if plan is not None and plan.earn_multiplier_bps > BPS:
            for at, _, _, base in parts:
                extra = base * plan.earn_multiplier_bps // BPS - base
                if extra:
                    out.append(BreakdownLine(f"membership:{plan.plan_id}", program.version, extra, at))
    taken: set[int | None] = set()  # lines a non-stackable rule has paid
    event_taken = False  # a non-stackable rule has paid an event other than a purchase
    for rule in in_force(rules, event.occurred_at):
        if rule.trigger != event.trigger or not _event_matches(rule, member, event):
            continue
        effect = rule.effect
        # What the rule would pay: (line index, points) with the index None for the event as a whole
        due: list[tuple[int | None, int]] = []
        if isinstance(event, PurchaseEvent):
            matched = [part for part in parts if part[0] not in taken and _line_matches(rule, part[1])]
            if effect.points is not None:
                if matched:
                    due.append((None, effect.points))
            else:
                due = [(index, _rule_points(rule, program, line, amount, base))
                       for index, line, amount, base in matched]
        elif not event_taken:
            if effect.points is not None:
                due.append((None, effect.points))
            elif isinstance(event, MemberEvent) and event.role is not None:
                due.append((None, (effect.referrer_points if event.role == "referrer" else effect.referee_points)
                            or 0))
        due = [(index, points) for index, points in due if points > 0]
        if not due:
            continue
        counter = counters.get(rule.id, RuleCounters())
        reason = _count_cap(rule, counter)
        if reason is not None:
            out.append(BreakdownLine(rule.id, rule.version, 0, None, reason))
            continue
        left = None if rule.limits.budget_points is None else max(rule.limits.budget_points - counter.total_points, 0)
        if left == 0:
            out.append(BreakdownLine(rule.id, rule.version, 0, None,
                                     f"budget_points: all {rule.limits.budget_points} points paid"))
            continue
        for index, points in due:
            cut = None
            if left is not None:
                if points > left:
                    points, cut = left, f"budget_points: cut to the {left} points left of {rule.limits.budget_points}"
                left -= points
            out.append(BreakdownLine(rule.id, rule.version, points, index, cut))
            if points > 0 and not rule.stackable:
                if not isinstance(event, PurchaseEvent):
                    event_taken = True
                elif effect.points is None:
                    taken.add(index)
                else:  # a fixed bonus for the purchase takes every line it matched
                    taken.update(part[0] for part in matched)
    return Breakdown(tuple(out))
