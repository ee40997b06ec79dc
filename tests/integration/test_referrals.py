"""Referrals, the welcome bonus and milestones on moto (issue 16 items 5, 7 and 8's welcome): referral codes and
links at enrollment, self-referral and unknown codes refused, the welcome bonus in the enrollment's transaction,
and the Progress function paying referrals and milestones from points.earned stream records exactly once."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import call, enroll, member_call, purchase
from tests.integration.test_accrual_by_rules import bought, seed, table_items
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core import ids
from treue.handlers import enrollment, progress
from treue.store.items import from_item, item_key
from treue.store.schema import member_pk

FRIENDS = {"name": "Friends", "trigger": "referral", "effect": {"referrer_points": 500, "referee_points": 250}}
WELCOME = {"name": "Welcome", "trigger": "enrollment", "effect": {"points": 100}}
SECOND_PURCHASE = {"name": "Second purchase", "trigger": "milestone", "effect": {"points": 75},
                   "conditions": {"milestone": {"metric": "purchases", "threshold": 2}}}
HUNDRED_POINTS = {"name": "100 points", "trigger": "milestone", "effect": {"points": 30},
                  "conditions": {"milestone": {"metric": "points", "threshold": 100}}}


def referrals(auth, member_id, query=None):
    return member_call(enrollment, "enrollment/get_referrals.json", auth, member_id, "/referrals", query=query)


def stream_records(program_id: str, types=("points.earned",)) -> list[dict]:
    """The program's event items as the table stream delivers them (INSERT, NewImage), oldest first."""
    events = [from_item(i) for i in table_items() if i.get("kind", {}).get("S") == "event"
              and i["program_id"]["S"] == program_id and i["type"]["S"] in types]
    events.sort(key=lambda e: e["gsi1sk"])
    template = load_event("progress/stream.json")["Records"][0]
    out = []
    for n, event in enumerate(events):
        record = copy.deepcopy(template)
        raw = next(i for i in table_items() if i["pk"]["S"] == event["pk"])
        record["dynamodb"]["Keys"] = {"pk": raw["pk"], "sk": raw["sk"]}
        record["dynamodb"]["NewImage"] = raw
        record["dynamodb"]["SequenceNumber"] = str(1000 + n)
        out.append(record)
    return out


def run_progress(records: list[dict]) -> dict:
    return progress.handler({"Records": records}, LambdaContext())


def set_purchases(program_id: str, member_id: str, count: int) -> None:
    """The accrual's purchase counter on the balance item, as accrual keeps it (set here, whatever it wrote)."""
    boto3.client("dynamodb").update_item(
        TableName=runtime.store().table, Key=item_key(member_pk(program_id, member_id), "BALANCE"),
        UpdateExpression="SET purchases = :n", ExpressionAttributeValues={":n": {"N": str(count)}})


def events_named(program_id: str, type_: str) -> list[dict]:
    return [from_item(i)["data"] for i in table_items() if i.get("kind", {}).get("S") == "event"
            and i["program_id"]["S"] == program_id and i["type"]["S"] == type_]


# ------------------------------------------------------------ enrollment: codes and links


def test_every_member_gets_a_referral_code_found_by_lookup_and_a_referred_member_is_linked(program):
    auth = program["auth"]["partner"]
    status, ada, _ = enroll(auth, {"email": "ada@example.com", "birth_date": "1990-05-17"})
    assert status == 201 and ada["birth_date"] == "1990-05-17"
    code = ada["referral_code"]
    assert len(code) == 8 and set(code) <= set(ids.REFERRAL_ALPHABET)
    spelled = f"{code[:4].lower()}-{code[4:]}"  # as a customer types it
    _, found, _ = call(enrollment, "enrollment/find_member.json", auth, query={"referral_code": spelled})
    assert [m["id"] for m in found["items"]] == [ada["id"]]
    status, bob, _ = enroll(auth, {"email": "bob@example.com", "referred_by": spelled})
    assert status == 201 and bob["referred_by"] == ada["id"] and bob["referral_code"] != code
    status, listed, _ = referrals(auth, ada["id"])
    assert status == 200
    assert listed["referral_code"] == code and listed["referred_by"] is None
    assert [(r["member_id"], r["status"]) for r in listed["items"]] == [(bob["id"], "pending")]
    _, bobs, _ = referrals(program["auth"]["finance"], bob["id"])
    assert bobs["referred_by"] == ada["id"] and bobs["items"] == []


def test_a_replayed_enrollment_returns_the_same_member_and_links_once(program):
    auth = program["auth"]["partner"]
    _, ada, _ = enroll(auth, {"email": "ada@example.com"})
    body = {"email": "bob@example.com", "referred_by": ada["referral_code"]}
    s1, first, _ = enroll(auth, body, headers={"Idempotency-Key": "enroll-bob"})
    s2, again, _ = enroll(auth, body, headers={"Idempotency-Key": "enroll-bob"})
    assert (s1, s2) == (201, 200) and again["id"] == first["id"] and again["referral_code"] == first["referral_code"]
    _, listed, _ = referrals(auth, ada["id"])
    assert [r["member_id"] for r in listed["items"]] == [first["id"]]


def test_referrals_are_listed_newest_first_a_page_at_a_time(program):
    auth = program["auth"]["partner"]
    _, ada, _ = enroll(auth, {"email": "ada@example.com"})
    referred = [enroll(auth, {"email": f"friend{i}@example.com", "referred_by": ada["referral_code"]})[1]["id"]
                for i in range(3)]
    status, first, _ = referrals(auth, ada["id"], {"limit": "2"})
    assert status == 200 and len(first["items"]) == 2 and first["next_cursor"]
    _, second, _ = referrals(auth, ada["id"], {"limit": "2", "cursor": first["next_cursor"]})
    assert second["next_cursor"] is None
    assert sorted(r["member_id"] for r in first["items"] + second["items"]) == sorted(referred)
    assert referrals(auth, ada["id"], {"cursor": "not-a-cursor"})[0] == 400
    assert referrals(auth, "mbr_01m8yaa0kb0yp17edjaea7ytkx")[0] == 404


@pytest.mark.parametrize(("referrer", "referee", "identifier"), [
    ({"email": "Ada@Example.com"}, {"email": "ada@example.COM"}, "email"),
    ({"phone": "+49 151 1234 5678"}, {"phone": "+4915112345678", "email": "x@example.com"}, "phone"),
    ({"card_number": "1234-5678-90"}, {"card_number": "1234 5678 90"}, "card_number"),
])
def test_self_referral_is_refused_with_the_reason(program, referrer, referee, identifier):
    auth = program["auth"]["partner"]
    _, ada, _ = enroll(auth, referrer)
    status, problem, raw = enroll(auth, {**referee, "referred_by": ada["referral_code"]})
    assert status == 422 and raw["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    assert problem["reason"] == "self_referral" and problem["identifier"] == identifier
    assert "cannot refer themselves" in problem["detail"]
    _, listed, _ = referrals(auth, ada["id"])
    assert listed["items"] == []


def test_an_unknown_or_malformed_referral_code_is_422(program):
    auth = program["auth"]["partner"]
    status, problem, _ = enroll(auth, {"email": "bob@example.com", "referred_by": "ABCDEFGH"})
    assert status == 422 and problem["reason"] == "unknown_referral_code"
    assert "no member of this program has the referral code ABCDEFGH" in problem["detail"]
    status, problem, _ = enroll(auth, {"email": "bob@example.com", "referred_by": "ABCDEFG0"})  # 0 is no symbol
    assert status == 422 and "referred_by" in problem["detail"]
    status, problem, _ = enroll(auth, {"email": "bob@example.com", "birth_date": "2999-01-01"})
    assert status == 422 and "birth_date" in problem["detail"]
    # nothing of the refused enrollments was written: the email is free
    assert enroll(auth, {"email": "bob@example.com"})[0] == 201


# ------------------------------------------------------------ the welcome bonus


def test_the_welcome_bonus_is_paid_in_the_enrollment_transaction(program):
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "welcome", WELCOME)
    status, ada, _ = enroll(auth, {"email": "ada@example.com"}, headers={"Idempotency-Key": "enroll-ada"})
    assert status == 201
    assert ada["welcome"]["points_earned"] == 100
    assert [(line["rule_id"], line["version"], line["points"]) for line in ada["welcome"]["breakdown"]] == [
        ("welcome", 1, 100)]
    again = enroll(auth, {"email": "ada@example.com"}, headers={"Idempotency-Key": "enroll-ada"})[1]
    assert again["welcome"] == ada["welcome"] and again["id"] == ada["id"]
    store = runtime.store()
    assert store.get_balance(pid, ada["id"]) == {"available": 100, "held": 0, "lifetime_earned": 100,
                                                  "lifetime_redeemed": 0}
    (entry,), _ = store.list_entries(pid, ada["id"], 10, None)
    assert entry["metadata"]["trigger"] == "enrollment" and entry["metadata"]["rule_id"] == "welcome"
    accounts = store.program_accounts(pid)
    assert accounts["program:bonus:welcome"] == -100 and sum(accounts.values()) == 0
    earned = events_named(pid, "points.earned")
    assert [(e["member_id"], e["points"]) for e in earned] == [(ada["id"], 100)]
    # a failing enrollment (its email taken) writes no bonus: no entry, the accounts unchanged
    assert enroll(auth, {"email": "ada@example.com", "phone": "+4915112345678"})[0] == 409
    assert store.program_accounts(pid) == accounts
    assert len(events_named(pid, "points.earned")) == 1
    audited = [i for i in table_items() if i["sk"]["S"] == "AUDIT" and "posting" in i.get("action", {}).get("S", "")]
    assert len(audited) == 1


def test_a_welcome_budget_pays_only_what_is_left(program):
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "welcome", {**WELCOME, "limits": {"budget_points": 150}})
    firsts = [enroll(auth, {"email": f"m{i}@example.com"})[1]["welcome"]["points_earned"] for i in range(3)]
    assert firsts == [100, 50, 0]
    accounts = runtime.store().program_accounts(pid)
    assert accounts["program:bonus:welcome"] == -150 and sum(accounts.values()) == 0


# ------------------------------------------------------------ the Progress function: referrals and milestones


def test_the_first_purchase_pays_both_sides_of_the_referral_once(program):
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "friends", FRIENDS)
    _, ada, _ = enroll(auth, {"email": "ada@example.com"})
    _, bob, _ = enroll(auth, {"email": "bob@example.com", "referred_by": ada["referral_code"]})
    assert purchase(auth, bob["id"], bought("t-1", [("books", 1000)]))[0] == 200
    records = stream_records(pid)
    assert run_progress(records) == {"batchItemFailures": []}
    assert run_progress(records) == {"batchItemFailures": []}  # the stream delivers again: nothing more
    store = runtime.store()
    assert store.get_balance(pid, bob["id"])["available"] == 10 + 250
    assert store.get_balance(pid, ada["id"])["available"] == 500
    _, listed, _ = referrals(auth, ada["id"])
    (item,) = listed["items"]
    assert item["status"] == "completed" and (item["referrer_points"], item["referee_points"]) == (500, 250)
    assert events_named(pid, "referral.completed") == [{
        "referrer_id": ada["id"], "referee_id": bob["id"], "referrer_points": 500, "referee_points": 250,
        "completed_at": item["completed_at"]}]
    # a second purchase completes nothing more; the referral's own points.earned events are not purchases
    assert purchase(auth, bob["id"], bought("t-2", [("books", 1000)]))[0] == 200
    assert run_progress(stream_records(pid)) == {"batchItemFailures": []}
    assert store.get_balance(pid, ada["id"])["available"] == 500
    assert store.get_balance(pid, bob["id"])["available"] == 20 + 250
    accounts = store.program_accounts(pid)
    assert accounts["program:bonus:friends"] == -750 and sum(accounts.values()) == 0


def test_twenty_concurrent_deliveries_pay_the_referral_and_milestones_once(program):
    serialize_moto_dynamodb()
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "friends", FRIENDS)
    seed(pid, "second", SECOND_PURCHASE)
    seed(pid, "hundred", HUNDRED_POINTS)
    _, ada, _ = enroll(auth, {"email": "ada@example.com"})
    _, bob, _ = enroll(auth, {"email": "bob@example.com", "referred_by": ada["referral_code"]})
    purchase(auth, bob["id"], bought("t-1", [("books", 5000)]))
    purchase(auth, bob["id"], bought("t-2", [("books", 5000)]))
    set_purchases(pid, bob["id"], 2)
    records = stream_records(pid)
    assert len(records) == 2
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda i: run_progress([records[i % 2]]), range(20)))
    assert all(a == {"batchItemFailures": []} for a in answers)
    store = runtime.store()
    assert store.get_balance(pid, bob["id"])["available"] == 100 + 250 + 75 + 30
    assert store.get_balance(pid, ada["id"])["available"] == 500
    reached = events_named(pid, "milestone.reached")
    assert sorted((e["rule_id"], e["metric"], e["threshold"], e["points"]) for e in reached) == [
        ("hundred", "points", 100, 30), ("second", "purchases", 2, 75)]
    assert len(events_named(pid, "referral.completed")) == 1
    accounts = store.program_accounts(pid)
    assert (accounts["program:bonus:second"], accounts["program:bonus:hundred"]) == (-75, -30)
    assert sum(accounts.values()) == 0


def test_a_milestone_pays_when_reached_and_once_ever(program):
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "second", SECOND_PURCHASE)
    _, ada, _ = enroll(auth, {"email": "ada@example.com"})
    purchase(auth, ada["id"], bought("t-1", [("books", 1000)]))
    set_purchases(pid, ada["id"], 1)
    run_progress(stream_records(pid))
    assert runtime.store().get_balance(pid, ada["id"])["available"] == 10  # 1 purchase of 2: not yet
    for n in (2, 3):
        purchase(auth, ada["id"], bought(f"t-{n}", [("books", 1000)]))
        set_purchases(pid, ada["id"], n)
        run_progress(stream_records(pid))
    assert runtime.store().get_balance(pid, ada["id"])["available"] == 30 + 75
    (entry,) = [e for e in runtime.store().list_entries(pid, ada["id"], 50, None)[0]
                if (e["metadata"] or {}).get("trigger") == "milestone"]
    assert entry["metadata"]["rule_id"] == "second" and entry["reference"] == f"{ada['id']}:second"


def test_a_member_without_a_referrer_and_awards_that_are_not_purchases_pay_nothing(program):
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "friends", FRIENDS)
    seed(pid, "welcome", WELCOME)
    seed(pid, "hundred", HUNDRED_POINTS)
    _, ada, _ = enroll(auth, {"email": "ada@example.com"})  # the welcome: 100 points, not a purchase
    assert run_progress(stream_records(pid)) == {"batchItemFailures": []}
    assert runtime.store().get_balance(pid, ada["id"])["available"] == 100
    purchase(auth, ada["id"], bought("t-1", [("books", 100)]))
    run_progress(stream_records(pid))
    assert runtime.store().get_balance(pid, ada["id"])["available"] == 101 + 30
    assert events_named(pid, "referral.completed") == []


def test_a_failing_record_is_reported_for_retry_by_its_sequence_number(program, monkeypatch):
    pid, auth = program["program_id"], program["auth"]["partner"]
    _, ada, _ = enroll(auth, {"email": "ada@example.com"})
    purchase(auth, ada["id"], bought("t-1", [("books", 1000)]))
    purchase(auth, ada["id"], bought("t-2", [("books", 1000)]))
    records = stream_records(pid)

    def broken(*args, **kwargs):
        raise RuntimeError("storage down")

    monkeypatch.setattr("treue.logic.progress.on_points_earned", broken)
    first = records[0]["dynamodb"]["SequenceNumber"]
    assert run_progress(records) == {"batchItemFailures": [{"itemIdentifier": first}]}  # retried from the first
