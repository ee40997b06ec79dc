"""Member segments (issue 16 item 9): the built-in ones computed from ledger activity, and admin-defined ones.

Pure: :func:`member_segments` reads nothing but its arguments (the facts of one member, as
``treue.store.segments.SegmentStore.facts`` reads them in two requests, the program and the custom definitions),
so accrual can feed its answer to the earning engine's ``Member.segments`` and the snapshot job can count a
program's members with it.

**Built-in segments** (``now`` is the time of the evaluation, UTC; a member may be in several):

- ``new``: enrolled less than ``NEW_DAYS`` (30) days ago: ``now − enrolled_at < 30 days`` (BALANCE ``enrolled_at``).
- ``active``: earned or redeemed in the last ``ACTIVE_DAYS`` (90) days: the last posting that moved the member's
  balance (an earn of any rule, an adjustment, an order's hold, capture, release or refund: BALANCE
  ``updated_at``, the ``created_at`` of the newest entry of ``GET /v1/members/{id}/ledger``) lies less than 90
  days before ``now``. Enrollment alone is no activity (``updated_at`` equal to ``enrolled_at``).
- ``inactive``: neither active nor new.
- ``at_risk``: activity falling against the member's own past, by calendar month (UTC) of the purchases'
  ``occurred_at`` (the ``MONTH#<YYYY-MM>`` items accrual keeps): with *recent* the qualifying points of the
  ``RECENT_MONTHS`` (3) whole months before the current one and *past* those of the ``PAST_MONTHS`` (12) whole
  months before those, a member with at least ``AT_RISK_MIN_PURCHASES`` (3) purchases in the past months is at
  risk when ``recent × 2 < past / 4``: the last three months earned less than half of the member's own average
  three months of the year before. (In December 2026: September to November 2026 against September 2025 to
  August 2026.) A new member is never at risk.
- ``premium``: the member's tier (the ``TIER`` item; without one, the lowest level) is the program's top tier,
  the last of two or more ``tiers.levels``, or the member has an active paid membership (the ``TIER`` item's
  grant, ``treue.core.memberships``), whatever its plan.

**Custom segments** hold when all their conditions hold (:class:`SegmentConditions`); a list means any of its
values. Spend, purchases, points and categories are counted by calendar month: a window of ``days`` days covers
the months from the one containing ``now − days`` to the current month, whole (a month's figures are not split
by day).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from treue.logic.models import Strict

NEW_DAYS = 30
ACTIVE_DAYS = 90
RECENT_MONTHS = 3
PAST_MONTHS = 12
AT_RISK_MIN_PURCHASES = 3
MAX_DAYS = 366  # a custom condition's window: at most the months a member's facts hold
# The months a member's facts hold: the current one and the RECENT_MONTHS + PAST_MONTHS before it
FACT_MONTHS = 1 + RECENT_MONTHS + PAST_MONTHS

BuiltinId = Literal["new", "active", "inactive", "at_risk", "premium"]
BUILTIN: tuple[BuiltinId, ...] = ("new", "active", "inactive", "at_risk", "premium")
BUILTIN_NAMES: dict[str, str] = {"new": "New members", "active": "Active members", "inactive": "Inactive members",
                                 "at_risk": "Members at risk", "premium": "Premium members"}
SegmentId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Days = Annotated[int, Field(ge=1, le=MAX_DAYS, strict=True)]
Positive = Annotated[int, Field(ge=1, le=10**13, strict=True)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[Name], BeforeValidator(_one_or_many), Field(min_length=1, max_length=50)]


class MinSpend(Strict):
    amount: Positive = Field(description="Minor units of the program currency spent in the window, at least")
    days: Days


class MinPurchases(Strict):
    count: Positive = Field(description="Purchases in the window, at least")
    days: Days


class MinPoints(Strict):
    points: Positive = Field(description="Qualifying points (earned from purchases) in the window, at least")
    days: Days


class CategoryBought(Strict):
    category: Names = Field(description="A purchase line of this category (or any of these) in the window")
    days: Days


class SegmentConditions(Strict):
    """All given conditions must hold; at least one is given."""

    tier: Names | None = Field(default=None, description="The member's tier is one of these")
    builtin: list[BuiltinId] | None = Field(default=None, min_length=1, max_length=5,
                                            description="The member is in one of these built-in segments")
    min_spend: MinSpend | None = None
    min_purchases: MinPurchases | None = None
    min_points: MinPoints | None = None
    category_bought: CategoryBought | None = None
    min_balance: Positive | None = Field(default=None, description="Available points, at least")

    @model_validator(mode="after")
    def _some(self) -> SegmentConditions:
        if not any(getattr(self, name) is not None for name in type(self).model_fields):
            raise ValueError("give at least one condition (tier, builtin, min_spend, min_purchases, min_points, "
                             "category_bought, min_balance)")
        return self


# as treue.logic.catalog.ItemId (not imported: accrual evaluates segments without loading the catalog's models)
CatalogItemId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")]


class SegmentDefinition(Strict):
    """A custom segment as an admin writes it (the body of ``PUT /v1/segments/{id}``)."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    conditions: SegmentConditions
    catalog_items: list[CatalogItemId] | None = Field(
        default=None, min_length=1, max_length=50,
        description="Catalog items targeted at this segment: its members' offers show them first, affordable or not")


class NewSegment(SegmentDefinition):
    """The body of ``POST /v1/segments``: the definition and its id, chosen by the admin."""

    id: SegmentId = Field(description="The segment's id (what a rule's segment condition names); not one of new, "
                                      "active, inactive, at_risk, premium")

    @model_validator(mode="after")
    def _not_builtin(self) -> NewSegment:
        if self.id in BUILTIN:
            raise ValueError(f"{self.id} is a built-in segment; choose another id")
        return self

    def definition(self) -> SegmentDefinition:
        return SegmentDefinition.model_validate(self.model_dump(exclude={"id"}))


# ------------------------------------------------------------------ a member's facts


@dataclass(frozen=True)
class Month:
    """One calendar month of a member's purchases (the ``MONTH#<YYYY-MM>`` item)."""

    qualifying_points: int = 0
    spend: int = 0
    purchases: int = 0
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Facts:
    """What the segments read about a member: their BALANCE item, their TIER item's tier and the MONTH items
    of the current month and the ``FACT_MONTHS − 1`` before it (absent months are empty)."""

    enrolled_at: str | None = None
    updated_at: str | None = None  # the balance's last change (BALANCE updated_at)
    available: int = 0
    purchases: int = 0
    lifetime_spend: int = 0
    tier: str | None = None
    tier_since: str | None = None
    months: Mapping[str, Month] = field(default_factory=dict)
    membership: Mapping[str, Any] | None = None  # the TIER item's paid membership grant (treue.core.memberships)

    @classmethod
    def of(cls, balance: Mapping[str, Any] | None, tier: Mapping[str, Any] | None,
           months: Mapping[str, Mapping[str, Any]], lowest: str | None = None) -> Facts:
        """From the items as stored (``months`` by ``YYYY-MM``); a member without a TIER item is in the lowest
        level (``lowest``, None without tiers)."""
        b = balance or {}
        return cls(enrolled_at=b.get("enrolled_at"), updated_at=b.get("updated_at"),
                   available=int(b.get("available", 0)), purchases=int(b.get("purchases", 0)),
                   lifetime_spend=int(b.get("lifetime_spend", 0)),
                   tier=(tier or {}).get("tier") or lowest, tier_since=(tier or {}).get("since"),
                   membership=(tier or {}).get("membership"),
                   months={k: Month(qualifying_points=int(m.get("qualifying_points", 0)), spend=int(m.get("spend", 0)),
                                    purchases=int(m.get("purchases", 0)),
                                    categories=frozenset(m.get("categories") or ()))
                           for k, m in months.items()})

    def paid_until(self, now: datetime) -> str | None:
        """The end of the member's active paid membership at ``now`` (None: none active)."""
        until = (self.membership or {}).get("until")
        return until if until and parse(until) > now else None

    def last_activity(self) -> str | None:
        """When a posting last moved the balance; None when nothing did since enrollment."""
        if not self.updated_at or self.updated_at == self.enrolled_at:
            return None
        return self.updated_at


@dataclass(frozen=True)
class Membership:
    """A segment the member is in: ``since`` when it is known, ``reason`` always."""

    id: str
    name: str
    kind: Literal["builtin", "custom"]
    reason: str
    since: str | None = None

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "since": self.since, "reason": self.reason}


# ------------------------------------------------------------------ time


def parse(value: str) -> datetime:
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def month_of(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def months_back(month: str, n: int) -> str:
    """The month ``n`` months before ``month`` (``YYYY-MM``)."""
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def fact_months(now: datetime) -> list[str]:
    """The months a member's facts hold, oldest first: ``FACT_MONTHS`` up to the current one."""
    current = month_of(now)
    return [months_back(current, n) for n in range(FACT_MONTHS - 1, -1, -1)]


def window(now: datetime, days: int) -> list[str]:
    """The months a window of ``days`` days ending ``now`` touches, whole: from the month containing
    ``now − days`` to the current one."""
    first, current = month_of(now - timedelta(days=days)), month_of(now)
    found = [current]
    while found[-1] > first:
        found.append(months_back(found[-1], 1))
    return found


def tier_levels(program: Any) -> list[str]:
    """The ids of the program's tier levels, lowest first (``tiers.levels`` of the settings; none without tiers).
    Reads the settings as a mapping or as attributes."""
    tiers = getattr(program, "tiers", None)
    if not tiers:
        return []
    levels = tiers.get("levels") if isinstance(tiers, Mapping) else getattr(tiers, "levels", None)
    found = [(lv.get("id") if isinstance(lv, Mapping) else getattr(lv, "id", None)) for lv in levels or []]
    return [str(f) for f in found if f]


def top_tier(program: Any) -> str | None:
    """The program's top tier (the last of two or more levels; with one level nobody stands out): None else."""
    levels = tier_levels(program)
    return levels[-1] if len(levels) >= 2 else None


# ------------------------------------------------------------------ evaluation


def builtin_segments(facts: Facts, now: datetime, top: str | None) -> list[Membership]:
    """The built-in segments of a member at ``now`` (``top``: the program's top tier id, None without tiers)."""
    found: list[Membership] = []
    enrolled = parse(facts.enrolled_at) if facts.enrolled_at else None
    is_new = enrolled is not None and now - enrolled < timedelta(days=NEW_DAYS)
    if is_new and enrolled is not None:
        found.append(Membership("new", BUILTIN_NAMES["new"], "builtin",
                                f"enrolled {facts.enrolled_at}, less than {NEW_DAYS} days ago",
                                since=facts.enrolled_at))
    last = facts.last_activity()
    last_at = parse(last) if last else None
    is_active = last_at is not None and now - last_at < timedelta(days=ACTIVE_DAYS)
    if is_active:
        found.append(Membership("active", BUILTIN_NAMES["active"], "builtin",
                                f"last earned or redeemed {last}, less than {ACTIVE_DAYS} days ago"))
    elif not is_new:
        ends = [at for at in (enrolled + timedelta(days=NEW_DAYS) if enrolled else None,
                              last_at + timedelta(days=ACTIVE_DAYS) if last_at else None) if at is not None]
        reason = (f"last earned or redeemed {last}, {ACTIVE_DAYS} days ago or more" if last
                  else "never earned or redeemed since enrollment")
        found.append(Membership("inactive", BUILTIN_NAMES["inactive"], "builtin",
                                f"{reason}, enrolled {NEW_DAYS} days ago or more",
                                since=stamp(max(ends)) if ends else None))
    risk = at_risk(facts, now)
    if risk is not None and not is_new:
        found.append(Membership("at_risk", BUILTIN_NAMES["at_risk"], "builtin", risk))
    paid = facts.paid_until(now)
    if top is not None and facts.tier == top:
        found.append(Membership("premium", BUILTIN_NAMES["premium"], "builtin", f"in the top tier {top}",
                                since=facts.tier_since))
    elif paid is not None:
        plan = (facts.membership or {}).get("plan_id")
        found.append(Membership("premium", BUILTIN_NAMES["premium"], "builtin",
                                f"a paid member ({plan}) until {paid}"))
    return found


def at_risk(facts: Facts, now: datetime) -> str | None:
    """The reason the member is at risk (see the module's docstring), or None when not."""
    current = month_of(now)
    recent = [months_back(current, n) for n in range(RECENT_MONTHS, 0, -1)]
    past = [months_back(current, n) for n in range(RECENT_MONTHS + PAST_MONTHS, RECENT_MONTHS, -1)]
    empty = Month()
    recent_points = sum(facts.months.get(m, empty).qualifying_points for m in recent)
    past_points = sum(facts.months.get(m, empty).qualifying_points for m in past)
    past_purchases = sum(facts.months.get(m, empty).purchases for m in past)
    quarters = PAST_MONTHS // RECENT_MONTHS
    if past_purchases < AT_RISK_MIN_PURCHASES or recent_points * 2 * quarters >= past_points:
        return None
    return (f"{recent_points} qualifying points in {recent[0]} to {recent[-1]}, less than half of the "
            f"{past_points // quarters} of an average {RECENT_MONTHS} months in {past[0]} to {past[-1]} "
            f"({past_points} points, {past_purchases} purchases)")


def _sum(facts: Facts, months: Iterable[str], field_name: str) -> int:
    empty = Month()
    return sum(getattr(facts.months.get(m, empty), field_name) for m in months)


def holds(conditions: SegmentConditions, facts: Facts, now: datetime, builtin: Iterable[str]) -> str | None:
    """Why the member meets every condition (one reason per condition, joined), or None when one fails."""
    reasons: list[str] = []
    c = conditions
    if c.tier is not None:
        if facts.tier not in c.tier:
            return None
        reasons.append(f"tier {facts.tier}")
    if c.builtin is not None:
        inside = [b for b in c.builtin if b in set(builtin)]
        if not inside:
            return None
        reasons.append(f"in {inside[0]}")
    counted = [(c.min_spend.days, c.min_spend.amount, "spend", "spent") if c.min_spend else None,
               (c.min_purchases.days, c.min_purchases.count, "purchases", "purchases") if c.min_purchases else None,
               (c.min_points.days, c.min_points.points, "qualifying_points", "qualifying points")
               if c.min_points else None]
    for days, need, attr, unit in (one for one in counted if one is not None):
        months = window(now, days)
        got = _sum(facts, months, attr)
        if got < need:
            return None
        reasons.append(f"{got} {unit} in {months[-1]} to {months[0]} (at least {need})")
    if c.category_bought is not None:
        months = window(now, c.category_bought.days)
        bought = set().union(*(facts.months.get(m, Month()).categories for m in months))
        hit = sorted(bought & set(c.category_bought.category))
        if not hit:
            return None
        reasons.append(f"bought {hit[0]} in {months[-1]} to {months[0]}")
    if c.min_balance is not None:
        if facts.available < c.min_balance:
            return None
        reasons.append(f"{facts.available} available points (at least {c.min_balance})")
    return "; ".join(reasons)


@dataclass(frozen=True)
class Custom:
    """A custom segment in force: its id, name and conditions (the current version of an active segment)."""

    id: str
    name: str
    conditions: SegmentConditions
    catalog_items: tuple[str, ...] = ()

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Custom:
        return cls(item["id"], item["name"], SegmentConditions.model_validate(item["conditions"]),
                   tuple(item.get("catalog_items") or ()))


def member_segments(program: Any, customs: Sequence[Custom], facts: Facts, now: datetime) -> list[Membership]:
    """Every segment the member is in at ``now``: the built-in ones in :data:`BUILTIN` order, then the custom
    ones in id order. ``program``: its settings (for the top tier); ``customs``: the active custom segments."""
    found = builtin_segments(facts, now, top_tier(program))
    ids = [m.id for m in found]
    for custom in sorted(customs, key=lambda c: c.id):
        reason = holds(custom.conditions, facts, now, ids)
        if reason is not None:
            found.append(Membership(custom.id, custom.name, "custom", reason))
    return found


def targeted_items(customs: Iterable[Custom], memberships: Iterable[Membership]) -> dict[str, list[str]]:
    """The catalog items targeted at the member's custom segments: item id → those segments' ids, in order."""
    inside = {m.id for m in memberships if m.kind == "custom"}
    found: dict[str, list[str]] = {}
    for custom in sorted(customs, key=lambda c: c.id):
        if custom.id in inside:
            for item_id in custom.catalog_items:
                found.setdefault(item_id, []).append(custom.id)
    return found


def segment_ids(memberships: Iterable[Membership]) -> frozenset[str]:
    """What the earning engine's ``Member.segments`` takes."""
    return frozenset(m.id for m in memberships)
