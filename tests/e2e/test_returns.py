"""Returns on the twin (issue 17 item 3): a partial return of a purchase with a bonus reverses the right points,
its bonus share included, exactly once; a return after the points were spent leaves debt, never a negative
available; more than is left is a 409 that names what is left; the books stay at 0."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from treue.client import ApiError

pytestmark = pytest.mark.e2e

BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}


@pytest.fixture(scope="module")
def shop(twin):
    return twin.program_apis("Return shop")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def money(value: int) -> dict:
    return {"value": value, "currency": "EUR"}


def test_a_partial_return_reverses_its_points_with_the_bonus_share_and_a_later_one_leaves_debt(shop):
    admin, partner = shop["admin"], shop["partner"]
    rule = admin.create_rule(BOOKS, idempotency_key="books-double")
    member = partner.enroll_member({"email": "reader@example.com"}, idempotency_key="reader")
    time.sleep(0.01)  # occurred_at after the rule's created_at
    bought = partner.accrue_purchase(member["id"], {
        "transaction_id": "till-1", "amount": money(5000), "occurred_at": now(),
        "lines": [{"sku": "novel", "category": "books", "quantity": 2, "amount": money(3000)},
                  {"sku": "tea", "category": "grocery", "amount": money(2000)}]})
    assert bought["points_earned"] == 80  # 30 + 20 base, 30 for the books
    body = {"return_id": "ret-1", "transaction_id": "till-1", "occurred_at": now(),
            "lines": [{"sku": "novel", "quantity": 1, "amount": money(1500)}]}
    first = partner.record_member_return(member["id"], body)
    assert first["points_reversed"] == 30 and first["replayed"] is False  # half the novels: 15 base, 15 books
    assert {a["account"]: a["points"] for a in first["accounts"]} == {"program:issued": 15,
                                                                      f"program:bonus:{rule['id']}": 15}
    assert first["left"]["amount"] == money(3500) and first["balance"]["available"] == 50
    again = partner.record_member_return(member["id"], body)
    assert again["replayed"] is True and again["points_reversed"] == 30 and again["balance"]["available"] == 50
    with pytest.raises(ApiError) as too_much:
        partner.record_member_return(member["id"], {**body, "return_id": "ret-2",
                                                    "lines": [{"sku": "novel", "quantity": 2, "amount": money(3000)}]})
    assert too_much.value.status == 409 and too_much.value.problem["left"]["lines"][0] == {"sku": "novel",
                                                                                         "quantity": 1}
    # 45 of the 50 points spent; returning the rest (35.00 EUR: 50 points) leaves 45 owed
    admin.adjust_member_points(member["id"], {"points": -45, "reason": "spent at the counter",
                                              "reference": "spend-1"})
    rest = partner.record_member_return(member["id"], {"return_id": "ret-3", "transaction_id": "till-1",
                                                       "occurred_at": now(), "amount": money(3500)})
    assert rest["points_reversed"] == 50 and rest["taken_from"] == {"pending": 0, "available": 5, "debt": 45}
    assert rest["balance"]["available"] == 0 and rest["balance"]["debt"] == 45
    trial = shop["finance"].get_trial_balance()
    points = next(unit for unit in trial["units"] if unit["unit"] == "points")
    balances = {a["account"]: a["balance"] for a in points["accounts"]}
    assert balances["member:debt"] == -45 and points["total"] == 0
