"""Tier benefits on the twin over HTTP (issue 16 item 4): a gold member's catalog is priced with their tier's
catalog discount (the price before it beside), their order holds and captures the discounted points while the
budget pays the card's face value, and a bronze member pays the list price."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from treue.core import times

pytestmark = pytest.mark.e2e

TIERS = {"metric": "points", "period": {"type": "calendar_year"},
         "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                    {"id": "gold", "name": "Gold", "threshold": 1000, "benefits": {"catalog_discount_bps": 1000}}]}


def test_a_gold_member_sees_and_pays_the_discounted_price(twin):
    keys = twin.new_program("Benefit shop")["api_keys"]
    admin, partner = keys["admin"], keys["partner"]
    status, _, settings = twin.request("PATCH", "/v1/program", {"tiers": TIERS}, key=admin,
                                       headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200, settings
    status, _, funded = twin.request("POST", "/v1/finance/fundings", {"amount": {"value": 100_000, "currency": "EUR"},
                                     "reference": "opening"}, key=admin, headers={"Idempotency-Key": "opening"})
    assert status == 201, funded
    members = {}
    for name, euros in (("gold", 3000), ("bronze", 30)):
        status, _, member = twin.request("POST", "/v1/members", {"email": f"{name}-{uuid.uuid4().hex}@example.com"},
                                         key=partner)
        assert status == 201, member
        bought = {"transaction_id": f"{name}-1", "amount": {"value": euros * 100, "currency": "EUR"},
                  "occurred_at": times.iso(datetime.now(UTC).replace(microsecond=0))}
        status, _, earned = twin.request("POST", f"/v1/members/{member['id']}/purchases", bought, key=partner)
        assert status == 200 and earned["points_earned"] == euros, earned
        members[name] = member["id"]
    gold = members["gold"]
    status, _, page = twin.request("GET", f"/v1/catalog?q=nordlicht+books&member_id={gold}", key=partner)
    assert status == 200, page
    (books,) = page["items"]
    assert books["tier_discount"] == {"tier": "gold", "bps": 1000}
    assert books["denominations"][1] == {"face_value": 2500, "points": 2250, "points_before": 2500}
    status, _, plain = twin.request("GET", f"/v1/catalog/nordlicht-books-eur?member_id={members['bronze']}",
                                    key=partner)
    assert status == 200 and plain["min_points"] == 1000 and "tier_discount" not in plain, plain
    order = {"member_id": gold, "item_id": "nordlicht-books-eur", "denomination": 2500,
             "delivery": {"method": "email"}}
    status, _, accepted = twin.request("POST", "/v1/orders", order, key=partner, headers={"Idempotency-Key": "gold-1"})
    assert status == 202 and accepted["points"] == 2250, accepted
    done = twin.settled_order(accepted["order_id"], key=partner)
    assert done["status"] == "COMPLETED", done
    assert done["tier_discount"] == {"tier": "gold", "bps": 1000, "points_each_before": 2500, "points_before": 2500,
                                     "points_after": 2250}
    status, _, balance = twin.request("GET", f"/v1/members/{gold}/balance", key=partner)
    assert balance == {"available": 750, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                       "lifetime_earned": 3000, "lifetime_redeemed": 2250}, balance
    status, _, budget = twin.request("GET", "/v1/finance/budget", key=admin)
    assert status == 200, budget
    (eur,) = [b for b in budget["budgets"] if b["currency"] == "EUR"]
    assert eur["paid_face_value"] == 2500 and eur["available"] == 100_000 - 2500 - eur["paid_fees"], eur
