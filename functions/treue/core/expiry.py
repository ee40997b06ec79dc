"""When points expire, and how many of a member's points have expired or will (pure; no AWS).

A program's ``expiry`` setting gives every credit an expiry date, ``on``: the last day its points can be spent.
``{"policy": "rolling", "months": N}``: N months after the day the points were earned (``occurred_at``; a day
past the end of a shorter month is that month's last day). ``{"policy": "end_of_period", "months": N}``: the end
of the calendar year (N a multiple of 12) or of the calendar quarter (otherwise) that N months after
``occurred_at`` falls in. No setting: points never expire.

The points of one date are a *bucket*. Spending takes the earliest-expiring points first. The ledger does not
record which bucket each spend came from; it does not need to: when spending always takes the earliest-expiring
points, the points a member still has are the *latest*-expiring ones. So from the member's ``available`` points,
the points that never expire (``undated``) and what each bucket was credited, it follows which buckets the
available points sit in (``composition``), what has expired at a day (``due``) and what expires next
(``upcoming``). Held points were taken first (they are the earliest), so they do not expire while an order holds
them; released, they are available again and expire at the next run if their date has passed.

A purchase reported late takes its place in that order by its own date: its points count as spent before the
member's later-expiring ones, so a late purchase whose date has already passed expires at the next run as far as
the member's available points are more than the points that expire later.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

POLICIES = ("rolling", "end_of_period")


@dataclass(frozen=True)
class Policy:
    policy: Literal["rolling", "end_of_period"]
    months: int

    def expires_on(self, occurred_at: datetime | date) -> date:
        """The last day points earned at ``occurred_at`` can be spent (its own calendar date)."""
        day = occurred_at.date() if isinstance(occurred_at, datetime) else occurred_at
        target = add_months(day, self.months)
        if self.policy == "rolling":
            return target
        if self.months % 12 == 0:
            return date(target.year, 12, 31)
        quarter_end = (target.month - 1) // 3 * 3 + 3
        return date(target.year, quarter_end, calendar.monthrange(target.year, quarter_end)[1])

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "months": self.months}


def parse(setting: dict[str, Any] | None) -> Policy | None:
    """The program's ``expiry`` setting as a Policy (None: points never expire); ValueError names the problem."""
    if setting is None:
        return None
    if not isinstance(setting, dict) or set(setting) != {"policy", "months"}:
        raise ValueError('expiry must be {"policy": "rolling" | "end_of_period", "months": N} or null')
    policy, months = setting["policy"], setting["months"]
    if policy not in POLICIES:
        raise ValueError(f"expiry.policy must be one of {', '.join(POLICIES)}")
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 120:
        raise ValueError("expiry.months must be an integer from 1 to 120")
    return Policy(policy, months)


def add_months(day: date, months: int) -> date:
    """``day`` moved ``months`` calendar months on; the 31st of a shorter month becomes its last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def undated(lifetime_earned: int, dated: int, pending: int) -> int:
    """The member's points that never expire: everything earned (net of reversals) that was neither credited
    with an expiry date nor is still pending (points earned before the program had an expiry setting)."""
    return max(0, lifetime_earned - dated - pending)


def composition(available: int, never: int, buckets: dict[date, int]) -> dict[date, int]:
    """Which buckets the member's ``available`` points sit in: the latest-expiring first (``never`` points
    that do not expire, then the buckets from the latest date down), since spending took the earliest. Dates
    whose points are all spent are left out."""
    rest = max(0, available - never)
    sits: dict[date, int] = {}
    for on in sorted(buckets, reverse=True):
        if rest <= 0:
            break
        take = min(rest, max(0, buckets[on]))
        if take:
            sits[on] = take
            rest -= take
    return dict(sorted(sits.items()))


def due(available: int, never: int, buckets: dict[date, int], today: date) -> int:
    """The available points whose date has passed by ``today`` (``on`` before it): what the run of ``today``
    expires. Buckets before ``today`` need not be given (they may be gone): only the later ones count."""
    later = sum(points for on, points in buckets.items() if on >= today and points > 0)
    return max(0, available - never - later)


def upcoming(available: int, never: int, buckets: dict[date, int], today: date, count: int = 3
             ) -> list[dict[str, Any]]:
    """The next ``count`` expiry dates of the available points and how many expire on each, earliest first.
    Points whose date has passed but that the daily run has not expired yet are listed under their date (or,
    when their bucket is gone — released after the run — under the day before ``today``): they go at the next run."""
    sits = composition(available, never, buckets)
    unplaced = due(available, never, buckets, today) - sum(p for on, p in sits.items() if on < today)
    if unplaced > 0:
        yesterday = date.fromordinal(today.toordinal() - 1)
        sits[yesterday] = sits.get(yesterday, 0) + unplaced
    return [{"points": points, "on": on.isoformat()} for on, points in sorted(sits.items())][:count]
