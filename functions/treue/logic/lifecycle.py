"""Points over time: pending points become available, expired points leave, debt is paid back first.

- **Activation.** A purchase's points earned with the program's ``pending_days`` sit in ``member:pending`` (one
  pending item per purchase) until ``occurred_at + pending_days``; then one ``activation`` posting per purchase
  moves them to ``member:available`` (exactly once: the posting deletes the pending item, conditioned on its
  points as read). The daily job activates what is due; a member's balance read counts due points as available
  already, and spending activates them first (``settle``).
- **Expiry** (``treue.core.expiry``). The daily job posts, per member and day, one ``expiry`` posting
  (``member:available`` → ``program:expired``) of the points whose date has passed, exactly once (the posting's
  idempotency key is the member and the day; its balance update is conditioned on the balance as read). It
  announces ``points.expiring`` ``expiry_notice_days`` ahead, once per member and date.
- **Debt.** What a return could not take back from available points is debt (``member:debt``); new points pay
  it back first (``repay``), so ``available`` is never negative.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from treue.core import expiry, times
from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType, request_fingerprint
from treue.core.programs import Program
from treue.core.statuses import EventType
from treue.errors import InsufficientPoints, ProgramNotFound, StaleCondition
from treue.logic.ports import LedgerPort

NOTICE_MAX_DAYS = 90  # expiry_notice_days is at most this
ATTEMPTS = 5  # an expiry is computed again this often when the balance changed between read and write
ProgramLookup = Callable[[str], Program]


# ------------------------------------------------------------------ reads


def balance_view(store: LedgerPort, program_id: str, member_id: str, now: datetime | None = None,
                 expires: bool = True) -> dict[str, Any] | None:
    """The member's balance as the API shows it (None: no such member): ``available``, ``pending``, ``held``,
    ``debt``, ``expiring`` (the next three expiry dates of the available points) and the lifetime counters.
    Pending points whose time has come count as available already (the activation job may not have run), less
    the debt they pay back first, as the activation will post them. ``expires``: whether the program has an expiry
    setting (without one the run expires nothing, so nothing is listed as expiring)."""
    state = store.balance_state(program_id, member_id)
    if state is None:
        return None
    moment = now or datetime.now(UTC)
    available, pending, debt = state["available"], state["pending"], state["debt"]
    due_buckets: dict[date, int] = {}
    if pending > 0:
        for item in store.pending_items(program_id, member_id, due_by=times.iso(moment)):
            points = int(item.get("points", 0))
            available, pending = available + points, pending - points
            if item.get("expires_on"):
                on = date.fromisoformat(item["expires_on"])
                due_buckets[on] = due_buckets.get(on, 0) + points
        if available > state["available"]:  # as the activation will post them: the debt is paid back first
            repaid = min(debt, available)
            available, debt = available - repaid, debt - repaid
    expiring: list[dict[str, Any]] = []
    if expires and (state["dated"] > 0 or due_buckets):
        buckets = {date.fromisoformat(on): p for on, p in store.buckets(program_id, member_id).items()}
        for on, points in due_buckets.items():
            buckets[on] = buckets.get(on, 0) + points
        never = expiry.undated(state["lifetime_earned"], state["dated"] + sum(due_buckets.values()), pending)
        expiring = expiry.upcoming(available, never, buckets, moment.date())
    return {"available": available, "pending": pending, "held": state["held"], "debt": debt,
            "expiring": expiring, "lifetime_earned": state["lifetime_earned"],
            "lifetime_redeemed": state["lifetime_redeemed"]}


# ------------------------------------------------------------------ activation


def activate_member(store: LedgerPort, program: Program, member_id: str, now: datetime,
                    actor: str = "system:activate-pending") -> int:
    """Activate the member's pending points due at ``now``; the points activated (0: none due, or done)."""
    total = 0
    for item in store.pending_items(program.id, member_id, due_by=times.iso(now)):
        total += _activate(store, program, member_id, item, now, actor)
    if total:
        repay(store, program.id, member_id, f"activation:{member_id}:{times.iso(now)}", times.iso(now), actor)
    return total


def settle(store: LedgerPort, program: Program, member_id: str, now: datetime) -> None:
    """Before the member spends: activate pending points whose time has come (one read when there are none)."""
    state = store.balance_state(program.id, member_id)
    if state and state["pending"] > 0:
        activate_member(store, program, member_id, now)


def _activate(store: LedgerPort, program: Program, member_id: str, item: dict[str, Any], now: datetime,
              actor: str) -> int:
    for _ in range(ATTEMPTS):
        points = int(item.get("points", 0))
        stamp = times.iso(now)
        metadata = {k: item[k] for k in ("occurred_at", "available_at", "expires_on") if item.get(k)}
        posting = Posting(
            id=new_id("pst"), program_id=program.id, member_id=member_id, type=PostingType.ACTIVATION,
            debit=Account.MEMBER_PENDING, credit=Account.MEMBER_AVAILABLE, points=max(points, 1),
            reference=str(item.get("reference", "")), reason="pending period over", actor=actor, created_at=stamp,
            metadata={**metadata, "pending_id": item.get("posting_id")})
        take = store.pending_take_item(program.id, member_id, item["sk"], points, 0)
        if points <= 0:  # a return took all of it: only the empty item goes
            try:
                store.post(program.id, member_id, ("activation", str(item.get("posting_id")),
                                                   request_fingerprint({"pending": item["sk"]})),
                           {"points": 0}, None, stamp, [take])
            except StaleCondition:
                pass
            return 0
        event = store.event_item(program.id, EventType.POINTS_ACTIVATED, {
            "member_id": member_id, "points": points, "reference": posting.reference,
            "expires_on": item.get("expires_on")}, stamp)
        try:
            replay = store.post(program.id, member_id, ("activation", str(item.get("posting_id")),
                                                        request_fingerprint({"pending": item["sk"]})),
                                {"points": points}, posting, stamp, [take, event])
        except StaleCondition:  # a return changed the item meanwhile (or it is gone): read it again
            again = store.pending_item(program.id, member_id, item["sk"])
            if again is None:
                return 0
            item = again
            continue
        return 0 if replay is not None else points
    return 0


# ------------------------------------------------------------------ expiry


def expire_member(store: LedgerPort, program: Program, member_id: str, today: date, now: str,
                  actor: str = "system:expire-points") -> int:
    """Post what of the member's available points expired before ``today`` (one posting, exactly once per
    member and day) and drop the buckets whose date has passed; the points expired by this call."""
    for _ in range(ATTEMPTS):
        state = store.balance_state(program.id, member_id)
        if state is None:
            return 0
        stored = store.buckets(program.id, member_id)
        buckets = {date.fromisoformat(on): points for on, points in stored.items()}
        past = sorted(on for on in stored if date.fromisoformat(on) < today)
        never = expiry.undated(state["lifetime_earned"], state["dated"], state["pending"])
        points = expiry.due(state["available"], never, buckets, today)
        # held points may be released: their past buckets keep the member in the due index until then
        drop = past if state["held"] <= 0 else []
        if points <= 0:
            store.drop_buckets(program.id, member_id, drop)
            return 0
        posting = Posting(
            id=new_id("pst"), program_id=program.id, member_id=member_id, type=PostingType.EXPIRY,
            debit=Account.MEMBER_AVAILABLE, credit=Account.PROGRAM_EXPIRED, points=points,
            reference=f"expiry:{today.isoformat()}", reason="points expired", actor=actor, created_at=now,
            metadata={"as_of": today.isoformat(), "dates": past})
        event = store.event_item(program.id, EventType.POINTS_EXPIRED, {
            "member_id": member_id, "points": points, "as_of": today.isoformat(), "dates": past}, now)
        key = ("expiry", f"{member_id}:{today.isoformat()}",
               request_fingerprint({"member_id": member_id, "day": today.isoformat()}))
        try:
            replay = store.post(program.id, member_id, key, {"points": points}, posting, now, [event],
                                expect_updated_at=state.get("updated_at"))
        except (StaleCondition, InsufficientPoints):  # the balance moved since it was read: compute again
            continue
        if replay is not None:  # expired earlier today: a bucket credited since is the next day's run's to expire
            return 0
        store.drop_buckets(program.id, member_id, drop)
        return points
    return 0


def notify_expiring(store: LedgerPort, program: Program, member_id: str, on: date, today: date, now: str) -> int:
    """Write ``points.expiring`` for the member's points expiring ``on`` (once per member and date); the
    points announced (0: none expire then, or announced before)."""
    state = store.balance_state(program.id, member_id)
    if state is None:
        return 0
    buckets = {date.fromisoformat(d): p for d, p in store.buckets(program.id, member_id).items()}
    never = expiry.undated(state["lifetime_earned"], state["dated"], state["pending"])
    points = expiry.composition(state["available"] - expiry.due(state["available"], never, buckets, today),
                                never, {d: p for d, p in buckets.items() if d >= today}).get(on, 0)
    if points <= 0:
        return 0
    event = store.event_item(program.id, EventType.POINTS_EXPIRING, {
        "member_id": member_id, "points": points, "on": on.isoformat(), "days_left": (on - today).days}, now)
    key = ("expiring", f"{member_id}:{on.isoformat()}",
           request_fingerprint({"member_id": member_id, "on": on.isoformat()}))
    try:
        replay = store.post(program.id, member_id, key, {"points": points}, None, now, [event])
    except StaleCondition:
        return 0
    return 0 if replay is not None else points


# ------------------------------------------------------------------ debt


def repay(store: LedgerPort, program_id: str, member_id: str, reference: str, now: str,
          actor: str = "system:repay") -> int:
    """Pay back the member's debt from available points, as far as they go (once per ``reference``: the credit
    that brought the points); the points repaid."""
    state = store.balance_state(program_id, member_id)
    if not state:
        return 0
    points = min(state["debt"], state["available"])
    if points <= 0:
        return 0
    posting = Posting(
        id=new_id("pst"), program_id=program_id, member_id=member_id, type=PostingType.REPAYMENT,
        debit=Account.MEMBER_AVAILABLE, credit=Account.MEMBER_DEBT, points=points, reference=reference,
        reason="debt repaid from new points", actor=actor, created_at=now)
    try:
        replay = store.post(program_id, member_id, ("repayment", reference,
                                                    request_fingerprint({"member_id": member_id, "ref": reference})),
                            {"points": points}, posting, now)
    except InsufficientPoints:  # spent or repaid meanwhile: the next credit repays
        return 0
    return 0 if replay is not None else points


# ------------------------------------------------------------------ the jobs


def _members(store: LedgerPort, kind: str, before: str, after: str | None, program_id: str | None
             ) -> list[tuple[str, str, str]]:
    """(due, program, member) from the due index, each member once (its earliest), optionally of one program."""
    seen: dict[tuple[str, str], str] = {}
    for when, pid, mid in store.due_members(kind, before, after, limit=10_000):
        if program_id is not None and pid != program_id:
            continue
        seen.setdefault((pid, mid), when)
    return [(when, pid, mid) for (pid, mid), when in seen.items()]


def _program(programs: ProgramLookup, program_id: str, cache: dict[str, Program | None]) -> Program | None:
    if program_id not in cache:
        try:
            cache[program_id] = programs(program_id)
        except ProgramNotFound:
            cache[program_id] = None
    return cache[program_id]


def run_activation(store: LedgerPort, programs: ProgramLookup, now: datetime, program_id: str | None = None,
                   seconds_left: Callable[[], float] | None = None) -> dict[str, Any]:
    """The activate-pending job: every member with pending points due at ``now``."""
    counts = {"members": 0, "activated_points": 0}
    cache: dict[str, Program | None] = {}
    for _, pid, mid in _members(store, "PENDING", f"{times.iso(now)}#~", None, program_id):
        program = _program(programs, pid, cache)
        if program is None:
            continue
        points = activate_member(store, program, mid, now)
        counts["members"] += 1 if points else 0
        counts["activated_points"] += points
        if seconds_left is not None and seconds_left() < 10:
            break
    return {"job": "activate-pending", "as_of": times.iso(now), "program_id": program_id, **counts}


def run_expiry(store: LedgerPort, programs: ProgramLookup, now: datetime, program_id: str | None = None,
               seconds_left: Callable[[], float] | None = None, notices: bool = True) -> dict[str, Any]:
    """The expire-points job of the day of ``now`` (UTC): expire what has passed, member by member (as many as
    ``seconds_left`` allows: a run that stops early leaves the rest in the index for the next), and with
    ``notices`` announce what expires within each program's ``expiry_notice_days``. Programs without an expiry
    setting expire nothing (their buckets stay)."""
    today, stamp = now.astimezone(UTC).date(), times.iso(now)
    counts = {"members": 0, "expired_points": 0, "announced": 0}
    expired: list[dict[str, Any]] = []
    cache: dict[str, Program | None] = {}
    for _, pid, mid in _members(store, "EXPIRY", today.isoformat(), None, program_id):
        program = _program(programs, pid, cache)
        if program is None or program.expiry_policy() is None:
            continue
        points = expire_member(store, program, mid, today, stamp)
        if points:
            counts["members"] += 1
            counts["expired_points"] += points
            expired.append({"program_id": pid, "member_id": mid, "points": points})
        if seconds_left is not None and seconds_left() < 10:
            break
    # announce each member's dates that are expiry_notice_days ahead (two days' grace for missed runs; once each)
    horizon = today + timedelta(days=NOTICE_MAX_DAYS)
    ahead = store.due_members("EXPIRY", f"{horizon.isoformat()}#~", today.isoformat(), limit=10_000) if notices else []
    for when, pid, mid in sorted(set(ahead)):
        if seconds_left is not None and seconds_left() < 10:
            break
        if program_id is not None and pid != program_id:
            continue
        program = _program(programs, pid, cache)
        on = date.fromisoformat(when)
        if program is None or program.expiry_policy() is None \
                or not program.expiry_notice_days - 2 <= (on - today).days <= program.expiry_notice_days:
            continue
        counts["announced"] += 1 if notify_expiring(store, program, mid, on, today, stamp) else 0
    return {"job": "expire-points", "as_of": today.isoformat(), "program_id": program_id, **counts,
            "expired": expired[:100]}
