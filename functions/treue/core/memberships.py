"""Paid membership, pure: the plans (``PATCH /v1/program``'s ``membership_plans``), period arithmetic, a
membership's states and the grant it puts on the member's ``TIER`` item. No I/O and no pydantic:
``treue.logic.memberships`` reads and writes, this module decides.

A plan, as the API takes and shows it::

    {"id", "name", "price": {"value", "currency"}, "period_months", "tier" (a tier level id or null),
     "welcome_points", "earn_multiplier_bps"}

**Periods.** A membership starting at ``starts_at`` that has paid ``months_paid`` months (the sum of its paid periods'
``period_months``) ends at ``starts_at`` moved by that many calendar months, same day and time; a day the month
does not have is its last day (started 31 January, monthly: 28/29 February, then 31 March: the day is always
counted from the start, so a short month does not shift the periods after it).

**States.** ``active`` from the start until ``current_period_end`` (a renewal moves it on by a period and
clears ``cancel_at_period_end``; a cancel sets that flag and nothing else), then ``ended`` (``ended_reason``:
``canceled`` when it was canceled, else ``lapsed``). An active membership whose end has passed is treated as
ended by every read, before the daily run writes it.

**Grant.** While active, the member's ``TIER`` item carries ``membership: {membership_id, plan_id, tier,
earn_multiplier_bps, until}``: what accrual, the catalog, the tier answer and the segments read with the item
they already read. A grant whose ``until`` has passed grants nothing.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from treue.core import times
from treue.core.statuses import MembershipStatus

if TYPE_CHECKING:
    from treue.core.tiers import Level, Tiers

BPS = 10_000
MAX_PLANS = 20
MAX_PERIOD_MONTHS = 36
MAX_WELCOME_POINTS = 10_000_000
MAX_PRICE = 10**11  # minor units
DUE_SHARDS = 4  # the daily run's index of active memberships spreads over this many partitions
ACTIVE, ENDED = MembershipStatus.ACTIVE, MembershipStatus.ENDED
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
FIELDS = ("id", "name", "price", "period_months", "tier", "welcome_points", "earn_multiplier_bps")


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    price: int  # minor units of ``currency``
    currency: str
    period_months: int
    tier: str | None = None
    welcome_points: int = 0
    earn_multiplier_bps: int = BPS

    @property
    def bonus_account_id(self) -> str:
        """What follows ``program:bonus:`` in the account the plan's welcome points come from."""
        return f"membership:{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "price": {"value": self.price, "currency": self.currency},
                "period_months": self.period_months, "tier": self.tier, "welcome_points": self.welcome_points,
                "earn_multiplier_bps": self.earn_multiplier_bps}


def parse_plans(data: Any, tier_ids: Sequence[str] | None = ()) -> tuple[Plan, ...]:
    """The plans, checked; ``tier_ids`` the program's tier levels (a plan's ``tier`` must name one; None: not
    checked here). A ValueError starting with ``membership_plans`` says what is wrong."""
    if data is None:
        return ()
    if not isinstance(data, list | tuple) or len(data) > MAX_PLANS:
        raise ValueError(f"membership_plans must be a list of at most {MAX_PLANS} plans")
    plans = [_plan(i, one, tier_ids) for i, one in enumerate(data)]
    ids = [plan.id for plan in plans]
    if len(set(ids)) != len(ids):
        raise ValueError("membership_plans: the ids must be unique")
    return tuple(plans)


def _plan(i: int, one: Any, tier_ids: Sequence[str] | None) -> Plan:
    where = f"membership_plans[{i}]"
    if not isinstance(one, Mapping):
        raise ValueError(f"{where} must be an object with id, name, price and period_months")
    unknown = set(one) - set(FIELDS)
    if unknown:
        raise ValueError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    plan_id, name, price, months = one.get("id"), one.get("name"), one.get("price"), one.get("period_months")
    if not isinstance(plan_id, str) or not _ID.match(plan_id):
        raise ValueError(f"{where}.id must be 1 to 32 lowercase letters, digits, - or _, starting with a letter "
                         "or digit")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValueError(f"{where}.name must be a text of 1 to 100 characters")
    if not isinstance(price, Mapping) or set(price) != {"value", "currency"}:
        raise ValueError(f"{where}.price must be {{\"value\": minor units, \"currency\": \"EUR\"}}")
    if not _int(price["value"]) or not 0 <= price["value"] <= MAX_PRICE:
        raise ValueError(f"{where}.price.value must be an integer of minor units from 0 to {MAX_PRICE}")
    if not isinstance(price["currency"], str) or not _CURRENCY.match(price["currency"]):
        raise ValueError(f"{where}.price.currency must be an ISO 4217 code such as EUR")
    if not _int(months) or not 1 <= months <= MAX_PERIOD_MONTHS:
        raise ValueError(f"{where}.period_months must be an integer from 1 to {MAX_PERIOD_MONTHS}")
    tier = one.get("tier")
    if tier is not None and not isinstance(tier, str):
        raise ValueError(f"{where}.tier must be a tier level id or null")
    if tier is not None and tier_ids is not None and tier not in tier_ids:
        raise ValueError(f"{where}.tier must name one of the program's tier levels"
                         + (f" ({', '.join(tier_ids)})" if tier_ids else " (the program has no tiers)"))
    welcome = one.get("welcome_points")
    welcome = 0 if welcome is None else welcome
    if not _int(welcome) or not 0 <= welcome <= MAX_WELCOME_POINTS:
        raise ValueError(f"{where}.welcome_points must be an integer from 0 to {MAX_WELCOME_POINTS}")
    multiplier = one.get("earn_multiplier_bps")
    multiplier = BPS if multiplier is None else multiplier
    if not _int(multiplier) or not BPS <= multiplier <= 10 * BPS:
        raise ValueError(f"{where}.earn_multiplier_bps must be an integer from 10000 (1×) to 100000")
    return Plan(plan_id, name.strip(), price["value"], price["currency"], months, tier, welcome, multiplier)


# ---------------------------------------------------------------- periods


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by ``months`` calendar months, same day and time; a day the month does not have is its
    last day (31 January + 1 month = 28 or 29 February)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def period_end(starts_at: datetime, months_paid: int) -> datetime:
    """The end of a membership that started at ``starts_at`` and has paid ``months_paid`` months (counted from
    the start, so a short month never shifts the periods after it)."""
    if months_paid < 1:
        raise ValueError("a membership has paid at least one month")
    return add_months(starts_at, months_paid)


# ---------------------------------------------------------------- states


def started(membership_id: str, member_id: str, plan: Plan, starts_at: datetime, reference: str,
            now: datetime) -> dict[str, Any]:
    """A new membership of ``plan`` from ``starts_at``, its first period paid by ``reference``."""
    end = period_end(starts_at, plan.period_months)
    return {"membership_id": membership_id, "member_id": member_id, "plan_id": plan.id, "plan": plan.to_json(),
            "status": ACTIVE, "starts_at": iso(starts_at), "current_period_end": iso(end),
            "months_paid": plan.period_months, "periods": 1, "cancel_at_period_end": False, "canceled_at": None,
            "ended_at": None, "ended_reason": None, "created_at": iso(now),
            "payments": [payment(plan, reference, starts_at, end, now)]}


def payment(plan: Plan, reference: str, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    return {"payment_reference": reference, "amount": {"value": plan.price, "currency": plan.currency},
            "period_start": iso(start), "period_end": iso(end), "paid_at": iso(now)}


def status_at(membership: Mapping[str, Any], now: datetime) -> str:
    """``active`` or ``ended`` at ``now``: an active membership whose period has ended is over, whether or not the
    daily run has written it yet."""
    if membership["status"] != ACTIVE:
        return ENDED
    return ACTIVE if parse(membership["current_period_end"]) > now else ENDED


def end_reason(membership: Mapping[str, Any]) -> str:
    return "canceled" if membership.get("cancel_at_period_end") else "lapsed"


def renewed(membership: Mapping[str, Any], plan: Plan, reference: str, now: datetime) -> dict[str, Any]:
    """The membership after one more paid period of ``plan`` (the plan as it is now: its price, length, tier and
    multiplier apply from the renewal). A renewal undoes a cancel: paying for the next period continues it."""
    if status_at(membership, now) != ACTIVE:
        raise ValueError("an ended membership cannot be renewed: start a new one")
    months = int(membership["months_paid"]) + plan.period_months
    start = parse(membership["current_period_end"])
    end = period_end(parse(membership["starts_at"]), months)
    return {**membership, "months_paid": months, "periods": int(membership["periods"]) + 1,
            "current_period_end": iso(end), "cancel_at_period_end": False, "canceled_at": None,
            "plan": plan.to_json(), "payments": [*membership["payments"], payment(plan, reference, start, end, now)]}


def canceled(membership: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The membership canceled at ``now``: it stays active until its period ends (nothing is refunded); canceling
    again, or an ended membership, changes nothing."""
    if membership.get("cancel_at_period_end") or status_at(membership, now) != ACTIVE:
        return dict(membership)
    return {**membership, "cancel_at_period_end": True, "canceled_at": iso(now)}


def ended(membership: Mapping[str, Any]) -> dict[str, Any]:
    """The membership once its period has ended (``ended_at`` is the period's end, not when the run saw it)."""
    return {**membership, "status": ENDED, "ended_at": membership["current_period_end"],
            "ended_reason": end_reason(membership)}


# ---------------------------------------------------------------- the grant on the TIER item


@dataclass(frozen=True)
class Grant:
    membership_id: str
    plan_id: str
    tier: str | None
    earn_multiplier_bps: int
    until: datetime

    def to_item(self) -> dict[str, Any]:
        return {"membership_id": self.membership_id, "plan_id": self.plan_id, "tier": self.tier,
                "earn_multiplier_bps": self.earn_multiplier_bps, "until": iso(self.until)}


def grant_of(membership: Mapping[str, Any]) -> Grant:
    plan = membership["plan"]
    return Grant(membership["membership_id"], plan["id"], plan.get("tier"), int(plan["earn_multiplier_bps"]),
                 parse(membership["current_period_end"]))


def active_grant(state: Mapping[str, Any] | None, now: datetime) -> Grant | None:
    """The grant a ``TIER`` item carries at ``now`` (None: none, or its period has ended)."""
    raw = (state or {}).get("membership")
    if not raw:
        return None
    until = parse(raw["until"])
    if until <= now:
        return None
    return Grant(raw["membership_id"], raw["plan_id"], raw.get("tier"), int(raw.get("earn_multiplier_bps", BPS)),
                 until)


def effective_level(tiers: Tiers, level: Level, grant: Grant | None) -> Level:
    """The level a member stands at: ``level`` (qualified for), or the grant's tier when it is higher."""
    if grant is None or grant.tier is None:
        return level
    granted = tiers.level(grant.tier)
    return granted if tiers.rank(granted.id) > tiers.rank(level.id) else level


def effective_tier(tiers: Tiers | None, state: Mapping[str, Any] | None, now: datetime) -> str | None:
    """The id of the level a ``TIER`` item (None: none) puts the member at, at ``now`` (None without tiers)."""
    if tiers is None:
        return None
    return effective_level(tiers, tiers.level((state or {}).get("tier")), active_grant(state, now)).id


def parse(text: str) -> datetime:
    moment = times.parse(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """Every time a membership keeps: UTC with milliseconds (fixed width, so the due index sorts them)."""
    return times.iso(moment.astimezone(UTC), "milliseconds")
