"""Tiers on moto (issue 16 item 4): tiers set by PATCH /v1/program; every purchase's counters (BALANCE and its
month) in the posting's transaction, exactly once under replays; the purchase that crosses a threshold upgrades
the member in its own transaction (TIER, its audit record, tier.upgraded) and the next one earns the multiplier;
GET /v1/members/{id}/tier; 20 concurrent purchases crossing the threshold upgrade once; the scheduled review
(as the TierReview function, "now" from the event) downgrades a member who did not requalify, keeps one who
did, and changes nothing when run again."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import call, enroll, events_of, member_call, purchase
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core import tiers, times
from treue.handlers import accrual, tier_review
from treue.handlers import program as program_handler
from treue.logic import points
from treue.logic.models import Purchase
from treue.store.items import from_item, item_key
from treue.store.schema import member_pk
from treue.store.tiers import TierCounters

GOLD = {"metric": "points", "period": {"type": "rolling", "months": 12},
        "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                   {"id": "gold", "name": "Gold", "threshold": 1000, "benefits": {"earn_multiplier_bps": 15000}}]}
NOW = datetime.now(UTC)
THIS_MONTH = tiers.month_start(NOW)
LAST_MONTH = tiers.month_start(NOW, -1)


def patch_tiers(program, config) -> tuple[int, dict]:
    status, body, _ = call(program_handler, "program/patch_program.json", program["auth"]["admin"],
                           body={"tiers": config}, headers={"Content-Type": "application/merge-patch+json",
                                                             "If-Match": "*"})
    return status, body


def bought(txn: str, value: int, at: datetime = THIS_MONTH, category: str = "books") -> dict:
    return {"transaction_id": txn, "amount": {"value": value, "currency": "EUR"},
            "occurred_at": times.iso(at + timedelta(seconds=1)),
            "lines": [{"sku": "s", "category": category, "amount": {"value": value, "currency": "EUR"}}]}


def item(pid: str, mid: str, sk: str) -> dict | None:
    out = boto3.client("dynamodb").get_item(TableName=runtime.store().table, Key=item_key(member_pk(pid, mid), sk),
                                            ConsistentRead=True)
    if "Item" not in out:
        return None
    raw = dict(out["Item"])
    categories = raw.pop("categories", None)
    found = from_item(raw)
    if categories:
        found["categories"] = set(categories["SS"])
    return found


@pytest.fixture
def member(program):
    assert patch_tiers(program, GOLD)[0] == 200
    return enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]


def test_tiers_are_set_and_refused_by_patch_with_the_reason(program):
    status, body = patch_tiers(program, GOLD)
    assert status == 200 and body["version"] == 2
    assert body["tiers"]["levels"][0]["benefits"] == {"earn_multiplier_bps": 10000, "catalog_discount_bps": 0,
                                                      "free_delivery": False}
    bad = {**GOLD, "levels": [GOLD["levels"][1], GOLD["levels"][0]]}
    status, problem = patch_tiers(program, bad)
    assert status == 422 and problem["errors"] == [{"location": "body", "field": "tiers.levels[0].threshold",
                                                    "reason": "must be 0: every member is at least at the first "
                                                              "level"}], problem
    assert problem["detail"].startswith("tiers.levels[0].threshold: must be 0")
    status, problem = patch_tiers(program, {**GOLD, "levels": [GOLD["levels"][0], GOLD["levels"][0]]})
    assert status == 422 and "unique" in problem["detail"]
    status, problem = patch_tiers(program, {**GOLD, "period": {"type": "rolling", "months": 0}})
    assert status == 422, problem
    status, body = patch_tiers(program, None)
    assert status == 200 and body["tiers"] is None and body["version"] == 3
    status, problem, _ = member_call(accrual, "accrual/get_tier.json", program["auth"]["partner"],
                                     enroll(program["auth"]["partner"], {"email": "x@example.com"})[1]["id"], "/tier")
    assert status == 404 and problem["type"].endswith("tiers-not-configured"), problem


def test_counters_and_the_upgrade_land_with_the_posting_and_the_next_purchase_earns_the_multiplier(program, member):
    pid, auth = program["program_id"], program["auth"]["partner"]
    status, first, _ = purchase(auth, member, bought("t-1", 60_000))
    assert status == 200 and first["points_earned"] == 600
    balance = item(pid, member, "BALANCE")
    assert (balance["purchases"], balance["lifetime_spend"]) == (1, 60_000)
    month = item(pid, member, f"MONTH#{tiers.month_key(THIS_MONTH)}")
    assert (month["qualifying_points"], month["spend"], month["purchases"], month["categories"]) == (
        600, 60_000, 1, {"books"})
    assert item(pid, member, "TIER") is None  # still bronze: nothing written
    # the crossing purchase: earned at bronze, upgrades in its own transaction
    status, crossing, _ = purchase(auth, member, bought("t-2", 40_000, category="games"))
    assert status == 200 and crossing["points_earned"] == 400
    tier = item(pid, member, "TIER")
    until = times.iso(tiers.month_start(NOW, 12))
    assert (tier["tier"], tier["until"], tier["version"]) == ("gold", until, 1)
    upgraded = events_of(program, ["tier.upgraded"])
    assert [e["data"]["to"] for e in upgraded] == ["gold"] and upgraded[0]["data"]["value"] == 1000
    assert upgraded[0]["data"]["transaction_id"] == "t-2"
    # a replay of it adds nothing: no counter, no second event
    assert purchase(auth, member, bought("t-2", 40_000, category="games"))[1]["replayed"] is True
    assert item(pid, member, "BALANCE")["purchases"] == 2
    month = item(pid, member, f"MONTH#{tiers.month_key(THIS_MONTH)}")
    assert (month["qualifying_points"], month["purchases"], month["categories"]) == (1000, 2, {"books", "games"})
    assert len(events_of(program, ["tier.upgraded"])) == 1 and item(pid, member, "TIER")["version"] == 1
    # the example: a gold member's 100.00 EUR earns 150 points
    status, gold, _ = purchase(auth, member, bought("t-3", 10_000))
    assert status == 200 and gold["points_earned"] == 150
    assert {line["rule_id"]: line["points"] for line in gold["breakdown"]} == {"base": 100, "tier:gold": 50}
    # a purchase worth 0 points is still a purchase: counted, nothing posted
    status, nothing, _ = purchase(auth, member, bought("t-4", 50))
    assert status == 200 and nothing["points_earned"] == 0
    assert item(pid, member, "BALANCE")["purchases"] == 4
    status, view, _ = member_call(accrual, "accrual/get_tier.json", program["auth"]["finance"], member, "/tier")
    assert status == 200, view
    assert (view["tier"], view["until"], view["progress"]) == ("gold", until, {
        "metric": "points", "value": 1150, "next_tier": None, "needed": 0})
    assert view["retain"] == {"needed": 0, "by": until} and view["projected_tier"] == "gold"
    assert view["benefits"]["earn_multiplier_bps"] == 15000
    audit = boto3.client("dynamodb").scan(
        TableName=runtime.store().table, FilterExpression="sk = :a AND #action = :u",
        ExpressionAttributeNames={"#action": "action"},
        ExpressionAttributeValues={":a": {"S": "AUDIT"}, ":u": {"S": "tier.upgraded"}})["Items"]
    assert len(audit) == 1


def test_a_member_without_tier_item_is_at_the_lowest_level_since_enrollment(program, member):
    status, view, _ = member_call(accrual, "accrual/get_tier.json", program["auth"]["partner"], member, "/tier")
    assert status == 200 and view["tier"] == "bronze" and view["until"] is None
    assert view["progress"] == {"metric": "points", "value": 0, "next_tier": "gold", "needed": 1000}
    assert view["retain"] == {"needed": 0, "by": None} and view["since"]
    status, problem, _ = member_call(accrual, "accrual/get_tier.json", program["auth"]["partner"],
                                     "mbr_01nobody000000000000000000", "/tier")
    assert status == 404, problem


def test_twenty_concurrent_purchases_crossing_the_threshold_upgrade_once(program, member, monkeypatch):
    serialize_moto_dynamodb()
    pid = program["program_id"]
    store = runtime.store()
    prog = store.get_program(pid)
    # every purchase reads the months before any writes (the worst interleaving): all see 0 and decide "no
    # upgrade"; only the condition on the room left makes the one that crosses evaluate again and upgrade
    everyone, seen = threading.Barrier(20), threading.local()
    read = TierCounters.month_counters

    def month_counters(self, *args):
        found = read(self, *args)
        if not getattr(seen, "once", False):
            seen.once = True
            everyone.wait(timeout=30)
        return found

    monkeypatch.setattr(TierCounters, "month_counters", month_counters)

    def buy(i: int) -> dict:
        body = Purchase.model_validate(bought(f"c-{i}", 10_000))
        return points.accrue(store, prog, member, body, "test", runtime.now(), runtime.rules().in_force)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(buy, range(20)))
    earned = sorted(a["points_earned"] for a in answers)
    assert earned.count(100) >= 10 and 150 in earned, earned  # the ones before the upgrade earn at bronze
    assert [e["data"]["to"] for e in events_of(program, ["tier.upgraded"])] == ["gold"]
    assert item(pid, member, "TIER")["version"] == 1
    assert item(pid, member, "BALANCE")["purchases"] == 20
    month = item(pid, member, f"MONTH#{tiers.month_key(THIS_MONTH)}")
    assert month["purchases"] == 20 and month["qualifying_points"] == sum(earned)


def review(at: datetime) -> dict:
    event = load_event("tier_review/scheduled.json")
    event["time"] = times.iso(at)
    return tier_review.handler(event, LambdaContext())


def test_the_review_downgrades_who_did_not_requalify_keeps_who_did_and_runs_once(program):
    pid, auth = program["program_id"], program["auth"]["partner"]
    two_months = {**GOLD, "period": {"type": "rolling", "months": 2}}
    assert patch_tiers(program, two_months)[0] == 200
    lapsed = enroll(auth, {"email": "lapsed@example.com"})[1]["id"]
    loyal = enroll(auth, {"email": "loyal@example.com"})[1]["id"]
    # lapsed reaches gold with last month's purchase; loyal with this month's: both until the 1st in two months
    assert purchase(auth, lapsed, bought("l-1", 100_000, LAST_MONTH))[0] == 200
    assert purchase(auth, loyal, bought("y-1", 100_000, THIS_MONTH))[0] == 200
    until = tiers.month_start(NOW, 2)
    assert item(pid, lapsed, "TIER")["until"] == item(pid, loyal, "TIER")["until"] == times.iso(until)
    assert review(until - timedelta(seconds=1))["due"] == 0  # nothing due before until
    # at until the period judged is this month and the next: lapsed has 0 there, loyal 1000
    counts = review(until)
    assert {k: counts[k] for k in ("due", "kept", "downgraded")} == {"due": 2, "kept": 1, "downgraded": 1}
    down, kept = item(pid, lapsed, "TIER"), item(pid, loyal, "TIER")
    assert (down["tier"], down.get("until"), down["since"]) == ("bronze", None, times.iso(until))
    assert (kept["tier"], kept["until"]) == ("gold", times.iso(tiers.month_start(NOW, 4)))
    (event,) = events_of(program, ["tier.downgraded"])
    assert event["data"]["member_id"] == lapsed and (event["data"]["from"], event["data"]["to"]) == ("gold", "bronze")
    assert event["data"]["value"] == 0
    # the same scheduled event again (a replay), or a later run: nothing changes
    assert review(until)["due"] == 0 and review(until + timedelta(days=1))["due"] == 0
    assert len(events_of(program, ["tier.downgraded"])) == 1
    assert item(pid, lapsed, "TIER")["version"] == 2 and item(pid, loyal, "TIER")["version"] == 2
