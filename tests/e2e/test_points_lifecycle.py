"""Points over time on the twin, the issue's scenario (issue 17, "Done when"): a program with 14 pending days and
rolling 12-month expiry; a purchase dated 20 days ago is available, one dated 2 days ago pending; one dated 13
months ago expires when the expiry job runs (``treue jobs run expire-points``), once; a partial return reverses
its line's points with their bonus share (from pending points: available untouched); a return after spending
creates debt that the next purchase repays; the books stay at zero. Points + cash and paid membership have their
own files (test_points_cash.py, test_memberships.py)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from treue.core import times
from treue.core.expiry import add_months

pytestmark = pytest.mark.e2e

BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}


def bought(txn: str, euros: int, at: datetime, lines: list | None = None) -> dict:
    body = {"transaction_id": txn, "amount": {"value": euros * 100, "currency": "EUR"},
            "occurred_at": times.iso(at.astimezone(UTC), "milliseconds")}
    if lines:
        body["lines"] = lines
    return body


def line(sku: str, euros: int, category: str | None = None) -> dict:
    out = {"sku": sku, "quantity": 1, "amount": {"value": euros * 100, "currency": "EUR"}}
    return {**out, "category": category} if category else out


def test_pending_expiry_returns_and_debt_on_the_twin(twin):
    keys = twin.new_program("Points over time")["api_keys"]
    admin, partner, finance = (twin.api(keys[scope]) for scope in ("admin", "partner", "finance"))
    settings = admin.patch_program({"pending_days": 14, "expiry": {"policy": "rolling", "months": 12}})
    assert (settings["pending_days"], settings["expiry"]) == (14, {"policy": "rolling", "months": 12})
    admin.create_funding({"amount": {"value": 10_000, "currency": "EUR"}, "reference": "opening"},
                         idempotency_key="opening")  # the gift card below is paid from the budget
    books = admin.create_rule(BOOKS, idempotency_key="books")["id"]
    time.sleep(0.01)  # purchases from now on are after the rule was made
    now = datetime.now(UTC)
    ada = partner.enroll_member({"email": "ada@example.com"}, idempotency_key="ada")["id"]

    # 20 days ago: available at once; 2 days ago: pending for 12 more days
    settled = partner.accrue_purchase(ada, bought("pos-20d", 3000, now - timedelta(days=20)))
    assert settled["balance"]["available"] == 3000 and settled["balance"]["pending"] == 0
    recent = partner.accrue_purchase(ada, bought("pos-2d", 100, now - timedelta(days=2)))
    assert recent["available_at"][:10] == (now + timedelta(days=12)).date().isoformat()
    balance = partner.get_member_balance(ada)
    assert (balance["available"], balance["pending"]) == (3000, 100)

    # 13 months ago: credited (reported late), its date passed a month ago: the expiry job takes it, once
    late = partner.accrue_purchase(ada, bought("pos-13m", 50, now - timedelta(days=396)))
    assert late["points_earned"] == 50
    ran = twin.treue("jobs", "run", "expire-points", "--program", twin_program(admin))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["job"] == "expire-points"
    assert twin.treue("jobs", "run", "expire-points", "--program", twin_program(admin),
                      "--as-of", "2999-01-01").returncode == 2  # not in the future
    balance = partner.get_member_balance(ada)
    assert (balance["available"], balance["pending"]) == (3000, 100)
    first_date = add_months((now - timedelta(days=20)).date(), 12).isoformat()
    assert balance["expiring"] == [{"points": 3000, "on": first_date}]
    expired = [e for e in partner.get_member_ledger(ada, limit=50)["entries"] if e["type"] == "expiry"]
    assert [e["points"] for e in expired] == [-50]  # once, whether the job or the twin's schedule ran first

    # a purchase with a books line (pending), then the books line comes back: its base and its bonus, from pending
    basket = partner.accrue_purchase(ada, bought("pos-now", 100, now, [line("BOOK", 40, "books"),
                                                                       line("MUG", 60)]))
    assert basket["points_earned"] == 140 and any(b["rule_id"] == books for b in basket["breakdown"])
    returned = partner.record_member_return(ada, {"return_id": "ret-book", "transaction_id": "pos-now",
                                                  "lines": [line("BOOK", 40)],
                                                  "occurred_at": times.iso(datetime.now(UTC))})
    assert returned["points_reversed"] == 80  # 40 base + 40 books bonus
    assert (returned["balance"]["available"], returned["balance"]["pending"]) == (3000, 160)

    # spend 2,500 on a gift card, then the 3,000-point purchase comes back: 500 from available, 2,500 owed
    order = partner.create_order({"member_id": ada, "item_id": "nordlicht-books-eur", "face_value": 2500,
                                  "quantity": 1, "delivery": {"method": "email"}}, idempotency_key="gift")
    deadline = time.monotonic() + 60
    while partner.get_order(order["order_id"])["status"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert partner.get_order(order["order_id"])["status"] == "COMPLETED"
    back = partner.record_member_return(ada, {"return_id": "ret-all", "transaction_id": "pos-20d",
                                              "amount": {"value": 300_000, "currency": "EUR"},
                                              "occurred_at": times.iso(datetime.now(UTC))})
    assert back["points_reversed"] == 3000
    assert (back["balance"]["available"], back["balance"]["debt"]) == (0, 2500)
    # the next purchase (reported from 19 days ago: available at once) pays the debt back first
    repaid = partner.accrue_purchase(ada, bought("pos-19d", 1000, now - timedelta(days=19)))
    assert (repaid["balance"]["available"], repaid["balance"]["debt"]) == (0, 1500)
    repaid = partner.accrue_purchase(ada, bought("pos-18d", 2000, now - timedelta(days=18)))
    assert (repaid["balance"]["available"], repaid["balance"]["debt"]) == (500, 0)

    books_balance = finance.get_trial_balance()
    assert books_balance["balanced"]
    points_unit = {a["account"]: a["balance"] for a in books_balance["units"][0]["accounts"]}
    assert points_unit["program:expired"] == 50 and points_unit["member:debt"] == 0
    assert points_unit["member:pending"] == 160 and points_unit["member:available"] == 500


def twin_program(admin) -> str:
    return admin.get_program()["id"]
