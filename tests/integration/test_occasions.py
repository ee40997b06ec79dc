"""Birthdays and membership anniversaries on moto (issue 16 items 5 and 8): the Occasions function, run by its
schedule as if on a given day, pays the birthday rules and the ``membership_years`` milestone rules in force,
from each rule's own account, exactly once under reruns and concurrent runs; the rules store lists a program
for it when such a rule is created."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import enroll
from tests.integration.test_accrual_by_rules import seed
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.handlers import occasions
from treue.store.items import item_key
from treue.store.schema import OCCASIONS_PK, member_pk

BIRTHDAY = {"name": "Happy birthday", "trigger": "birthday", "effect": {"points": 100}}
ONE_YEAR = {"name": "One year with us", "trigger": "milestone",
            "conditions": {"milestone": {"metric": "membership_years", "threshold": 1}}, "effect": {"points": 300}}
TWO_YEARS = {"name": "Two years with us", "trigger": "milestone",
             "conditions": {"milestone": {"metric": "membership_years", "threshold": 2}}, "effect": {"points": 600}}


def run_on(time: str) -> dict:
    """The Occasions function invoked by its schedule at ``time``."""
    event = copy.deepcopy(load_event("occasions/scheduled.json"))
    event["time"] = time
    return occasions.handler(event, LambdaContext())


def member(program, email: str, birth_date: str | None = None, enrolled_at: str | None = None) -> str:
    """A member enrolled through the API; its ``birth_date`` (written by enrollment) and ``enrolled_at`` set as
    a member enrolled on that day would have them."""
    mid = enroll(program["auth"]["partner"], {"email": email})[1]["id"]
    ddb, table = boto3.client("dynamodb"), runtime.store().table
    if birth_date:
        ddb.update_item(TableName=table, Key=item_key(member_pk(program["program_id"], mid), "MEMBER"),
                        UpdateExpression="SET birth_date = :b", ExpressionAttributeValues={":b": {"S": birth_date}})
    if enrolled_at:
        ddb.update_item(TableName=table, Key=item_key(member_pk(program["program_id"], mid), "BALANCE"),
                        UpdateExpression="SET enrolled_at = :e", ExpressionAttributeValues={":e": {"S": enrolled_at}})
    return mid


def available(program, mid: str) -> int:
    return runtime.store().get_balance(program["program_id"], mid)["available"]


def listed() -> dict[str, dict]:
    out = boto3.client("dynamodb").query(TableName=runtime.store().table, KeyConditionExpression="pk = :pk",
                                         ExpressionAttributeValues={":pk": {"S": OCCASIONS_PK}})
    return {i["sk"]["S"]: {k: next(iter(v.values())) for k, v in i.items()} for i in out["Items"]}


@pytest.fixture
def birthdays(program):
    seed(program["program_id"], "bday", BIRTHDAY)
    return program


def test_a_birthday_pays_once_over_two_runs_of_the_day(birthdays):
    program = birthdays
    pid = program["program_id"]
    ada = member(program, "ada@example.com", birth_date="1990-12-03")
    bob = member(program, "bob@example.com", birth_date="1985-07-01")
    cyd = member(program, "cyd@example.com")  # no birth date given
    first = run_on("2026-12-03T00:05:00Z")
    assert (first["day"], first["birthdays"], first["points"], first["walked"]) == ("2026-12-03", 1, 100, [pid])
    second = run_on("2026-12-03T01:05:00Z")
    assert second["walked"] == [] and second["birthdays"] == 0  # the day is done: nothing read, nothing paid
    assert (available(program, ada), available(program, bob), available(program, cyd)) == (100, 0, 0)
    accounts = runtime.store().program_accounts(pid)
    assert accounts["program:bonus:bday"] == -100 and sum(accounts.values()) == 0
    (entry,), _ = runtime.store().list_entries(pid, ada, 10, None)
    assert entry["reference"] == f"{ada}:2026" and entry["metadata"]["rule_id"] == "bday"
    assert entry["metadata"]["trigger"] == "birthday" and entry["actor"] == "schedule:occasions"
    # the next year pays again, once
    assert run_on("2027-12-03T00:05:00Z")["birthdays"] == 1 and run_on("2027-12-03T02:05:00Z")["birthdays"] == 0
    assert available(program, ada) == 200


def test_a_rerun_of_a_day_already_paid_pays_nothing_even_when_its_progress_was_lost(birthdays):
    program = birthdays
    ada = member(program, "ada@example.com", birth_date="1990-12-03")
    assert run_on("2026-12-03T00:05:00Z")["birthdays"] == 1
    seed(program["program_id"], "bday2", {**BIRTHDAY, "name": "Birthday cake"})  # lists the program anew
    assert "done" not in listed()[program["program_id"]]
    again = run_on("2026-12-03T12:00:00Z")  # walks the day again: the year's birthday award replays (bday2 pays
    # from the next birthday on: one birthday award per member and year, all the birthday rules in force together)
    assert again["walked"] == [program["program_id"]] and again["birthdays"] == 0
    assert available(program, ada) == 100


def test_a_birthday_on_29_february_is_paid_on_the_28th_in_other_years(birthdays):
    program = birthdays
    leap = member(program, "leap@example.com", birth_date="2000-02-29")
    assert run_on("2027-02-28T00:05:00Z")["birthdays"] == 1
    assert run_on("2027-03-01T00:05:00Z")["birthdays"] == 0
    assert run_on("2028-02-28T00:05:00Z")["birthdays"] == 0 and run_on("2028-02-29T00:05:00Z")["birthdays"] == 1
    assert available(program, leap) == 200


def test_an_anniversary_pays_the_rule_of_its_years_once(program):
    pid = program["program_id"]
    seed(pid, "one", ONE_YEAR)
    seed(pid, "two", TWO_YEARS)
    old = member(program, "old@example.com", enrolled_at="2025-12-03T18:30:00.000Z")
    older = member(program, "older@example.com", enrolled_at="2024-12-03T08:00:00.000Z")
    new = member(program, "new@example.com")
    report = run_on("2026-12-03T00:05:00Z")
    assert report["anniversaries"] == 2 and report["birthdays"] == 0
    assert (available(program, old), available(program, older), available(program, new)) == (300, 600, 0)
    assert run_on("2026-12-04T00:05:00Z")["anniversaries"] == 0  # the next day: nobody's anniversary
    accounts = runtime.store().program_accounts(pid)
    assert accounts["program:bonus:one"] == -300 and accounts["program:bonus:two"] == -600
    (entry,), _ = runtime.store().list_entries(pid, older, 10, None)
    assert entry["reference"] == f"{older}:two:2" and entry["metadata"]["trigger"] == "milestone"


def test_concurrent_runs_of_a_day_pay_each_birthday_once(birthdays):
    serialize_moto_dynamodb()
    program = birthdays
    people = [member(program, f"p{n}@example.com", birth_date="1990-12-03") for n in range(5)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(lambda _: run_on("2026-12-03T00:05:00Z"), range(4)))
    assert sum(r["birthdays"] for r in reports) == 5
    assert [available(program, p) for p in people] == [100] * 5


def test_a_birthday_rule_lists_its_program_and_other_rules_do_not(program, store):
    seed(program["program_id"], "review", {"name": "Review", "trigger": "activity", "effect": {"points": 5}})
    assert listed() == {}
    assert run_on("2026-12-03T00:05:00Z") == {"day": "2026-12-03", "programs": 0, "walked": [], "birthdays": 0,
                                              "anniversaries": 0, "points": 0, "failed": [], "deferred": False}
    seed(program["program_id"], "bday", BIRTHDAY)
    assert set(listed()) == {program["program_id"]}
    run_on("2026-12-03T00:05:00Z")
    assert listed()[program["program_id"]]["done"] == "2026-12-03"


def test_the_rules_api_lists_the_program_of_a_birthday_or_anniversary_rule_in_its_transaction(program):
    """Through the Rules function (its role allows the program's item: a Put in the rule's transaction)."""
    from tests.integration.test_rules_api import create

    status, rule, _ = create(program, BIRTHDAY, "bday-1")
    assert status == 201, rule
    assert listed()[program["program_id"]]["changed_at"] == rule["created_at"]
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    ada = member(program, "ada@example.com", birth_date=f"1992-{tomorrow:%m-%d}")  # 1992: a leap year
    assert run_on(f"{tomorrow}T09:00:00Z")["birthdays"] == 1  # a rule created now is in force tomorrow
    assert available(program, ada) == 100
