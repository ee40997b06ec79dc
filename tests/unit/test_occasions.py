"""Birthdays and membership anniversaries (treue.logic.occasions, issue 16 items 5 and 8): the calendar (29
February included), the days a run covers, and the walk on in-memory fakes (who is paid under which idempotency
reference, what a run with nothing due reads, a walk continued after a run ran out of time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from treue.core.programs import Program
from treue.errors import ProgramNotFound
from treue.logic import occasions
from treue.logic.occasions import due_days, is_birthday, membership_years, moment, on_day
from treue.logic.rules import Rule

PROGRAM = Program(id="p1", name="Shop", currency="EUR")
BIRTHDAY = Rule.model_validate({"id": "bday", "version": 1, "name": "Birthday", "trigger": "birthday",
                                "effect": {"points": 100}})


def anniversary(rule_id: str, years: int, metric: str = "membership_years") -> Rule:
    return Rule.model_validate({"id": rule_id, "version": 1, "name": f"{years} years", "trigger": "milestone",
                                "conditions": {"milestone": {"metric": metric, "threshold": years}},
                                "effect": {"points": 100 * years}})


@pytest.mark.parametrize(("birth", "day", "expected"), [
    ("1990-12-03", "2026-12-03", True),
    ("1990-12-03", "2026-12-04", False),
    ("1990-12-03", "2026-11-03", False),
    ("2000-02-29", "2024-02-29", True),  # a leap year: on the day itself
    ("2000-02-29", "2024-02-28", False),
    ("2000-02-29", "2026-02-28", True),  # no 29 February this year: the 28th
    ("2000-02-29", "2026-03-01", False),
    ("1999-02-28", "2024-02-28", True),  # born on the 28th: always the 28th
    ("1999-02-28", "2024-02-29", False),
    ("2026-12-03", "2026-12-03", False),  # the day of birth is no birthday
    ("2027-12-03", "2026-12-03", False),  # not born yet
])
def test_a_birthday_is_the_same_month_and_day_and_29_february_is_the_28th_in_other_years(birth, day, expected):
    assert is_birthday(date.fromisoformat(birth), date.fromisoformat(day)) is expected


@pytest.mark.parametrize(("enrolled", "day", "years"), [
    ("2025-12-03", "2026-12-03", 1),
    ("2021-12-03", "2026-12-03", 5),
    ("2025-12-03", "2026-12-02", 0),
    ("2026-12-03", "2026-12-03", 0),  # the enrollment day itself completes nothing
    ("2024-02-29", "2025-02-28", 1),
    ("2024-02-29", "2028-02-29", 4),
    ("2024-02-29", "2028-02-28", 0),
    ("2024-02-28", "2025-02-28", 1),
])
def test_membership_years_are_completed_on_the_anniversary_only(enrolled, day, years):
    assert membership_years(date.fromisoformat(enrolled), date.fromisoformat(day)) == years


def test_on_day_moves_29_february_only_in_years_without_one():
    assert on_day(2, 29, 2028) == date(2028, 2, 29) and on_day(2, 29, 2027) == date(2027, 2, 28)
    assert on_day(12, 31, 2027) == date(2027, 12, 31)


def test_the_days_due_are_those_after_the_last_done_up_to_today_a_week_at_most():
    today = date(2026, 12, 3)
    assert due_days(None, today) == [today]
    assert due_days("2026-12-03", today) == []
    assert due_days("2026-12-04", today) == []  # a run "in the past" (a test, a clock) does nothing
    assert due_days("2026-12-02", today) == [today]
    assert due_days("2026-11-30", today) == [date(2026, 12, 1), date(2026, 12, 2), today]
    assert due_days("2026-01-01", today) == [today - timedelta(days=n) for n in range(6, -1, -1)]


def test_an_occasion_occurs_at_the_runs_time_on_its_day_and_at_the_last_instant_of_a_day_caught_up():
    at = datetime(2026, 12, 3, 0, 5, tzinfo=UTC)
    assert moment(date(2026, 12, 3), at) == at
    assert moment(date(2026, 12, 2), at) == datetime(2026, 12, 2, 23, 59, 59, 999000, tzinfo=UTC)


# ------------------------------------------------------------------ the walk, on fakes


class FakeOccasions:
    def __init__(self, members: list[dict[str, Any]], profiles: dict[str, dict[str, Any]],
                 states: list[dict[str, Any]] | None = None) -> None:
        self.members_ = sorted(members, key=lambda m: m["member_id"])
        self.profiles_ = profiles
        self.states = {s["program_id"]: dict(s) for s in states or [{"program_id": "p1", "changed_at": "c1"}]}
        self.calls: list[str] = []

    def programs(self) -> list[dict[str, Any]]:
        self.calls.append("programs")
        return [dict(s) for s in self.states.values()]

    def save(self, program_id: str, changed_at: str, now: str, *, done: str | None = None,
             walking: str | None = None, after: str | None = None) -> bool:
        self.calls.append("save")
        state = self.states[program_id]
        if state["changed_at"] != changed_at:
            return False
        if done is not None:
            state.update(done=done)
            state.pop("walking", None)
            state.pop("after", None)
        else:
            state.update(walking=walking, after=after)
        return True

    def members(self, program_id: str, after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append("members")
        rest = [m for m in self.members_ if after is None or m["member_id"] > after]
        page = rest[:limit]
        return page, (page[-1]["member_id"] if len(rest) > limit else None)

    def profiles(self, program_id: str, member_ids: list[str]) -> dict[str, dict[str, Any]]:
        self.calls.append("profiles")
        return {m: self.profiles_[m] for m in member_ids if m in self.profiles_}


class Walk:
    """A run of occasions.run on fakes, recording the awards instead of making them."""

    def __init__(self, monkeypatch, store: FakeOccasions, rules: list[Rule]) -> None:
        self.store, self.rules, self.awards = store, rules, []
        self.rule_reads: list[str] = []
        self.paid: set[tuple[str, str]] = set()
        monkeypatch.setattr(occasions, "award", self._award)

    def _award(self, ledger, program, member_id, event, rules, idempotency, payload, actor, now, segments_of=None):
        replayed = idempotency in self.paid
        self.paid.add(idempotency)
        self.awards.append((member_id, event.trigger, [r.id for r in rules], idempotency, replayed))
        return {"points_earned": 0 if replayed else 100, "replayed": replayed}

    def _rules(self, program_id: str, at: str) -> list[Rule]:
        self.rule_reads.append(at)
        return self.rules

    def _program(self, program_id: str) -> Program:
        if program_id != "p1":
            raise ProgramNotFound(program_id)
        return PROGRAM

    def run(self, at: datetime, seconds: list[float] | None = None) -> occasions.Report:
        left = iter(seconds or [])
        deps = occasions.Deps(occasions=self.store, ledger=None, program=self._program,  # type: ignore[arg-type]
                              rules=self._rules)
        return occasions.run(deps, at, lambda: "2026-12-03T00:05:00.000Z", lambda: next(left, 300.0))


def member(mid: str, enrolled: str) -> dict[str, Any]:
    return {"member_id": mid, "enrolled_at": enrolled}


MEMBERS = [member("m1", "2025-12-03T10:00:00.000Z"), member("m2", "2024-12-03T23:59:00.000Z"),
           member("m3", "2025-12-04T00:00:00.000Z"), member("m4", "2025-06-01T08:00:00.000Z")]
PROFILES = {"m1": {"birth_date": "1990-12-03"}, "m2": {"birth_date": "1985-07-01"}, "m3": {},
            "m4": {"birth_date": "2000-12-03"}}
AT = datetime(2026, 12, 3, 0, 5, tzinfo=UTC)


def test_a_run_pays_the_days_birthdays_and_anniversaries_by_their_rules_once_per_member(monkeypatch):
    rules = [BIRTHDAY, anniversary("one", 1), anniversary("two", 2), anniversary("buy", 3, "purchases")]
    walk = Walk(monkeypatch, FakeOccasions(MEMBERS, PROFILES), rules)
    report = walk.run(AT)
    assert sorted(a[:4] for a in walk.awards) == [
        ("m1", "birthday", ["bday"], ("birthday", "m1:2026")),
        ("m1", "milestone", ["one"], ("anniversary", "m1:one:1")),
        ("m2", "milestone", ["two"], ("anniversary", "m2:two:2")),
        ("m4", "birthday", ["bday"], ("birthday", "m4:2026")),
    ]  # m3 enrolled a year ago tomorrow; "buy" is a purchases milestone (paid on purchases, not here)
    assert (report.birthdays, report.anniversaries, report.points, report.walked) == (2, 2, 400, ["p1"])
    assert walk.store.states["p1"]["done"] == "2026-12-03"
    # a second run of the day reads the list of programs and nothing else
    walk.store.calls.clear()
    walk.rule_reads.clear()
    again = walk.run(AT + timedelta(hours=5))
    assert walk.store.calls == ["programs"] and walk.rule_reads == [] and again.walked == []


def test_a_program_without_occasion_rules_in_force_is_done_without_reading_its_members(monkeypatch):
    walk = Walk(monkeypatch, FakeOccasions(MEMBERS, PROFILES), [anniversary("buy", 3, "purchases")])
    report = walk.run(AT)
    assert walk.awards == [] and report.walked == [] and "members" not in walk.store.calls
    assert walk.store.states["p1"]["done"] == "2026-12-03"


def test_anniversary_rules_alone_read_no_profiles(monkeypatch):
    walk = Walk(monkeypatch, FakeOccasions(MEMBERS, PROFILES), [anniversary("one", 1)])
    walk.run(AT)
    assert "profiles" not in walk.store.calls and [a[3] for a in walk.awards] == [("anniversary", "m1:one:1")]


def test_missed_days_are_caught_up_with_the_rules_of_their_last_instant(monkeypatch):
    store = FakeOccasions(MEMBERS, PROFILES, [{"program_id": "p1", "changed_at": "c1", "done": "2026-12-01"}])
    walk = Walk(monkeypatch, store, [BIRTHDAY])
    walk.run(datetime(2026, 12, 4, 6, 0, tzinfo=UTC))
    assert walk.rule_reads == ["2026-12-02T23:59:59.999Z", "2026-12-03T23:59:59.999Z", "2026-12-04T06:00:00.000Z"]
    assert sorted(a[3] for a in walk.awards) == [("birthday", "m1:2026"), ("birthday", "m4:2026")]


def test_a_walk_out_of_time_saves_its_place_and_the_next_run_continues_there(monkeypatch):
    many = [member(f"m{n:03d}", "2025-12-03T10:00:00.000Z") for n in range(250)]
    store = FakeOccasions(many, {})
    walk = Walk(monkeypatch, store, [anniversary("one", 1)])
    first = walk.run(AT, seconds=[300.0, 300.0, 1.0])  # time for two pages of 100
    assert first.deferred and first.anniversaries == 200
    assert store.states["p1"] == {"program_id": "p1", "changed_at": "c1", "walking": "2026-12-03", "after": "m199"}
    second = walk.run(AT + timedelta(hours=1))
    assert second.anniversaries == 50 and not second.deferred and store.states["p1"]["done"] == "2026-12-03"
    assert len(walk.awards) == 250 and not any(a[4] for a in walk.awards)  # nobody twice


def test_a_rule_changed_during_a_walk_makes_the_next_run_walk_again_and_replays_pay_nothing(monkeypatch):
    many = [member(f"m{n:03d}", "2025-12-03T10:00:00.000Z") for n in range(150)]
    store = FakeOccasions(many, {})
    walk = Walk(monkeypatch, store, [anniversary("one", 1)])
    original = store.save

    def rule_changed_meanwhile(*args, **kwargs):
        store.states["p1"] = {"program_id": "p1", "changed_at": "c2"}  # what the rules store's Put leaves
        store.save = original
        return original(*args, **kwargs)

    store.save = rule_changed_meanwhile
    walk.run(AT)
    assert "done" not in store.states["p1"]  # its progress was not recorded over the change
    report = walk.run(AT + timedelta(minutes=5))
    assert store.states["p1"]["done"] == "2026-12-03" and report.anniversaries == 50  # the rest; the others replayed
    assert len({a[3] for a in walk.awards}) == 150


def test_a_program_that_no_longer_exists_is_skipped(monkeypatch):
    store = FakeOccasions(MEMBERS, PROFILES, [{"program_id": "gone", "changed_at": "c1"},
                                              {"program_id": "p1", "changed_at": "c1"}])
    walk = Walk(monkeypatch, store, [BIRTHDAY])
    report = walk.run(AT)
    assert store.states["gone"]["done"] == "2026-12-03" and report.walked == ["p1"] and report.birthdays == 2


def test_the_run_takes_its_day_from_the_scheduled_events_time_and_the_clock_without_one():
    from treue.handlers.occasions import _time

    assert _time({"time": "2027-02-28T00:05:00Z"}) == datetime(2027, 2, 28, 0, 5, tzinfo=UTC)
    for event in ({}, {"time": "soon"}, {"time": "2027-02-28T00:05:00"}, {"time": 5}):
        assert abs(_time(event) - datetime.now(UTC)) < timedelta(seconds=5), event


def test_a_rule_created_after_the_scheduled_events_time_but_before_the_run_reads_the_rules_pays_that_day(
        monkeypatch):
    """EventBridge stamps a scheduled event in whole seconds: a birthday rule created at 00:05:00.400 is not in
    force at the event's 00:05:00, but it is when the run reads the rules at 00:05:01 (its creation listed the
    program to be walked again); read at the event's time, the day would have been done without paying."""
    walk = Walk(monkeypatch, FakeOccasions(MEMBERS, PROFILES), [BIRTHDAY])
    created = "2026-12-03T00:05:00.400Z"

    def rules(program_id: str, at: str) -> list[Rule]:
        walk.rule_reads.append(at)
        return [BIRTHDAY] if at >= created else []

    deps = occasions.Deps(occasions=walk.store, ledger=None, program=walk._program,  # type: ignore[arg-type]
                          rules=rules)
    occasions.run(deps, AT, lambda: "2026-12-03T00:05:01.000Z", lambda: 300.0)
    assert walk.rule_reads == ["2026-12-03T00:05:01.000Z"]
    assert sorted(a[3] for a in walk.awards) == [("birthday", "m1:2026"), ("birthday", "m4:2026")]
    assert occasions.moment(date(2026, 12, 3), AT, datetime(2026, 12, 4, 1, tzinfo=UTC)) == datetime(
        2026, 12, 3, 23, 59, 59, 999000, tzinfo=UTC)  # a late run's clock never moves the day's moment past it
