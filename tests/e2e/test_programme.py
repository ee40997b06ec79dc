"""Running a programme on the twin, the issue's whole scenario (issue 16, "Done when"): a program with two tiers and
a category rule; purchases upgrade a member and the multiplier applies to the next purchase, beside the category
bonus; an activity and a referral pay once under replays and 20 concurrent duplicates; the scheduled tier review
downgrades a member who did not requalify; the books stay at zero."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_referrals import available_becomes
from tests.e2e.test_tiers import review
from treue.core import tiers, times

pytestmark = pytest.mark.e2e

TIERS = {"metric": "points", "period": {"type": "rolling", "months": 2},
         "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                    {"id": "gold", "name": "Gold", "threshold": 1000, "benefits": {"earn_multiplier_bps": 15000}}]}
BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}
REVIEW = {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
          "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}
FRIENDS = {"name": "Friends", "trigger": "referral", "effect": {"referrer_points": 500, "referee_points": 250}}


@pytest.fixture(scope="module")
def shop(twin):
    keys = twin.new_program("Programme shop")["api_keys"]
    return {"keys": keys, **{scope: twin.api(key) for scope, key in keys.items()}}


def stamp(at: datetime) -> str:
    """``at`` with milliseconds: a rule is in force from its version's creation, stamped in milliseconds, so a
    purchase right after it must not be rounded down to the second before."""
    return times.iso(at.astimezone(UTC), "milliseconds")


def bought(txn: str, value: int, at: datetime, books: int = 0) -> dict:
    body = {"transaction_id": txn, "amount": {"value": value, "currency": "EUR"}, "occurred_at": stamp(at)}
    if books:
        body["lines"] = [{"sku": "BOOK-1", "category": "books", "quantity": 1,
                          "amount": {"value": books, "currency": "EUR"}}]
    return body


def points_of(answer) -> dict[str, int]:
    """A breakdown summed per rule id."""
    out: dict[str, int] = {}
    for line in answer["breakdown"]:
        out[line["rule_id"]] = out.get(line["rule_id"], 0) + line["points"]
    return out


def test_a_programme_with_tiers_a_category_rule_activities_and_referrals(twin, synthesized, shop):
    admin, partner, finance = shop["admin"], shop["partner"], shop["finance"]
    status, _, settings = twin.request("PATCH", "/v1/program", {"tiers": TIERS}, key=shop["keys"]["admin"],
                                       headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200, settings
    books = admin.create_rule(BOOKS, idempotency_key="books")["id"]
    reviews = admin.create_rule(REVIEW, idempotency_key="reviews")["id"]
    friends = admin.create_rule(FRIENDS, idempotency_key="friends")["id"]
    status, _, settings = twin.request("GET", "/v1/program", key=shop["keys"]["partner"])
    assert status == 200 and sorted(r["id"] for r in settings["rules"]) == sorted([books, reviews, friends])
    assert [level["id"] for level in settings["tiers"]["levels"]] == ["bronze", "gold"]
    time.sleep(0.01)  # the purchases below happen after the rules were made (a rule is in force from then)

    # purchases upgrade Ada at once; the next purchase earns gold's multiplier beside the books bonus
    ada = partner.enroll_member({"email": "ada@example.com"}, idempotency_key="ada")
    last_month = tiers.month_start(datetime.now(UTC), -1) + timedelta(hours=12)
    first = partner.accrue_purchase(ada["id"], bought("p-1", 60_000, last_month))
    assert first["points_earned"] == 600
    crossing = partner.accrue_purchase(ada["id"], bought("p-2", 40_000, last_month))
    assert points_of(crossing) == {"base": 400}  # earned at bronze: 1000 qualifying points, now gold
    assert partner.get_member_tier(ada["id"])["tier"] == "gold"
    gold = partner.accrue_purchase(ada["id"], bought("p-3", 10_000, datetime.now(UTC), books=4_000))
    assert points_of(gold) == {"base": 100, "tier:gold": 50, books: 40} and gold["points_earned"] == 190

    # an activity: 20 concurrent duplicates and a replay pay once
    review_body = {"type": "review", "reference": "ada-review-1", "occurred_at": stamp(datetime.now(UTC))}
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: partner.record_member_activity(ada["id"], review_body), range(20)))
    assert sorted(a["replayed"] for a in answers) == [False] + [True] * 19
    assert {a["points_earned"] for a in answers} == {50}
    assert partner.record_member_activity(ada["id"], review_body)["replayed"]

    # a referral: Bea enrolls with Ada's code; her first purchase sent 20 times at once and replayed pays once
    bea = partner.enroll_member({"email": "bea@example.com", "referred_by": ada["referral_code"]},
                                idempotency_key="bea")
    assert bea["referred_by"] == ada["id"]
    first_buy = bought("bea-1", 2_000, datetime.now(UTC))
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: partner.accrue_purchase(bea["id"], first_buy), range(20)))
    assert sorted(a["replayed"] for a in answers) == [False] + [True] * 19
    ada_before = 600 + 400 + 190 + 50
    assert available_becomes(partner, bea["id"], 20 + 250) == 270
    assert available_becomes(partner, ada["id"], ada_before + 500) == ada_before + 500
    assert partner.accrue_purchase(bea["id"], first_buy)["replayed"]
    time.sleep(5)  # anything paid twice would show by now
    assert partner.get_member_balance(bea["id"])["available"] == 270
    assert partner.get_member_balance(ada["id"])["available"] == ada_before + 500
    (referral,) = partner.list_member_referrals(ada["id"])["items"]
    assert (referral["status"], referral["referrer_points"], referral["referee_points"]) == ("completed", 500, 250)

    # the review at the period's end: Ada earned 1000 last month and 190 this month; the window that ends at
    # her until (two months from her upgrade's month) holds only this month and the next: she goes back down
    until = tiers.month_start(datetime.now(UTC), 2)
    assert partner.get_member_tier(ada["id"])["until"] == times.iso(until)
    assert review(twin, synthesized, until)["downgraded"] >= 1
    assert partner.get_member_tier(ada["id"])["tier"] == "bronze"
    assert review(twin, synthesized, until)["downgraded"] == 0

    trial = finance.get_trial_balance()
    units = next(unit for unit in trial["units"] if unit["unit"] == "points")
    balances = {a["account"]: a["balance"] for a in units["accounts"]}
    assert balances[f"program:bonus:{books}"] == -40 and balances[f"program:bonus:{reviews}"] == -50
    assert balances[f"program:bonus:{friends}"] == -750
    assert units["total"] == 0 and trial["balanced"]
