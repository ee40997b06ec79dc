"""Accrual by the earning rules on the twin (issue 16 item 3): an admin creates "Books count double" through the
rules API; a till simulates a purchase with a books line, the purchase then earns exactly that (double on the
books line, the bonus from the rule's own account) and the trial balance stays at zero."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.e2e

BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}


@pytest.fixture(scope="module")
def shop(twin):
    return twin.program_apis("Books shop")


def test_a_books_line_earns_double_and_simulate_said_so_before(shop):
    admin, partner = shop["admin"], shop["partner"]
    rule = admin.create_rule(BOOKS, idempotency_key="books-double")
    assert rule.status == 201
    member = partner.enroll_member({"email": "reader@example.com"}, idempotency_key="reader")
    purchase = {
        "transaction_id": "till-1-0001",
        "amount": {"value": 5000, "currency": "EUR"},
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "lines": [{"sku": "BOOK-1", "category": "books", "quantity": 1, "amount": {"value": 3000, "currency": "EUR"}},
                  {"sku": "TEA-1", "category": "grocery", "quantity": 1,
                   "amount": {"value": 2000, "currency": "EUR"}}],
    }
    simulated = partner.simulate_purchase({**purchase, "member_id": member["id"]})
    assert simulated["points_earned"] == 80
    assert partner.get_member_balance(member["id"])["available"] == 0  # simulate posted nothing

    posted = partner.accrue_purchase(member["id"], purchase)
    assert posted["points_earned"] == 80 and posted["breakdown"] == simulated["breakdown"]
    books = [line for line in posted["breakdown"] if line["rule_id"] == rule["id"]]
    assert books == [{"rule_id": rule["id"], "version": 1, "points": 30, "line_index": 0, "reason": None}]
    assert posted["balance"]["available"] == 80
    again = partner.accrue_purchase(member["id"], purchase)
    assert again["replayed"] and again["breakdown"] == posted["breakdown"]

    trial = shop["finance"].get_trial_balance()
    points = next(unit for unit in trial["units"] if unit["unit"] == "points")
    balances = {a["account"]: a["balance"] for a in points["accounts"]}
    assert balances["program:issued"] == -50 and balances[f"program:bonus:{rule['id']}"] == -30
    assert points["total"] == 0 and trial["balanced"]
