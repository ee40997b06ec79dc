"""Tiers on the twin (issue 16 item 4): an admin sets the issue's two tiers with PATCH /v1/program (rolling two
months here, so a review falls due soon); purchases upgrade a member at once (tier.upgraded in the event log),
the next purchase earns gold's multiplier (100.00 EUR → 150 points), GET /v1/members/{id}/tier says so; the
TierReview function, invoked as EventBridge would at the period's end, downgrades the member who did not
requalify (tier.downgraded), and the same event again changes nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from treue.core import tiers, times

pytestmark = pytest.mark.e2e

TIERS = {"metric": "points", "period": {"type": "rolling", "months": 2},
         "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                    {"id": "gold", "name": "Gold", "threshold": 1000, "benefits": {"earn_multiplier_bps": 15000}}]}
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def shop(twin):
    return twin.new_program("Tier shop")["api_keys"]


def bought(txn: str, value: int, at: datetime) -> dict:
    return {"transaction_id": txn, "amount": {"value": value, "currency": "EUR"},
            "occurred_at": times.iso(at.replace(microsecond=0))}


def review(twin, synthesized, at: datetime) -> dict:
    """Invoke the TierReview function with a scheduled event whose time is ``at``."""
    return twin.run_schedule(synthesized, "treue.handlers.tier_review.handler", at)


def events(twin, key: str, type_: str, member_id: str, expected: int) -> list[dict]:
    """The member's events of ``type_`` once ``expected`` are listed (the log lists what settled: 2 s)."""
    deadline = time.monotonic() + 20
    while True:
        status, _, body = twin.request("GET", f"/v1/events?type={type_}&limit=100", key=key)
        assert status == 200, body
        found = [e for e in body["items"] if e["data"].get("member_id") == member_id]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_purchases_upgrade_the_next_earns_the_multiplier_and_the_review_downgrades(twin, synthesized, shop):
    admin, partner = shop["admin"], shop["partner"]
    status, _, settings = twin.request("PATCH", "/v1/program", {"tiers": TIERS}, key=admin,
                                       headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200 and settings["tiers"]["levels"][1]["benefits"]["earn_multiplier_bps"] == 15000, settings
    status, _, member = twin.request("POST", "/v1/members", {"email": "climber@example.com"}, key=partner)
    assert status == 201, member
    mid = member["id"]
    last_month = tiers.month_start(NOW, -1) + timedelta(hours=12)
    status, _, first = twin.request("POST", f"/v1/members/{mid}/purchases", bought("tier-1", 60_000, last_month),
                                    key=partner)
    assert status == 200 and first["points_earned"] == 600, first
    status, _, crossing = twin.request("POST", f"/v1/members/{mid}/purchases", bought("tier-2", 40_000, last_month),
                                       key=partner)
    assert status == 200 and crossing["points_earned"] == 400, crossing  # earned at bronze, then gold
    status, _, gold = twin.request("POST", f"/v1/members/{mid}/purchases",
                                   bought("tier-3", 10_000, NOW - timedelta(minutes=1)), key=partner)
    assert status == 200 and gold["points_earned"] == 150, gold
    assert {line["rule_id"]: line["points"] for line in gold["breakdown"]} == {"base": 100, "tier:gold": 50}
    until = tiers.month_start(NOW, 2)
    status, _, view = twin.request("GET", f"/v1/members/{mid}/tier", key=shop["finance"])
    assert status == 200, view
    assert (view["tier"], view["until"]) == ("gold", times.iso(until))
    assert view["progress"] == {"metric": "points", "value": 1150, "next_tier": None, "needed": 0}
    assert view["retain"] == {"needed": 850, "by": times.iso(until)}  # this month and next: 150 of 1000
    (upgraded,) = events(twin, partner, "tier.upgraded", mid, 1)
    assert (upgraded["data"]["from"], upgraded["data"]["to"]) == ("bronze", "gold")

    assert review(twin, synthesized, until - timedelta(seconds=1))["downgraded"] == 0  # not due yet
    counts = review(twin, synthesized, until)
    assert counts["downgraded"] >= 1, counts
    status, _, view = twin.request("GET", f"/v1/members/{mid}/tier", key=partner)
    assert status == 200 and view["tier"] == "bronze" and view["until"] is None, view
    (downgraded,) = events(twin, partner, "tier.downgraded", mid, 1)
    assert (downgraded["data"]["from"], downgraded["data"]["to"], downgraded["data"]["value"]) == ("gold", "bronze",
                                                                                                   150)
    assert review(twin, synthesized, until)["downgraded"] == 0  # the same event again: nothing more
    time.sleep(3)  # anything the replay wrote would have settled by now
    assert len(events(twin, partner, "tier.downgraded", mid, 1)) == 1
