"""Points + cash on the twin over HTTP (issue 17 item 4): a member short of points pays a 25 EUR Nordlicht Books
card with 1500 points and 10.00 EUR the till took; the order holds only the points and completes, and finance
sees the cash in the budget, the journal, the payouts report (JSON and CSV) and a clean reconciliation."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest

from treue.core import times

pytestmark = pytest.mark.e2e


def test_a_points_and_cash_gift_card_completes_and_finance_sees_the_cash(twin):
    keys = twin.new_program("Till shop")["api_keys"]
    admin, partner, finance = keys["admin"], keys["partner"], keys["finance"]
    status, _, funded = twin.request("POST", "/v1/finance/fundings", {"amount": {"value": 50_000, "currency": "EUR"},
                                     "reference": "opening"}, key=admin, headers={"Idempotency-Key": "opening"})
    assert status == 201, funded
    status, _, member = twin.request("POST", "/v1/members", {"email": f"till-{uuid.uuid4().hex}@example.com"},
                                     key=partner)
    assert status == 201, member
    bought = {"transaction_id": "till-1", "amount": {"value": 150_000, "currency": "EUR"},
              "occurred_at": times.iso(datetime.now(UTC).replace(microsecond=0))}
    status, _, earned = twin.request("POST", f"/v1/members/{member['id']}/purchases", bought, key=partner)
    assert status == 200 and earned["points_earned"] == 1500, earned
    status, _, item = twin.request("GET", "/v1/catalog/nordlicht-books-eur", key=partner)
    assert status == 200 and item["points_cash"] == {"min_points_bps": 4000}, item
    order = {"member_id": member["id"], "item_id": "nordlicht-books-eur", "denomination": 2500,
             "delivery": {"method": "email"},
             "payment": {"points": 1500, "cash": {"value": 1000, "currency": "EUR", "reference": "till-9-0042"}}}
    short = {**order, "payment": {**order["payment"], "cash": {**order["payment"]["cash"], "value": 999}}}
    status, _, problem = twin.request("POST", "/v1/orders", short, key=partner, headers={"Idempotency-Key": "till-0"})
    assert status == 422 and problem["errors"][0]["field"] == "payment.cash.value", problem
    status, _, accepted = twin.request("POST", "/v1/orders", order, key=partner, headers={"Idempotency-Key": "till-1"})
    assert status == 202 and accepted["points"] == 1500, accepted
    done = twin.settled_order(accepted["order_id"], key=partner)
    assert done["status"] == "COMPLETED", done
    assert done["payment"]["cash"] == {"value": 1000, "currency": "EUR", "reference": "till-9-0042"}
    status, _, balance = twin.request("GET", f"/v1/members/{member['id']}/balance", key=partner)
    assert (balance["available"], balance["held"], balance["lifetime_redeemed"]) == (0, 0, 1500), balance

    status, _, budget = twin.request("GET", "/v1/finance/budget", key=finance)
    assert status == 200, budget
    (eur,) = [b for b in budget["budgets"] if b["currency"] == "EUR"]
    assert (eur["funded"], eur["cash_received"], eur["paid_face_value"], eur["cash_owed_back"]) == (
        50_000, 1000, 2500, 0), eur
    assert eur["available"] == 50_000 + 1000 - 2500 - eur["paid_fees"]
    today = times.iso(datetime.now(UTC))[:10]
    status, _, journal = twin.request("GET", f"/v1/finance/journal?from={today}", key=finance)
    cash = [j for j in journal["items"] if j["order_id"] == accepted["order_id"] and j["type"] == "cash"]
    assert [(j["debit"], j["credit"], j["amount"], j["reference"]) for j in cash] == [
        ("cash:received", "budget:available", 1000, "till-9-0042")], journal
    status, _, raw = twin.request("GET", f"/v1/finance/payouts?from={today}", key=finance,
                                  headers={"Accept": "text/csv"})
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(raw if isinstance(raw, str) else raw.decode())))
    (row,) = [r for r in rows if r["order_id"] == accepted["order_id"]]
    assert (row["points"], row["face_value"], row["cash_value"], row["cash_reference"], row["cash_owed_back"]) == (
        "1500", "2500", "1000", "till-9-0042", "0"), row
    status, _, books = twin.request("GET", "/v1/finance/trial-balance", key=finance)
    assert status == 200 and books["balanced"], books
    status, _, check = twin.request("GET", f"/v1/finance/reconciliation?date={today}", key=finance)
    assert status == 200 and check["differences"] == [], check
