"""Custom segments as admins write them (``/v1/segments``), a member's segments, and the program's member counts.

``POST /v1/segments`` creates a segment under the id the admin chose: the same id and definition again answer it
(200), another definition under a taken id is a 409. ``PUT`` makes a new version (the same definition writes
nothing; ``If-Match`` refuses a stale one); ``DELETE`` retires it (kept with its versions, never evaluated
again). Each change is one transaction with its audit record (``treue.store.segments``).

**Member counts** (``GET /v1/segments``): the scheduled ``SegmentCounts`` function (:func:`count_programs`) walks
each listed program's members (the balances index, a page at a time; one query of each member's months and tier)
and writes one snapshot per program: members per segment and per tier, ``computed_at``. A program is listed
once ``GET /v1/segments`` asked for it or a custom segment was written. A run is cheap when nothing changed: per
program it reads the snapshot and the newest event's position, and walks again only when

- the run is forced (``{"force": true}``, optionally with ``program_id``), or nothing was counted yet;
- the custom definitions changed since the last walk began;
- an event was written since the last walk began (a member enrolled, earned, redeemed, changed tier) and the
  snapshot is at least ``MIN_SECONDS`` old;
- or the snapshot is ``MAX_AGE_SECONDS`` old (segments move with time alone: ``new`` ends after 30 days).

A walk checkpoints after each page (the member to continue after and the counts so far) and the next run
continues it; a checkpoint is conditioned on the one before, so two overlapping runs never count a page twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from treue.core.ids import new_id
from treue.core.statuses import SegmentStatus
from treue.errors import (
    Contention,
    MemberNotFound,
    PreconditionFailed,
    SegmentNotFound,
    SegmentRetired,
    SegmentTaken,
    SegmentVersionNotFound,
)
from treue.logic import segments as seg

if TYPE_CHECKING:
    from treue.store.segments import SegmentStore

ATTEMPTS = 5
MIN_SECONDS = 60  # a change counts again after this long at the earliest
MAX_AGE_SECONDS = 3600  # and the counts are at most this old, changes or not
PAGE = 100  # members per page of the walk (one checkpoint each)
STATE = ("status", "created_at", "created_by", "updated_at", "updated_by", "retired_at", "retired_by")


def _stored(definition: seg.SegmentDefinition) -> dict[str, Any]:
    return definition.model_dump(mode="json", exclude_none=True)


def definition_of(item: dict[str, Any]) -> seg.SegmentDefinition:
    return seg.SegmentDefinition.model_validate({k: item[k] for k in seg.SegmentDefinition.model_fields
                                                 if k in item})


def view(item: dict[str, Any]) -> dict[str, Any]:
    """A custom segment as it stands, as the API answers it."""
    return {"id": item["id"], "version": item["version"], "kind": "custom",
            **definition_of(item).model_dump(mode="json"), **{k: item.get(k) for k in STATE},
            "updated_at": item.get("updated_at") or item["created_at"],
            "updated_by": item.get("updated_by") or item["created_by"]}


def version_view(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "version": item["version"], **definition_of(item).model_dump(mode="json"),
            "created_at": item["created_at"], "created_by": item["created_by"]}


def require(store: SegmentStore, program_id: str, segment_id: str) -> dict[str, Any]:
    found = store.current(program_id, segment_id)
    if found is None:
        raise SegmentNotFound(f"segment {segment_id[:64]} does not exist (built-in segments cannot be read or "
                              "changed here)")
    return found


def create(store: SegmentStore, program_id: str, body: seg.NewSegment, actor: str, now: str
           ) -> tuple[dict[str, Any], bool]:
    """Store a new custom segment → (its answer, whether it existed with this definition already)."""
    definition = body.definition()
    current = {**_stored(definition), "id": body.id, "version": 1, "status": SegmentStatus.ACTIVE, "created_at": now,
               "created_by": actor}
    if store.create(program_id, current):
        return view(current), False
    found = require(store, program_id, body.id)
    if definition_of(found) != definition:
        raise SegmentTaken(f"segment {body.id} exists with another definition (version {found['version']}): PUT "
                           f"/v1/segments/{body.id} to change it", segment_id=body.id)
    return view(found), True


def replace(store: SegmentStore, program_id: str, segment_id: str, body: seg.SegmentDefinition,
            expected: int | None, actor: str, now: str) -> tuple[dict[str, Any], bool]:
    for _ in range(ATTEMPTS):
        current = require(store, program_id, segment_id)
        _stale(expected, current)
        if current["status"] != SegmentStatus.ACTIVE:
            raise SegmentRetired(f"segment {segment_id} was retired at {current.get('retired_at')}",
                                 retired_at=current.get("retired_at"))
        if definition_of(current) == body:
            return view(current), False
        new = {**_stored(body), "id": segment_id, "version": current["version"] + 1, "status": SegmentStatus.ACTIVE,
               "created_at": current["created_at"], "created_by": current["created_by"], "updated_at": now,
               "updated_by": actor}
        try:
            if store.write_version(program_id, current["version"], new):
                return view(new), True
        except Contention:
            pass
    raise Contention("the segment is changing concurrently; retry")


def retire(store: SegmentStore, program_id: str, segment_id: str, expected: int | None, actor: str, now: str
           ) -> tuple[dict[str, Any], bool]:
    for _ in range(ATTEMPTS):
        current = require(store, program_id, segment_id)
        if current["status"] == SegmentStatus.RETIRED:
            return view(current), False
        _stale(expected, current)
        try:
            if store.retire(program_id, current, now, actor):
                return view({**current, "status": SegmentStatus.RETIRED, "retired_at": now, "retired_by": actor}), True
        except Contention:
            pass
    raise Contention("the segment is changing concurrently; retry")


def _stale(expected: int | None, current: dict[str, Any]) -> None:
    if expected is not None and current["version"] != expected:
        raise PreconditionFailed(f"If-Match names version {expected}, the current version is {current['version']}",
                                 current_version=current["version"])


def detail(store: SegmentStore, program_id: str, segment_id: str) -> dict[str, Any]:
    current, versions = store.history(program_id, segment_id)
    if current is None:
        raise SegmentNotFound(f"segment {segment_id[:64]} does not exist")
    return {**view(current), "versions": [{"version": v["version"], "created_at": v["created_at"],
                                           "created_by": v["created_by"]} for v in versions]}


def version(store: SegmentStore, program_id: str, segment_id: str, number: int) -> dict[str, Any]:
    found = store.version(program_id, segment_id, number)
    if found is None:
        current = require(store, program_id, segment_id)
        raise SegmentVersionNotFound(f"segment {segment_id} has versions 1 to {current['version']}")
    return version_view(found)


def customs(definitions: Iterable[dict[str, Any]]) -> list[seg.Custom]:
    """The active custom segments among stored definitions, ready to evaluate."""
    return [seg.Custom.of(d) for d in definitions if d.get("status") == SegmentStatus.ACTIVE]


# ------------------------------------------------------------------ one member


def facts(store: SegmentStore, program_id: str, member_id: str, now: datetime, lowest: str | None = None
          ) -> seg.Facts:
    """The member's facts: a GetItem (BALANCE) and a Query (MONTH items and TIER); MemberNotFound without one."""
    balance, months, tier = store.facts(program_id, member_id, seg.fact_months(now)[0])
    if balance is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    return seg.Facts.of(balance, tier, months, lowest)


def member_view(store: SegmentStore, program: Any, member_id: str, now: datetime
                ) -> tuple[seg.Facts, list[seg.Membership], list[seg.Custom]]:
    """A member's facts and segments now, and the program's active custom segments: three reads (the balance,
    the months and tier, the program's custom definitions); the program's settings come from the caller (cached
    by the functions)."""
    levels = seg.tier_levels(program)
    found = facts(store, program.id, member_id, now, levels[0] if levels else None)
    active = customs(store.definitions(program.id))
    return found, seg.member_segments(program, active, found, now), active


def member_segments(store: SegmentStore, program: Any, member_id: str, now: datetime
                    ) -> tuple[seg.Facts, list[seg.Membership]]:
    """A member's facts and segments now (:func:`member_view`, three reads): what accrual gives the earning
    engine as ``Member.segments`` (``treue.logic.segments.segment_ids``)."""
    found, memberships, _ = member_view(store, program, member_id, now)
    return found, memberships


# ------------------------------------------------------------------ the program's counts


def due(snapshot: dict[str, Any], latest_event: str | None, now: datetime, force: bool) -> str | None:
    """Why the program should be counted again now (None: it need not be)."""
    if force:
        return "forced"
    if not snapshot.get("computed_at"):
        return "never counted"
    started = seg.parse(snapshot.get("started_at") or snapshot["computed_at"])
    if (snapshot.get("definitions_changed_at") or "") > (snapshot.get("definitions_seen") or ""):
        return "the custom segments changed"
    age = now - seg.parse(snapshot["computed_at"])
    if age >= timedelta(seconds=MAX_AGE_SECONDS):
        return f"older than {MAX_AGE_SECONDS} s"
    if latest_event and latest_event > (snapshot.get("position") or "") and now - started >= timedelta(
            seconds=MIN_SECONDS):
        return "events since the last count"
    return None


def empty_counts() -> dict[str, Any]:
    return {"members": 0, "segments": {}, "tiers": {}, "untiered": 0}


def add(counts: dict[str, Any], memberships: Iterable[seg.Membership], tier: str | None) -> None:
    counts["members"] += 1
    for m in memberships:
        counts["segments"][m.id] = counts["segments"].get(m.id, 0) + 1
    if tier:
        counts["tiers"][tier] = counts["tiers"].get(tier, 0) + 1
    else:
        counts["untiered"] += 1


def count_program(store: SegmentStore, program: Any, snapshot: dict[str, Any], latest_event: str | None,
                  now: str, force: bool, more_time: Callable[[], bool]) -> dict[str, Any]:
    """Begin or continue the program's walk while ``more_time()``; what was done (for the log)."""
    pid = program.id
    if not snapshot.get("walk_id"):
        reason = due(snapshot, latest_event, seg.parse(now), force)
        if reason is None:
            return {"program_id": pid, "skipped": True}
        walk = {"walk_id": new_id("wlk"), "walk_started_at": now, "walk_position": latest_event or "",
                "walk_definitions": snapshot.get("definitions_changed_at") or "", "walk_counts": empty_counts()}
        if not store.begin_walk(pid, walk):
            return {"program_id": pid, "skipped": True, "reason": "another run began counting"}
        snapshot = {**snapshot, **walk}
    else:
        reason = "continued"
    walk_id, started = snapshot["walk_id"], snapshot["walk_started_at"]
    at = seg.parse(started)
    oldest = seg.fact_months(at)[0]
    counts, after = snapshot.get("walk_counts") or empty_counts(), snapshot.get("walk_after")
    ins = customs(store.definitions(pid))
    top, levels = seg.top_tier(program), seg.tier_levels(program)
    pages = members = 0
    while more_time():
        balances, following = store.balances_page(pid, after, PAGE)
        for balance in balances:
            months, tier = store.months_and_tier(pid, balance["member_id"], oldest)
            found = seg.Facts.of(balance, tier, months, levels[0] if levels else None)
            memberships = seg.builtin_segments(found, at, top)
            ids = [m.id for m in memberships]
            for custom in ins:
                if seg.holds(custom.conditions, found, at, ids) is not None:
                    memberships.append(seg.Membership(custom.id, custom.name, "custom", ""))
            add(counts, memberships, found.tier)
        pages += 1
        members += len(balances)
        if following is None:
            result = {"counts": counts, "computed_at": now, "started_at": started,
                      "position": snapshot.get("walk_position") or "",
                      "definitions_seen": snapshot.get("walk_definitions") or ""}
            done = store.finish_walk(pid, walk_id, after, result)
            return {"program_id": pid, "reason": reason, "pages": pages, "members": members, "finished": done}
        if not store.save_walk(pid, walk_id, after, following, counts):
            return {"program_id": pid, "reason": reason, "pages": pages, "lost": "another run moved the walk on"}
        after = following
    return {"program_id": pid, "reason": reason, "pages": pages, "members": members, "finished": False}


def count_programs(store: SegmentStore, program_of: Callable[[str], Any], now: Callable[[], str],
                   more_time: Callable[[], bool], force: bool = False, only: str | None = None
                   ) -> list[dict[str, Any]]:
    """One scheduled run over the listed programs (``only``: that one, listed first if it was not). A program that
    fails does not stop the others: the run goes on and raises :class:`CountFailed` naming them at its end (so the
    function's errors alarm and the schedule's retries see it; what was counted stays counted)."""
    if only is not None:
        store.request(only, now())
    done: list[dict[str, Any]] = []
    failed: dict[str, Exception] = {}
    for snapshot in store.snapshots():
        pid = snapshot["program_id"]
        if only is not None and pid != only:
            continue
        if not more_time():
            break
        try:
            done.append(count_program(store, program_of(pid), snapshot, store.latest_event(pid), now(), force,
                                      more_time))
        except Exception as err:  # noqa: BLE001 - the next programs are counted all the same; raised below
            failed[pid] = err
    if failed:
        raise CountFailed(failed, done)
    return done


class CountFailed(Exception):
    """Programs whose count failed in a run (``failed``: program id → error), and what the run did (``done``)."""

    def __init__(self, failed: dict[str, Exception], done: list[dict[str, Any]]) -> None:
        super().__init__("segment counts failed for " + ", ".join(
            f"{pid} ({type(err).__name__}: {err})" for pid, err in sorted(failed.items())))
        self.failed, self.done = failed, done


def snapshot_view(snapshot: dict[str, Any] | None, definitions: list[dict[str, Any]], program: Any
                  ) -> dict[str, Any]:
    """``GET /v1/segments``: every segment (built-in first, then the custom ones) with its member count from the
    snapshot, the members per tier, and when they were counted (null: not yet)."""
    snap = snapshot or {}
    counts = snap.get("counts") or {}
    counted = counts.get("segments", {})
    computed = snap.get("computed_at")
    rows: list[dict[str, Any]] = [
        {"id": b, "name": seg.BUILTIN_NAMES[b], "kind": "builtin", "status": SegmentStatus.ACTIVE,
         "members": counted.get(b, 0) if computed else None} for b in seg.BUILTIN]
    for d in sorted(definitions, key=lambda d: d["id"]):
        counts_it = computed and d["status"] == SegmentStatus.ACTIVE
        rows.append({**view(d), "members": counted.get(d["id"], 0) if counts_it else None})
    levels = seg.tier_levels(program)
    tiers = counts.get("tiers", {})
    tier_rows = [{"tier": t, "members": tiers.get(t, 0)} for t in [*levels, *sorted(set(tiers) - set(levels))]]
    if computed:
        tier_rows.append({"tier": None, "members": counts.get("untiered", 0)})
    return {"computed_at": computed, "started_at": snap.get("started_at"),
            "members": counts.get("members") if computed else None, "segments": rows,
            "tiers": tier_rows if computed else [], "counting": bool(snap.get("walk_id")),
            "requested_at": snap.get("requested_at")}


def tier_counts(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """Members per tier from the snapshot, for the KPIs: None before the first count."""
    if not snapshot or not snapshot.get("computed_at"):
        return None
    counts = snapshot.get("counts") or {}
    rows = [{"tier": t, "members": n} for t, n in sorted(counts.get("tiers", {}).items())]
    rows.append({"tier": None, "members": counts.get("untiered", 0)})
    return {"computed_at": snapshot["computed_at"], "tiers": rows}
