"""Activities on moto (issue 16 item 6): ``POST /v1/members/{id}/activities`` through the Accrual function and
activity messages on the accrual queue, paid by the activity rules in force at ``occurred_at`` from each rule's
own account, exactly once per reference (replays, a different body under a used reference, concurrent
duplicates), with a per-day cap that holds under concurrency and 0 points with the reason."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta

import pytest

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import call, enroll, events_of
from tests.integration.test_accrual_by_rules import seed
from tests.integration.test_accrual_queue import batch, dlq, register  # noqa: F401 (dlq: a fixture)
from tests.support import LambdaContext
from treue import runtime
from treue.handlers import accrual, accrual_queue

REVIEW = {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
          "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}
TODAY = datetime.now(UTC).date()
DAY_ONE = datetime.combine(TODAY - timedelta(days=2), time(10), tzinfo=UTC)
DAY_TWO = DAY_ONE + timedelta(days=1)


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def activity(reference: str, kind: str = "review", when: datetime = DAY_ONE) -> dict:
    return {"type": kind, "reference": reference, "occurred_at": at(when)}


def content_type(response: dict) -> str:
    return (response.get("headers") or {}).get("Content-Type") or response["multiValueHeaders"]["Content-Type"][0]


def record(auth, member_id: str, body) -> tuple[int, dict, dict]:
    return call(accrual, "accrual/post_activity.json", auth, path=f"/v1/members/{member_id}/activities",
                path_parameters={"member_id": member_id}, body=body)


@pytest.fixture
def member(program):
    return enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]


@pytest.fixture
def review_rule(program):
    seed(program["program_id"], "review", REVIEW)
    return "review"


def test_the_review_bonus_pays_50_once_a_day(program, member, review_rule):
    """The issue's "Review bonus": a first review earns 50, a second the same day 0 with the reason, a review
    the next day 50 again; each from the rule's own account, named in the posting."""
    auth = program["auth"]["partner"]
    status, first, _ = record(auth, member, activity("rev-1"))
    assert status == 200, first
    assert first["points_earned"] == 50 and first["replayed"] is False and first["reason"] is None
    assert first["breakdown"] == [{"rule_id": "review", "version": 1, "points": 50, "line_index": None,
                                   "reason": None}]
    assert first["balance"]["available"] == 50 and first["reference"] == "rev-1"

    status, second, _ = record(auth, member, activity("rev-2", when=DAY_ONE + timedelta(hours=5)))
    assert status == 200 and second["points_earned"] == 0
    assert second["reason"] == "review: per_member_per_day: paid 1 of 1 times today"
    assert second["balance"]["available"] == 50

    status, third, _ = record(auth, member, activity("rev-3", when=DAY_TWO))
    assert status == 200 and third["points_earned"] == 50 and third["balance"]["available"] == 100

    accounts = runtime.store().program_accounts(program["program_id"])
    assert accounts["program:bonus:review"] == -100 and sum(accounts.values()) == 0
    entries, _ = runtime.store().list_entries(program["program_id"], member, 10, None)
    assert sorted((e["reference"], e["metadata"]["rule_id"], e["metadata"]["activity_type"]) for e in entries) == [
        ("rev-1", "review", "review"), ("rev-3", "review", "review")]


def test_a_replay_answers_the_first_result_and_a_different_body_under_the_reference_is_409(program, member,
                                                                                           review_rule):
    auth = program["auth"]["partner"]
    _, first, _ = record(auth, member, activity("rev-1"))
    _, capped, _ = record(auth, member, activity("rev-2", when=DAY_ONE + timedelta(minutes=1)))
    status, again, _ = record(auth, member, activity("rev-1"))
    assert status == 200 and again["replayed"] is True
    assert {k: again[k] for k in ("points_earned", "breakdown", "reason")} == {
        k: first[k] for k in ("points_earned", "breakdown", "reason")}
    status, capped_again, _ = record(auth, member, activity("rev-2", when=DAY_ONE + timedelta(minutes=1)))
    assert capped_again["replayed"] and capped_again["reason"] == capped["reason"]  # 0 with the same reason

    for changed in (activity("rev-1", kind="survey"), activity("rev-1", when=DAY_TWO)):
        status, problem, response = record(auth, member, changed)
        assert status == 409 and problem["type"].endswith("/idempotency-conflict"), problem
        assert content_type(response) == "application/problem+json"
    other = enroll(auth, {"email": "bob@example.com"})[1]["id"]
    status, problem, _ = record(auth, other, activity("rev-1"))  # another member under the same reference
    assert status == 409, problem
    assert runtime.store().get_balance(program["program_id"], member)["available"] == 50
    assert runtime.store().get_balance(program["program_id"], other)["available"] == 0


def test_no_rule_in_force_for_the_type_earns_zero_with_the_reason(program, member, review_rule):
    status, body, _ = record(program["auth"]["admin"], member, activity("app-1", kind="app_download"))
    assert status == 200 and body["points_earned"] == 0 and body["breakdown"] == []
    assert body["reason"] == "no earning rule in force matches this activity of type app_download"


def test_an_activity_before_its_rule_was_created_earns_nothing(program, member):
    """Effective dating: the rules in force at occurred_at."""
    seed(program["program_id"], "review", REVIEW, created_at=at(DAY_TWO))
    _, before, _ = record(program["auth"]["partner"], member, activity("rev-1"))
    _, after, _ = record(program["auth"]["partner"], member, activity("rev-2", when=DAY_TWO + timedelta(hours=1)))
    assert (before["points_earned"], after["points_earned"]) == (0, 50)


def test_an_unknown_member_is_404_bad_input_422_and_a_finance_key_403(program, member, review_rule):
    status, problem, _ = record(program["auth"]["partner"], "mbr_01m8y68w1gnkhzxhstyybjmqck", activity("rev-1"))
    assert status == 404 and problem["type"].endswith("/member-not-found"), problem
    for bad, expected in ((activity("rev-1", when=datetime.now(UTC) + timedelta(hours=1)), 422),
                          (activity("rev-1", when=datetime.now(UTC) - timedelta(days=31)), 422),
                          ({"type": "review", "reference": "rev-1", "occurred_at": "2026-11-20T10:00:00"}, 422),
                          ({**activity("rev-1"), "points": 500}, 422), ("not json", 400)):
        status, problem, response = record(program["auth"]["partner"], member, bad)
        assert status == expected and content_type(response) == "application/problem+json", problem
    status, _, _ = record(program["auth"]["finance"], member, activity("rev-1"))
    assert status == 403
    assert runtime.store().get_balance(program["program_id"], member)["available"] == 0


def test_twenty_concurrent_duplicates_of_one_reference_pay_once(program, member, review_rule):
    serialize_moto_dynamodb()
    auth = program["auth"]["partner"]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: record(auth, member, activity("rev-1")), range(20)))
    assert [status for status, _, _ in answers] == [200] * 20, [b for _, b, _ in answers]
    assert [b["points_earned"] for _, b, _ in answers] == [50] * 20
    assert sorted(b["replayed"] for _, b, _ in answers) == [False] + [True] * 19
    assert runtime.store().get_balance(program["program_id"], member)["available"] == 50


def test_twenty_concurrent_reviews_against_the_daily_cap_pay_once(program, member, review_rule):
    serialize_moto_dynamodb()
    auth = program["auth"]["partner"]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda i: record(auth, member, activity(f"rev-{i}")), range(20)))
    assert [status for status, _, _ in answers] == [200] * 20, [b for _, b, _ in answers]
    assert sorted(b["points_earned"] for _, b, _ in answers) == [0] * 19 + [50]
    accounts = runtime.store().program_accounts(program["program_id"])
    assert accounts["program:bonus:review"] == -50 and sum(accounts.values()) == 0


def test_an_activity_on_the_accrual_queue_pays_once_across_the_queue_and_the_api(program, member, review_rule,
                                                                                  dlq):  # noqa: F811
    role = "AROA3XFRBF535PLBIFPI4"
    assert register(program, role)[0] == 201
    message = {"member": {"email": "ada@example.com"}, "activity": activity("shop-rev-1")}
    assert accrual_queue.handler(batch(message, message), LambdaContext()) == {"batchItemFailures": []}
    assert runtime.store().get_balance(program["program_id"], member)["available"] == 50
    status, body, _ = record(program["auth"]["partner"], member, activity("shop-rev-1"))
    assert status == 200 and body["replayed"] is True and body["points_earned"] == 50
    # a malformed activity is dead-lettered with the activity model's reason; a purchase still reads as one
    bad = {"member": {"email": "ada@example.com"}, "activity": {**activity("shop-rev-2"), "type": ""}}
    assert accrual_queue.handler(batch(bad), LambdaContext()) == {"batchItemFailures": []}
    sqs, url = dlq
    (dead,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    reason = dead["MessageAttributes"]["treue-error-reason"]["StringValue"]
    assert dead["MessageAttributes"]["treue-error-type"]["StringValue"] == "malformed-message"
    assert reason.startswith("activity.type:"), reason


def test_each_activity_writes_one_activity_recorded_event_paid_or_not_and_none_on_a_replay(program, member,
                                                                                            review_rule):
    auth = program["auth"]["partner"]
    record(auth, member, activity("rev-1"))
    record(auth, member, activity("rev-1"))  # a replay
    record(auth, member, activity("rev-2", when=DAY_ONE + timedelta(minutes=1)))
    found = [e["data"] for e in events_of(program, ["activity.recorded"])]
    assert sorted(found, key=lambda d: d["reference"]) == [
        {"member_id": member, "type": "review", "reference": "rev-1", "occurred_at": DAY_ONE.isoformat(),
         "points_earned": 50, "reason": None},
        {"member_id": member, "type": "review", "reference": "rev-2",
         "occurred_at": (DAY_ONE + timedelta(minutes=1)).isoformat(), "points_earned": 0,
         "reason": "review: per_member_per_day: paid 1 of 1 times today"},
    ]
    assert len(events_of(program, ["points.earned"])) == 1  # the paid one earned points as well
