"""Activities and birthdays on the twin (issue 16 items 6 and 8): an admin creates the issue's "Review bonus"
through the rules API; a review pays 50 once under replays and 20 concurrent duplicates, a second review the same
day pays 0 with the reason; the Occasions schedule (run every few seconds by the twin) pays a birthday rule to a
member born on this day, once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from treue.client import ApiError

pytestmark = pytest.mark.e2e

REVIEW = {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
          "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}
BIRTHDAY = {"name": "Happy birthday", "trigger": "birthday", "effect": {"points": 100}}


@pytest.fixture(scope="module")
def shop(twin):
    return twin.program_apis("Review shop")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_review_pays_once_under_replays_and_twenty_concurrent_duplicates(shop):
    admin, partner = shop["admin"], shop["partner"]
    rule = admin.create_rule(REVIEW, idempotency_key="review-bonus")
    assert rule.status == 201
    member = partner.enroll_member({"email": "critic@example.com"}, idempotency_key="critic")
    time.sleep(0.01)  # occurred_at after the rule's created_at
    review = {"type": "review", "reference": "app-review-1", "occurred_at": now()}
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: partner.record_member_activity(member["id"], review), range(20)))
    assert [a.status for a in answers] == [200] * 20
    assert [a["points_earned"] for a in answers] == [50] * 20
    assert sorted(a["replayed"] for a in answers) == [False] + [True] * 19
    assert answers[0]["breakdown"] == [{"rule_id": rule["id"], "version": 1, "points": 50, "line_index": None,
                                        "reason": None}]
    again = partner.record_member_activity(member["id"], review)
    assert again["replayed"] and again["points_earned"] == 50
    second = partner.record_member_activity(member["id"], {**review, "reference": "app-review-2"})
    assert second["points_earned"] == 0 and second["reason"] == (
        f"{rule['id']}: per_member_per_day: paid 1 of 1 times today")
    with pytest.raises(ApiError) as conflict:
        partner.record_member_activity(member["id"], {**review, "type": "survey"})
    assert conflict.value.status == 409
    assert partner.get_member_balance(member["id"])["available"] == 50
    trial = shop["finance"].get_trial_balance()
    points = next(unit for unit in trial["units"] if unit["unit"] == "points")
    balances = {a["account"]: a["balance"] for a in points["accounts"]}
    assert balances[f"program:bonus:{rule['id']}"] == -50 and points["total"] == 0


def test_the_occasions_schedule_pays_a_birthday_once(shop):
    admin, partner = shop["admin"], shop["partner"]
    today = datetime.now(UTC).date()
    born = f"1992-{today:%m-%d}"  # 1992 had a 29 February
    member = partner.enroll_member({"email": "party@example.com", "birth_date": born}, idempotency_key="party")
    # the rule's creation makes the schedule walk the program's members today (a member enrolled after the
    # day's walk has their birthday paid from the next year on)
    assert admin.create_rule(BIRTHDAY, idempotency_key="birthday").status == 201
    deadline = time.monotonic() + 120  # the twin runs its schedules one after another: a loaded machine is slow
    while partner.get_member_balance(member["id"])["available"] == 0 and time.monotonic() < deadline:
        time.sleep(1)
    assert partner.get_member_balance(member["id"])["available"] == 100
    time.sleep(12)  # two more runs of the schedule: the day is done, nothing more is paid
    assert partner.get_member_balance(member["id"])["available"] == 100
    (entry,) = partner.get_member_ledger(member["id"])["entries"]
    assert entry["reference"] == f"{member['id']}:{today.year}" and entry["actor"] == "schedule:occasions"
