"""Awards of non-purchase events on moto (issue 16: activities, welcome, birthdays, referrals, milestones all pay
through ``treue.logic.awards``): the bonus from each rule's own account, exactly once per reference, caps under
concurrency, 0 points with the reason, and a different payload under a used reference refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import enroll
from tests.integration.test_accrual_by_rules import seed
from treue import runtime
from treue.core import ids
from treue.errors import IdempotencyConflict, MemberNotFound
from treue.logic import awards
from treue.logic.earning import MemberEvent

REVIEW = {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
          "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}
SURVEY = {"name": "Survey", "trigger": "activity", "conditions": {"activity_type": "survey"},
          "effect": {"points": 20}, "stackable": False, "priority": 5}
ANY_ACTIVITY = {"name": "Any activity", "trigger": "activity", "effect": {"points": 5}}
AT = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.fixture
def member(program):
    return enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]


def review(program_id: str, member_id: str, reference: str, kind: str = "review", at: datetime = AT) -> dict:
    store = runtime.store()
    prog = store.get_program(program_id)
    event = MemberEvent(trigger="activity", occurred_at=at, activity_type=kind)
    rules = runtime.rules().in_force(program_id, at.isoformat())
    return awards.award(store, prog, member_id, event, rules, ("activity", reference),
                        {"type": kind, "reference": reference, "occurred_at": at.isoformat()}, "partner:test",
                        runtime.now())


def test_an_activity_pays_its_rules_from_their_own_accounts_once_per_reference(program, member):
    pid = program["program_id"]
    seed(pid, "review", REVIEW)
    seed(pid, "any", ANY_ACTIVITY)
    first = review(pid, member, "rev-1")
    assert first["points_earned"] == 55 and not first["replayed"] and "reason" not in first
    assert sorted((line["rule_id"], line["points"]) for line in first["breakdown"]) == [("any", 5), ("review", 50)]
    again = review(pid, member, "rev-1")
    assert again["replayed"] and again["points_earned"] == 55 and again["breakdown"] == first["breakdown"]
    accounts = runtime.store().program_accounts(pid)
    assert accounts["program:bonus:review"] == -50 and accounts["program:bonus:any"] == -5
    assert sum(accounts.values()) == 0
    assert runtime.store().get_balance(pid, member)["available"] == 55
    entries, _ = runtime.store().list_entries(pid, member, 10, None)
    assert {(e["metadata"]["rule_id"], e["metadata"]["rule_version"], e["metadata"]["activity_type"])
            for e in entries} == {("review", 1, "review"), ("any", 1, "review")}


def test_a_capped_or_unmatched_activity_earns_zero_with_the_reason_and_replays_it(program, member):
    pid = program["program_id"]
    seed(pid, "review", REVIEW)
    assert review(pid, member, "rev-1")["points_earned"] == 50
    capped = review(pid, member, "rev-2")
    assert capped["points_earned"] == 0
    assert capped["reason"] == "review: per_member_per_day: paid 1 of 1 times today"
    assert review(pid, member, "rev-2")["reason"] == capped["reason"]
    unmatched = review(pid, member, "quiz-1", kind="quiz")
    assert unmatched["points_earned"] == 0
    assert unmatched["reason"] == "no earning rule in force matches this activity of type quiz"
    assert review(pid, member, "quiz-1", kind="quiz")["replayed"]
    assert runtime.store().get_balance(pid, member)["available"] == 50


def test_a_non_stackable_rule_stops_the_rules_after_it(program, member):
    pid = program["program_id"]
    seed(pid, "survey", SURVEY)
    seed(pid, "any", ANY_ACTIVITY)
    assert review(pid, member, "s-1", kind="survey")["points_earned"] == 20


def test_a_used_reference_with_another_payload_is_a_conflict_and_an_unknown_member_404(program, member):
    pid = program["program_id"]
    seed(pid, "review", REVIEW)
    review(pid, member, "rev-1")
    with pytest.raises(IdempotencyConflict):
        review(pid, member, "rev-1", kind="survey")
    with pytest.raises(MemberNotFound):
        review(pid, ids.new_id("mbr"), "rev-9")


def test_twenty_concurrent_activities_against_a_daily_cap_of_one_pay_once(program, member):
    serialize_moto_dynamodb()
    pid = program["program_id"]
    seed(pid, "review", REVIEW)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda i: review(pid, member, f"rev-{i}"), range(20)))
    assert sorted(a["points_earned"] for a in answers) == [0] * 19 + [50]
    accounts = runtime.store().program_accounts(pid)
    assert accounts["program:bonus:review"] == -50 and sum(accounts.values()) == 0
