"""Birthdays and membership anniversaries (issue 16 items 5 and 8): the daily schedule that pays them.

A run (``run``; the Occasions function, on an EventBridge schedule) takes its day from the scheduled event's
``time``: the UTC calendar day (programs have no time zone of their own yet). For every program listed for it
(``treue.store.occasions``: a birthday rule or a ``membership_years`` milestone rule was created there), the days
due are those after the last day it completed, up to the run's day (``CATCH_UP_DAYS`` at most; the first run:
the run's day only). A program with nothing due costs nothing more than the one query that lists them all, so
the schedule may run every few minutes (the twin runs it every few seconds).

For each due day, the program's rules in force are read (at the run's time for its own day, at the last
instant of an earlier day caught up); with no birthday rule and no ``membership_years`` milestone rule in force
the day is done at once. Otherwise the program's members are walked in member id order, a page at a time, and
each page's place is saved, so a walk longer than one run continues where it stopped:

- **Birthday**: a member whose ``birth_date`` (YYYY-MM-DD, given at enrollment) falls on the day, month and
  day alike; someone born on 29 February has their birthday on 28 February in years without one. The day's
  birthday rules pay through ``treue.logic.awards`` (limits, budgets and the rules' own bonus accounts as for
  any award), once per member and year: idempotency ``("birthday", "<member id>:<year>")``.
- **Anniversary**: a member enrolled (``enrolled_at``, UTC) N ≥ 1 whole years before the day, on the same
  month and day (enrolled on 29 February: 28 February in years without one). Each ``membership_years``
  milestone rule whose ``threshold`` is N pays once per member: idempotency
  ``("anniversary", "<member id>:<rule id>:<N>")``.

Exactly once under reruns and concurrent runs: a rerun of the same day finds the awards' idempotency guards
and pays nothing again. A creation or new version of an occasion rule makes its program walk the run's day
again (the rules store rewrites the program's item): the program's first birthday rule, created at noon, still
pays that day's birthdays; a member's birthday already paid this year is not paid again by a rule added later
(one birthday award per member and year, by all the birthday rules in force together), an anniversary rule
added later pays its own threshold.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from treue.core import times
from treue.errors import ProgramNotFound, TreueError
from treue.logic.awards import award
from treue.logic.earning import MemberEvent

if TYPE_CHECKING:
    from treue.core.programs import Program
    from treue.logic.ports import LedgerPort, OccasionsPort, ProgramLookup, RulesAt, SegmentsOf
    from treue.logic.rules import Rule

CATCH_UP_DAYS = 7  # a schedule that did not run for longer pays the last week's occasions only
PAGE = 100  # members per page (one BatchGetItem of their profiles)
MARGIN_SECONDS = 15.0  # a run stops walking (its place saved) when less than this is left of its time
ACTOR = "schedule:occasions"


@dataclass(frozen=True)
class Deps:
    occasions: OccasionsPort
    ledger: LedgerPort
    program: ProgramLookup
    rules: RulesAt
    segments_of: SegmentsOf | None = None  # the members' segments, read when a rule in force names one


@dataclass
class Report:
    day: str
    programs: int = 0  # listed
    walked: list[str] = field(default_factory=list)  # programs whose members were walked (completely or not)
    birthdays: int = 0  # awards made (not replays)
    anniversaries: int = 0
    points: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # awards refused for good (the reason)
    deferred: bool = False  # out of time: the next run continues

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def on_day(month: int, day: int, year: int) -> date:
    """The day of ``month``/``day`` in ``year``: 29 February is 28 February in a year without one."""
    if (month, day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


def is_birthday(birth: date, day: date) -> bool:
    """Whether ``day`` is the birthday of someone born on ``birth`` (and they were born by then)."""
    return birth < day and on_day(birth.month, birth.day, day.year) == day


def membership_years(enrolled: date, day: date) -> int:
    """The whole years of membership ``day`` completes (enrolled on ``enrolled``), or 0 when ``day`` is not an
    anniversary of it."""
    years = day.year - enrolled.year
    if years < 1 or on_day(enrolled.month, enrolled.day, day.year) != day:
        return 0
    return years


def due_days(done: str | None, today: date) -> list[date]:
    """The days a program's walk covers: after ``done`` up to ``today`` (at most ``CATCH_UP_DAYS``); only
    ``today`` when it has never completed one; none when ``today`` is done."""
    if done is None:
        return [today]
    first = max(date.fromisoformat(done) + timedelta(days=1), today - timedelta(days=CATCH_UP_DAYS - 1))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def moment(day: date, at: datetime, clock: datetime | None = None) -> datetime:
    """When an occasion of ``day`` occurs for the rules: the run's time on its own day, an earlier day's last
    instant. The run's time is the later of the scheduled event's ``at`` and the ``clock`` when the run reads
    the rules (within the day): EventBridge stamps the event in whole seconds when it is scheduled, so a rule
    created in the moments before the run reads it (the marker that makes the day be walked again) is in
    force for the walk, not missed for the day."""
    last = datetime.combine(day, time(23, 59, 59, 999000), tzinfo=UTC)
    if day == at.astimezone(UTC).date():
        return min(max(at, clock), last) if clock is not None else at
    return last


def _milestone(rule: Rule) -> Any:
    """The rule's ``milestone`` condition (``{metric, threshold}``), None without one."""
    return getattr(rule.conditions, "milestone", None)


def is_anniversary_rule(rule: Rule) -> bool:
    milestone = _milestone(rule)
    return rule.trigger == "milestone" and milestone is not None and milestone.metric == "membership_years"


@dataclass(frozen=True)
class Day:
    """One day due: when its occasions occur, and the occasion rules in force then."""

    day: date
    occurred_at: datetime
    birthday: list[Rule]
    anniversary: list[Rule]


def _days(deps: Deps, program_id: str, days: list[date], at: datetime, clock: datetime | None = None
          ) -> list[Day]:
    out = []
    for day in days:
        occurred = moment(day, at, clock)
        rules = deps.rules(program_id, times.iso(occurred.astimezone(UTC), "milliseconds"))
        out.append(Day(day, occurred, [r for r in rules if r.trigger == "birthday"],
                       [r for r in rules if is_anniversary_rule(r)]))
    return [d for d in out if d.birthday or d.anniversary]


def run(deps: Deps, at: datetime, now: Callable[[], str], seconds_left: Callable[[], float]) -> Report:
    """Pay the birthdays and anniversaries due by ``at`` (the scheduled event's time) in every program listed."""
    today = at.astimezone(UTC).date()
    report = Report(day=today.isoformat())
    for state in deps.occasions.programs():
        report.programs += 1
        if not _walk_program(deps, state, today, at, now, seconds_left, report):
            report.deferred = True
            break
    return report


def _walk_program(deps: Deps, state: dict[str, Any], today: date, at: datetime, now: Callable[[], str],
                  seconds_left: Callable[[], float], report: Report) -> bool:
    """Walk one program's members for its due days; False when out of time (its place saved)."""
    program_id, changed = state["program_id"], state["changed_at"]
    days = due_days(state.get("done"), today)
    if not days:
        return True
    due = _days(deps, program_id, days, at, times.parse(now()))
    if not due:
        deps.occasions.save(program_id, changed, now(), done=today.isoformat())
        return True
    try:
        program = deps.program(program_id)
    except ProgramNotFound:
        deps.occasions.save(program_id, changed, now(), done=today.isoformat())
        return True
    report.walked.append(program_id)
    after = state.get("after") if state.get("walking") == today.isoformat() else None
    birthdays = any(d.birthday for d in due)
    while True:
        if seconds_left() < MARGIN_SECONDS:
            return False
        page, last = deps.occasions.members(program_id, after, PAGE)
        profiles = deps.occasions.profiles(program_id, [m["member_id"] for m in page]) if birthdays and page else {}
        for member in page:
            _pay(deps, program, member, profiles.get(member["member_id"], {}), due, now, report)
        if last is None:
            break
        after = last
        if not deps.occasions.save(program_id, changed, now(), walking=today.isoformat(), after=after):
            return True  # its rules changed meanwhile: the next run walks it again from the start
    deps.occasions.save(program_id, changed, now(), done=today.isoformat())
    return True


def _pay(deps: Deps, program: Program, member: dict[str, Any], profile: dict[str, Any], due: list[Day],
         now: Callable[[], str], report: Report) -> None:
    """The member's birthday and anniversary awards of the due days."""
    member_id = member["member_id"]
    birth = profile.get("birth_date")
    enrolled = times.parse(member["enrolled_at"]).astimezone(UTC).date() if member.get("enrolled_at") else None
    for day in due:
        if day.birthday and birth and is_birthday(date.fromisoformat(birth), day.day):
            event = MemberEvent(trigger="birthday", occurred_at=day.occurred_at)
            _award(deps, program, member_id, event, day.birthday, ("birthday", f"{member_id}:{day.day.year}"),
                   {"birthday": day.day.isoformat()}, now, report)
        years = membership_years(enrolled, day.day) if enrolled else 0
        for rule in day.anniversary if years else ():
            milestone = _milestone(rule)
            if milestone is None or milestone.threshold != years:
                continue
            event = MemberEvent(trigger="milestone", occurred_at=day.occurred_at)
            _award(deps, program, member_id, event, [rule], ("anniversary", f"{member_id}:{rule.id}:{years}"),
                   {"anniversary": years, "rule_id": rule.id, "day": day.day.isoformat()}, now, report)


def _award(deps: Deps, program: Program, member_id: str, event: MemberEvent, rules: list[Rule],
           idempotency: tuple[str, str], payload: dict[str, Any], now: Callable[[], str], report: Report) -> None:
    try:
        result = award(deps.ledger, program, member_id, event, rules, idempotency, payload, ACTOR, now(),
                       segments_of=deps.segments_of)
    except TreueError as err:
        if err.retryable:
            raise  # the run fails and its retry (or the next run) continues from the saved place
        report.failed.append({"member_id": member_id, "kind": idempotency[0], "error": err.slug,
                              "detail": err.detail})
        return
    if result["replayed"]:
        return
    if idempotency[0] == "birthday":
        report.birthdays += 1
    else:
        report.anniversaries += 1
    report.points += result["points_earned"]
