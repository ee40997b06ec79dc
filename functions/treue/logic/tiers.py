"""Status tiers (issue 16 item 4): the member's standing at accrual, the upgrade in the accrual transaction,
``GET /v1/members/{id}/tier`` and the scheduled review. The rules of the game are in ``treue.core.tiers``.

Accrual (``treue.logic.points.accrue``) of a program with tiers reads the member's ``TIER`` item (no item: the
lowest level) and, below the top level, the current window's MONTH# counters (one Query); the purchase is
earned at the level the member had before it. When the window's value with this purchase reaches a higher
level, the transaction writes the new ``TIER`` item (conditioned on the version read) and ``tier.upgraded``;
when it does not, the purchase's month counter is conditioned on the room left below the next threshold, so
a concurrent purchase that changed the outcome makes one of them evaluate again (``StaleCondition``). A
program without tiers reads nothing more and loads none of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from treue.core import memberships, times
from treue.core import tiers as rules
from treue.core.statuses import EventType
from treue.errors import MemberNotFound, TiersNotConfigured
from treue.logic.earning import Member, MembershipBenefit, Tier

if TYPE_CHECKING:
    from collections.abc import Callable

    from treue.core.memberships import Grant
    from treue.core.programs import Program
    from treue.logic.models import Purchase
    from treue.logic.ports import Item, ProgramLookup, TierPort

REVIEW_PAGE = 100


@dataclass(frozen=True)
class Standing:
    """The member's tier as an accrual reads it, with a paid membership's grant on the same ``TIER`` item."""

    tiers: rules.Tiers | None  # None: a program without tiers that sells membership plans
    level: rules.Level | None  # the level qualified for
    version: int  # of the TIER item (0: none yet)
    window: tuple[datetime, datetime] | None
    months: dict[str, int] | None  # the window's months' values of the metric; None at the top (not read)
    grant: Grant | None = None  # an active paid membership (``treue.core.memberships``)

    @property
    def effective(self) -> rules.Level | None:
        """The level the member earns and is priced at: the one qualified for, or the grant's when higher."""
        if self.tiers is None or self.level is None:
            return None
        return memberships.effective_level(self.tiers, self.level, self.grant)

    def member(self, segments: frozenset[str] = frozenset()) -> Member:
        level, grant = self.effective, self.grant
        return Member(tier=Tier(level.id, level.earn_multiplier_bps) if level else None, segments=segments,
                      membership=MembershipBenefit(grant.plan_id, grant.earn_multiplier_bps) if grant else None)


def _last_month(end: datetime) -> str:
    return rules.month_key(end - timedelta(microseconds=1))


def standing(store: TierPort, program: Program, member_id: str, now: datetime, months: bool = True) -> Standing:
    """The member's level (the TIER item) and, below the top level with ``months``, the current window's values;
    the item's paid membership grant when it is active at ``now``."""
    config = program.tier_config()
    if config is None and not program.membership_plans:
        raise TiersNotConfigured(f"program {program.id} has no tiers")
    state = store.tier_state(program.id, member_id)
    grant = memberships.active_grant(state, now)
    version = int(state.get("version") or 0) if state else 0
    if config is None:
        return Standing(None, None, version, None, None, grant)
    level = config.level(state.get("tier") if state else None)
    window = config.window(now)
    values = None
    if months and config.above(level) is not None:
        found = store.month_counters(program.id, member_id, rules.month_key(window[0]), _last_month(window[1]))
        values = {month: int(c.get(config.counter, 0)) for month, c in found.items()}
    return Standing(config, level, version, window, values, grant)


def purchase_items(store: TierPort, program_id: str, member_id: str, found: Standing | None, purchase: Purchase,
                   points: int, now: str) -> tuple[list[Item], dict[str, Any] | None]:
    """The accrual transaction's items for a purchase that earned ``points``: its month's counters, and with
    tiers an upgrade (TIER, audit, ``tier.upgraded``) or the condition that keeps "no upgrade" true. Returns
    the items and the upgrade event's data (None: no upgrade)."""
    occurred = purchase.occurred_at.astimezone(UTC)
    month = rules.month_key(occurred)
    amount = purchase.amount.value
    adds = {"qualifying_points": points, "spend": amount, "purchases": 1}
    categories = [line.category for line in purchase.lines or () if line.category]
    if found is None or found.months is None or found.tiers is None or found.level is None or found.window is None:
        return [store.month_item(program_id, member_id, month, adds, categories)], None  # no tiers, or at the top
    config, level = found.tiers, found.level
    start, end = found.window
    inside = start <= occurred < end
    others = sum(v for m, v in found.months.items() if m != month)
    own = found.months.get(month, 0) if inside else 0
    qualifying = config.qualifying(points, amount) if inside else 0
    total = others + own + qualifying
    reached = config.reached(total)
    if config.rank(reached.id) > config.rank(level.id):
        until = times.iso(config.first_until(times.parse(now)))
        event = {"member_id": member_id, "from": level.id, "to": reached.id, "since": now, "until": until,
                 "metric": config.metric, "value": total, "transaction_id": purchase.transaction_id}
        state = {"tier": reached.id, "since": now, "until": until}
        return [store.month_item(program_id, member_id, month, adds, categories),
                *store.tier_change_items(program_id, member_id, found.version, state, EventType.TIER_UPGRADED,
                                         event, now)], event
    room = None
    following = config.above(level)
    if inside and following is not None:  # no upgrade as long as the month has not grown past what was read
        room = (config.counter, following.threshold - 1 - qualifying - others)
    return [store.month_item(program_id, member_id, month, adds, categories, room)], None


# ---------------------------------------------------------------- GET /v1/members/{id}/tier


def status(store: TierPort, program: Program, member_id: str, now: datetime) -> dict[str, Any]:
    """The member's tier, progress to the next, what keeps it at the review and where the current pace lands.

    ``progress.value`` is the current window's value (what upgrades); ``retain`` the value the period judged at
    ``until`` still needs to keep the tier (``by: until``; none at the lowest level); ``projected_tier`` the level
    the projected value reaches (``treue.core.tiers.projected_value``) of the member's period: the one judged at
    ``until``, or at the lowest level the current window."""
    config = program.tier_config()
    if config is None:
        raise TiersNotConfigured(f"program {program.id} has no tiers: PATCH /v1/program with tiers first")
    member = store.get_member(program.id, member_id)
    if member is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    state = store.tier_state(program.id, member_id) or {}
    level = config.level(state.get("tier"))
    grant = memberships.active_grant(state, now)
    shown = memberships.effective_level(config, level, grant)  # a paid membership's tier while it is higher
    until = state.get("until")
    window = config.window(now)
    period = config.review_window(times.parse(until)) if until else window
    first = min(window[0], period[0])
    found = store.month_counters(program.id, member_id, rules.month_key(first), rules.month_key(now))
    months = {month: int(c.get(config.counter, 0)) for month, c in found.items()}
    value = rules.value(months, *window)
    following = config.above(level)
    so_far = rules.value(months, *period)
    projected = rules.projected_value(so_far, period[0], period[1], now)
    return {
        "member_id": member_id,
        "tier": shown.id,
        "name": shown.name,
        "benefits": shown.to_json()["benefits"],
        "since": state.get("since") or member.get("created_at"),
        "until": until,
        "progress": {"metric": config.metric, "value": value, "next_tier": following.id if following else None,
                     "needed": max(following.threshold - value, 0) if following else 0},
        "retain": {"needed": max(level.threshold - so_far, 0) if until else 0, "by": until},
        "projected_tier": config.reached(projected).id,
        "projected_value": projected,
        "qualified_tier": level.id,
        "membership": grant.to_item() if grant else None,
    }


# ---------------------------------------------------------------- the scheduled review


def review_due(store: TierPort, programs: ProgramLookup, now: datetime,
               seconds_left: Callable[[], float] | None = None, program_id: str | None = None) -> dict[str, int]:
    """Review every tier state whose ``until`` has passed at ``now`` (``treue.core.tiers.review``): a member who
    requalified keeps the level (``until`` moves on), one who did not goes down to the level the period reached,
    with ``tier.downgraded``; never up. Each write is conditioned on the version read, so replays and concurrent
    runs change a member once per period. Answers counts: due, kept, downgraded, skipped (changed meanwhile or
    the program has no tiers any more: its states leave the index). With ``program_id``: that program's only
    (``treue jobs run tier-review``)."""
    counts = {"due": 0, "kept": 0, "downgraded": 0, "skipped": 0}
    stamp = times.iso(now.astimezone(UTC), "seconds")
    for shard in range(rules.DUE_SHARDS):
        after = None
        while True:
            page, after = store.tiers_due(shard, stamp, REVIEW_PAGE, after)
            for state in page:
                if program_id is not None and state["program_id"] != program_id:
                    continue
                counts["due"] += 1
                counts[review_one(store, programs, state, now)] += 1
            if after is None or (seconds_left is not None and seconds_left() < 10):
                break
    return counts


def review_one(store: TierPort, programs: ProgramLookup, state: dict[str, Any], now: datetime) -> str:
    """Review one due state → "kept", "downgraded" or "skipped"."""
    program_id, member_id = state["program_id"], state["member_id"]
    config = programs(program_id).tier_config()
    until = times.parse(state["until"])
    version = int(state["version"])
    now_text = times.iso(now.astimezone(UTC), "seconds")
    if config is None:  # tiers removed: the state stays as it was, out of the review's index
        store.transact_first([store.tier_put(program_id, member_id, version, {
            "tier": state["tier"], "since": state["since"], "until": None})])
        return "skipped"
    before = config.level(state["tier"])
    first = config.review_window(until)[0]
    found = store.month_counters(program_id, member_id, rules.month_key(first), rules.month_key(now))
    months = {month: int(c.get(config.counter, 0)) for month, c in found.items()}
    outcome = rules.review(config, before, until, now, months)
    new_until = times.iso(outcome.until) if outcome.until else None
    if outcome.changed(before) and outcome.since is not None:
        since = times.iso(outcome.since)
        event = {"member_id": member_id, "from": before.id, "to": outcome.level.id, "since": since,
                 "until": new_until, "metric": config.metric, "value": outcome.values[-1],
                 "period_end": state["until"]}
        items = store.tier_change_items(program_id, member_id, version,
                                        {"tier": outcome.level.id, "since": since, "until": new_until},
                                        EventType.TIER_DOWNGRADED, event, now_text)
        return "downgraded" if store.transact_first(items) else "skipped"
    kept = store.tier_put(program_id, member_id, version,
                          {"tier": before.id, "since": state["since"], "until": new_until})
    return "kept" if store.transact_first([kept]) else "skipped"
