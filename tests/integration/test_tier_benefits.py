"""Tier benefits in the catalog and orders on moto (issue 16 item 4): a gold member's order holds and captures the
points less their tier's catalog_discount_bps (the face value and the budget unchanged), a failed one releases
exactly those points, GET /v1/catalog?member_id= shows the member's prices with the price before, the offers
rank the catalog at the member's prices, and a program without tiers reads no TIER item."""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import buy, call, enroll, events_of, member_call, purchase
from tests.integration.test_orders import balance, order_body, place, wait
from treue import runtime
from treue.handlers import catalog, segments
from treue.handlers import program as program_handler
from treue.providers.simulated import set_fault
from treue.store.dynamodb import Store

TIERS = {"metric": "points", "period": {"type": "rolling", "months": 12},
         "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                    {"id": "gold", "name": "Gold", "threshold": 1000,
                     "benefits": {"catalog_discount_bps": 1000, "free_delivery": True}}]}
BOOKS = "nordlicht-books-eur"  # 1000, 2500 and 5000 cents: 1 point a cent in the shop


def tiered(shop) -> None:
    status, body, _ = call(program_handler, "program/patch_program.json", shop["auth"]["admin"],
                           body={"tiers": TIERS}, headers={"Content-Type": "application/merge-patch+json",
                                                           "If-Match": "*"})
    assert status == 200, body


def member(shop, points: int) -> str:
    """A member who earned ``points`` in one purchase (1 point a euro): 1000 or more make them gold."""
    status, body, _ = enroll(shop["auth"]["partner"], {"email": f"m{time.monotonic_ns()}@example.com"})
    assert status == 201, body
    status, earned, _ = purchase(shop["auth"]["partner"], body["id"], buy(f"t-{time.monotonic_ns()}", points * 100))
    assert status == 200 and earned["points_earned"] == points, earned
    return str(body["id"])


def books(shop, member_id: str | None) -> tuple[int, dict]:
    query = {"q": "nordlicht books", **({"member_id": member_id} if member_id else {})}
    sample = "catalog/list_catalog_for_member.json" if member_id else "catalog/list_catalog.json"
    status, page, _ = call(catalog, sample, shop["auth"]["partner"], query=query)
    return status, (page["items"][0] if status == 200 else page)


def test_a_gold_members_order_holds_and_captures_the_discounted_points(shop):
    tiered(shop)
    gold = member(shop, 5000)
    status, accepted = place(shop, order_body(gold, BOOKS, denomination=2500, quantity=2))
    assert status == 202 and accepted["points"] == 4500, accepted  # 2 × (2500 − 250)
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "COMPLETED" and order["points"] == 4500, order
    assert order["tier_discount"] == {"tier": "gold", "bps": 1000, "points_each_before": 2500,
                                      "points_before": 5000, "points_after": 4500}
    assert order["face_value"] == {"value": 2500, "currency": "EUR"}  # the money paid out is the item's
    assert balance(shop, gold) == {"available": 500, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                                   "lifetime_earned": 5000, "lifetime_redeemed": 4500}
    stored = runtime.orders().require(shop["program_id"], accepted["order_id"])
    assert (stored.points, stored.points_each, stored.funds["face"]) == (4500, 2250, 5000)
    again, replay = place(shop, order_body(gold, BOOKS, denomination=2500, quantity=2), key=stored.client_reference)
    assert again == 202 and replay["replayed"] and replay["points"] == 4500
    assert balance(shop, gold)["available"] == 500
    completed = [e["data"] for e in events_of(shop, ["order.completed"]) if e["data"]["order_id"] == stored.id]
    assert [e["points"] for e in completed] == [4500]


def test_a_failed_gold_order_releases_exactly_the_discounted_points(shop, store):
    tiered(shop)
    gold = member(shop, 3000)
    set_fault(store.ddb, store.table, shop["program_id"], "out_of_stock", order_reference="gold-fails")
    _, accepted = place(shop, order_body(gold, BOOKS, denomination=2500), key="gold-fails")
    assert accepted["points"] == 2250
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "FAILED" and order["tier_discount"]["points_after"] == 2250, order
    failed = [e["data"] for e in events_of(shop, ["order.failed"]) if e["data"]["order_id"] == order["order_id"]]
    assert [e["points_released"] for e in failed] == [2250]
    assert balance(shop, gold) == {"available": 3000, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                                   "lifetime_earned": 3000, "lifetime_redeemed": 0}


def test_the_catalog_for_a_member_shows_their_prices_and_the_price_before(shop):
    tiered(shop)
    gold, bronze = member(shop, 1500), member(shop, 10)
    status, item = books(shop, gold)
    assert status == 200, item
    assert item["denominations"] == [{"face_value": 1000, "points": 900, "points_before": 1000},
                                     {"face_value": 2500, "points": 2250, "points_before": 2500},
                                     {"face_value": 5000, "points": 4500, "points_before": 5000}]
    assert (item["min_points"], item["min_points_before"], item["tier_discount"]) == (
        900, 1000, {"tier": "gold", "bps": 1000})
    usd = "redwood-outfitters-usd"
    status, one, _ = call(catalog, "catalog/get_item.json", shop["auth"]["partner"], path=f"/v1/catalog/{usd}",
                          path_parameters={"item_id": usd}, query={"member_id": gold})
    assert status == 200 and one["open_value"]["min_points"] == 828 and one["open_value"]["min_points_before"] == 920
    for who in (bronze, None):  # the lowest level gives no discount; without member_id: as before
        status, item = books(shop, who)
        assert status == 200 and item["min_points"] == 1000 and "tier_discount" not in item
        assert item["denominations"][1] == {"face_value": 2500, "points": 2500}  # as without a member
    status, cheap = call(catalog, "catalog/list_catalog.json", shop["auth"]["partner"],
                         query={"q": "books", "max_points": "950", "member_id": gold})[:2]
    assert status == 200 and [i["id"] for i in cheap["items"]] == [BOOKS]  # max_points filters the member's prices
    for unknown in ("mbr_01jzzzzzzzzzzzzzzzzzzzzzzz", "nobody"):
        status, problem = books(shop, unknown)
        assert status == 404 and problem["type"].endswith("member-not-found"), problem


def test_the_offers_rank_the_catalog_at_the_members_discounted_prices(shop):
    tiered(shop)
    gold = member(shop, 2300)  # 2300 points: the 2500 card costs a gold member 2250
    status, body, _ = member_call(segments, "segments/member_offers.json", shop["auth"]["partner"], gold, "/offers",
                                  query={"limit": "50"})
    assert status == 200 and body["tier"] == "gold", body
    offered = next(c for c in body["catalog"] if c["item_id"] == BOOKS)
    assert offered["affordable"] and offered["min_points"] == 900 and offered["points_missing"] == 0
    assert offered["best"] == {"face_value": 2500, "points": 2250}
    outdoor = next(c for c in body["catalog"] if c["item_id"] == "bergwerk-outdoor-eur")  # any value 10–200 EUR
    assert outdoor["best"] == {"face_value": 2555, "points": 2300}  # 2555 − 255; 25.56 EUR would cost 2301


def test_a_program_without_tiers_reads_no_tier_item(shop, monkeypatch):
    reads: list[str] = []
    original = Store.tier_state
    monkeypatch.setattr(Store, "tier_state", lambda self, pid, mid: reads.append(mid) or original(self, pid, mid))
    someone = member(shop, 3000)
    status, item = books(shop, someone)
    assert status == 200 and item["min_points"] == 1000 and "tier_discount" not in item
    status, accepted = place(shop, order_body(someone, BOOKS, denomination=2500))
    assert status == 202 and accepted["points"] == 2500
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "COMPLETED" and "tier_discount" not in order
    assert reads == []
    tiered(shop)  # the same calls read it once tiers exist (and the functions' cached settings have expired)
    runtime._programs.clear()
    books(shop, someone)
    place(shop, order_body(someone, BOOKS, denomination=1000))
    assert reads == [someone, someone]


@pytest.mark.parametrize("bps", [0, 10_000])
def test_the_discount_at_its_bounds(shop, bps):
    tiered_at = {**TIERS, "levels": [TIERS["levels"][0], {**TIERS["levels"][1], "benefits": {
        "catalog_discount_bps": bps}}]}
    status, body, _ = call(program_handler, "program/patch_program.json", shop["auth"]["admin"],
                           body={"tiers": tiered_at}, headers={"Content-Type": "application/merge-patch+json",
                                                               "If-Match": "*"})
    assert status == 200, body
    gold = member(shop, 3000)
    status, accepted = place(shop, order_body(gold, BOOKS, denomination=2500))
    expected = 2500 if bps == 0 else 1  # nothing off; everything off but the 1 point a redemption holds
    assert status == 202 and accepted["points"] == expected
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "COMPLETED" and balance(shop, gold)["available"] == 3000 - expected
    assert order.get("tier_discount", {}).get("bps") == (bps or None)
