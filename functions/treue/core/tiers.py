"""Status tiers, pure: the configuration (``PATCH /v1/program``'s ``tiers``), periods, levels, projection and the
review's decision. No I/O and no pydantic: ``treue.logic.tiers`` reads and writes, this module decides.

Configuration, as the API takes and shows it::

    {"metric": "points" | "spend",
     "period": {"type": "rolling", "months": N} | {"type": "calendar_year"},
     "levels": [{"id", "name", "threshold",
                 "benefits": {"earn_multiplier_bps", "catalog_discount_bps", "free_delivery"}}, ...]}

The qualifying value of a stretch of months is the sum of the member's ``MONTH#<YYYY-MM>`` counters over it
(``qualifying_points`` for ``points``: the points purchases earned, rules and tier included, never redemptions;
``spend`` for ``spend``: the purchases' amounts in minor units). Months are UTC calendar months.

- **Current window** (upgrades, ``progress``): ``calendar_year``: this year; ``rolling`` N: this month and the
  N−1 months before it.
- **Upgrade** at once: the highest level whose threshold the current window's value (with the purchase) reaches,
  when it is above the member's level. The new level holds ``until`` the end of a period: ``calendar_year``:
  the 1st of January after the upgrade; ``rolling`` N: the 1st of the month N months after the upgrade's month.
- **Review** at ``until``: the value of the period that just ended (the 12 or N months before ``until``) decides:
  the member keeps the level (``until`` moves on by one period) or goes down to the highest level that value
  reaches, never up; at the lowest level there is no ``until``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

BPS = 10_000
DUE_SHARDS = 4  # the review's index of tier states due spreads over this many partitions (``treue.store.tiers``)
METRICS = {"points": "qualifying_points", "spend": "spend"}  # metric → the MONTH# counter it sums
MAX_LEVELS = 20
MAX_MONTHS = 36
MIN_PACE = timedelta(days=30)  # a pace is measured over at least this long (see ``projected_value``)
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Level:
    id: str
    name: str
    threshold: int
    earn_multiplier_bps: int = BPS
    catalog_discount_bps: int = 0
    free_delivery: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "threshold": self.threshold,
                "benefits": {"earn_multiplier_bps": self.earn_multiplier_bps,
                             "catalog_discount_bps": self.catalog_discount_bps,
                             "free_delivery": self.free_delivery}}


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def month_key(moment: datetime) -> str:
    """The UTC calendar month of ``moment``: ``YYYY-MM`` (a MONTH# item's suffix)."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_start(moment: datetime, shift: int = 0) -> datetime:
    """The first instant (UTC) of the month of ``moment``, moved by ``shift`` months."""
    utc = moment.astimezone(UTC)
    index = utc.year * 12 + utc.month - 1 + shift
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def months_between(start: datetime, end: datetime) -> list[str]:
    """The months from ``start``'s up to the one before ``end`` (a month start), oldest first."""
    out, at = [], month_start(start)
    while at < end:
        out.append(month_key(at))
        at = month_start(at, 1)
    return out


@dataclass(frozen=True)
class Tiers:
    metric: str
    months: int  # the period's length in months (12 for a calendar year)
    calendar: bool
    levels: tuple[Level, ...]

    @property
    def counter(self) -> str:
        """The MONTH# attribute the metric sums."""
        return METRICS[self.metric]

    @property
    def lowest(self) -> Level:
        return self.levels[0]

    def rank(self, level_id: str) -> int:
        """The level's position (0: lowest); an id no longer configured ranks as the lowest."""
        return next((i for i, level in enumerate(self.levels) if level.id == level_id), 0)

    def level(self, level_id: str | None) -> Level:
        return self.levels[self.rank(level_id)] if level_id else self.lowest

    def above(self, level: Level) -> Level | None:
        position = self.rank(level.id)
        return self.levels[position + 1] if position + 1 < len(self.levels) else None

    def reached(self, value: int) -> Level:
        """The highest level whose threshold ``value`` reaches."""
        return [level for level in self.levels if level.threshold <= value][-1]

    def qualifying(self, points: int, spend: int) -> int:
        """What a purchase of ``spend`` minor units that earned ``points`` adds to the metric."""
        return points if self.metric == "points" else spend

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The current window: [start, end) whose value upgrades (this year, or this month and N−1 before)."""
        if self.calendar:
            year = now.astimezone(UTC).year
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        return month_start(now, 1 - self.months), month_start(now, 1)

    def first_until(self, now: datetime) -> datetime:
        """When a level reached at ``now`` is reviewed first."""
        if self.calendar:
            return datetime(now.astimezone(UTC).year + 1, 1, 1, tzinfo=UTC)
        return month_start(now, self.months)

    def review_window(self, until: datetime) -> tuple[datetime, datetime]:
        """The period a review at ``until`` judges: the ``months`` months before it."""
        return month_start(until, -self.months), until

    def next_until(self, until: datetime) -> datetime:
        return month_start(until, self.months)

    def to_json(self) -> dict[str, Any]:
        period: dict[str, Any] = ({"type": "calendar_year"} if self.calendar
                                  else {"type": "rolling", "months": self.months})
        return {"metric": self.metric, "period": period, "levels": [level.to_json() for level in self.levels]}


def parse(data: Mapping[str, Any]) -> Tiers:
    """The configuration, checked; ValueError starting with ``tiers`` says what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError("tiers must be an object with metric, period and levels (or null)")
    unknown = set(data) - {"metric", "period", "levels"}
    if unknown:
        raise ValueError(f"tiers has unknown fields: {', '.join(sorted(unknown))}")
    metric = data.get("metric")
    if metric not in METRICS:
        raise ValueError("tiers.metric must be points or spend")
    period = data.get("period")
    if not isinstance(period, Mapping) or period.get("type") not in ("rolling", "calendar_year"):
        raise ValueError('tiers.period must be {"type": "rolling", "months": N} or {"type": "calendar_year"}')
    if period["type"] == "rolling":
        months = period.get("months")
        if set(period) != {"type", "months"} or not _int(months) or not 1 <= months <= MAX_MONTHS:
            raise ValueError(f"tiers.period.months must be an integer from 1 to {MAX_MONTHS} (rolling)")
    elif set(period) != {"type"}:
        raise ValueError("tiers.period of type calendar_year takes no other field")
    raw = data.get("levels")
    if not isinstance(raw, list | tuple) or not 2 <= len(raw) <= MAX_LEVELS:
        raise ValueError(f"tiers.levels must list 2 to {MAX_LEVELS} levels, lowest first")
    levels: list[Level] = []
    for i, one in enumerate(raw):
        levels.append(_level(i, one))
    ids = [level.id for level in levels]
    if len(set(ids)) != len(ids):
        raise ValueError("tiers.levels: the ids must be unique")
    if levels[0].threshold != 0:
        raise ValueError("tiers.levels[0].threshold must be 0: every member is at least at the first level")
    for i in range(1, len(levels)):
        if levels[i].threshold <= levels[i - 1].threshold:
            raise ValueError(f"tiers.levels[{i}].threshold must be above the level before it (strictly ascending)")
    calendar = period["type"] == "calendar_year"
    return Tiers(metric, 12 if calendar else period["months"], calendar, tuple(levels))


def _level(i: int, one: Any) -> Level:
    where = f"tiers.levels[{i}]"
    if not isinstance(one, Mapping):
        raise ValueError(f"{where} must be an object with id, name, threshold and benefits")
    unknown = set(one) - {"id", "name", "threshold", "benefits"}
    if unknown:
        raise ValueError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    level_id, name, threshold = one.get("id"), one.get("name"), one.get("threshold")
    if not isinstance(level_id, str) or not _ID.match(level_id):
        raise ValueError(f"{where}.id must be 1 to 32 lowercase letters, digits, - or _, starting with a letter "
                         "or digit")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValueError(f"{where}.name must be a text of 1 to 100 characters")
    if not _int(threshold) or not 0 <= threshold <= 10**13:
        raise ValueError(f"{where}.threshold must be an integer ≥ 0 (points or minor units)")
    benefits = one.get("benefits") or {}
    if not isinstance(benefits, Mapping):
        raise ValueError(f"{where}.benefits must be an object")
    unknown = set(benefits) - {"earn_multiplier_bps", "catalog_discount_bps", "free_delivery"}
    if unknown:
        raise ValueError(f"{where}.benefits has unknown fields: {', '.join(sorted(unknown))}")
    multiplier = benefits.get("earn_multiplier_bps", BPS)
    discount = benefits.get("catalog_discount_bps", 0)
    delivery = benefits.get("free_delivery", False)
    if multiplier is None:
        multiplier = BPS
    if discount is None:
        discount = 0
    if delivery is None:
        delivery = False
    if not _int(multiplier) or not BPS <= multiplier <= 10 * BPS:
        raise ValueError(f"{where}.benefits.earn_multiplier_bps must be an integer from 10000 (1×) to 100000")
    if not _int(discount) or not 0 <= discount <= BPS:
        raise ValueError(f"{where}.benefits.catalog_discount_bps must be an integer from 0 to 10000")
    if not isinstance(delivery, bool):
        raise ValueError(f"{where}.benefits.free_delivery must be true or false")
    return Level(level_id, name.strip(), threshold, multiplier, discount, delivery)


def value(months: Mapping[str, int], start: datetime, end: datetime) -> int:
    """The qualifying value of [start, end): the sum of the months' counters in it."""
    return sum(months.get(month, 0) for month in months_between(start, end))


def projected_value(so_far: int, start: datetime, end: datetime, now: datetime) -> int:
    """Where ``so_far`` (the value of [start, now)) lands at ``end`` at the current pace: pace = so_far per time
    elapsed since ``start`` (at least ``MIN_PACE``, so a window's first days do not extrapolate wildly), and the
    projection is ``so_far + pace × time left``, rounded down; the value itself once ``end`` has passed."""
    if now >= end:
        return so_far
    elapsed = max(now - start, MIN_PACE)
    left = end - now
    return so_far + int(so_far * left.total_seconds() // elapsed.total_seconds())


@dataclass(frozen=True)
class Review:
    """A review's outcome: the level the member holds after it and its new ``until`` (None: the lowest)."""

    level: Level
    until: datetime | None
    values: tuple[int, ...]  # the value of each period judged, oldest first
    since: datetime | None = None  # the end of the period at which the level last went down (None: kept)

    def changed(self, before: Level) -> bool:
        return self.level.id != before.id


def review(tiers: Tiers, level: Level, until: datetime, now: datetime, months: Mapping[str, int]) -> Review:
    """Judge every period that ended by ``now`` since ``until``: each keeps the level when its value reaches
    the level's threshold, else moves down to the highest level it reaches (never up); at the lowest level
    the review stops (no ``until``). ``months``: the counters of every month from the first period judged on."""
    values: list[int] = []
    since = None
    current: datetime | None = until
    while current is not None and current <= now:
        start, end = tiers.review_window(current)
        judged = value(months, start, end)
        values.append(judged)
        reached = tiers.reached(judged)
        if tiers.rank(reached.id) < tiers.rank(level.id):
            level, since = reached, current
        current = None if tiers.rank(level.id) == 0 else tiers.next_until(current)
    return Review(level, current, tuple(values), since)
