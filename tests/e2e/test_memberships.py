"""Paid membership on the twin (issue 17 item 5): an admin adds a monthly plan that grants gold (and 1.2× on
purchases) next to two tiers; a partner records a member's membership (the fee taken by its payment provider):
the member is gold at once, their purchase earns the tier's and the plan's multipliers, finance sees the fee as
revenue in the trial balance; the MembershipReview function, invoked as EventBridge would at the period's end,
ends the membership (membership.ended) and the member is back at the tier they qualified for; the same event
again ends nothing more."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_tiers import events
from treue.core import memberships, times

pytestmark = pytest.mark.e2e

TIERS = {"metric": "points", "period": {"type": "rolling", "months": 12},
         "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                    {"id": "gold", "name": "Gold", "threshold": 100_000, "benefits": {"earn_multiplier_bps": 15000}}]}
PLUS = {"id": "plus", "name": "Treue Plus", "price": {"value": 999, "currency": "EUR"}, "period_months": 1,
        "tier": "gold", "welcome_points": 500, "earn_multiplier_bps": 12000}


@pytest.fixture(scope="module")
def club(twin):
    return twin.new_program("Club shop")["api_keys"]


def review(twin, synthesized, at: datetime) -> dict:
    """Invoke the MembershipReview function with a scheduled event whose time is ``at``."""
    return twin.run_schedule(synthesized, "treue.handlers.membership_review.handler", at)


def test_a_paid_membership_grants_its_tier_and_ends_when_lapsed(twin, synthesized, club):
    admin, partner = club["admin"], club["partner"]
    status, _, settings = twin.request("PATCH", "/v1/program", {"tiers": TIERS, "membership_plans": [PLUS]},
                                       key=admin, headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200 and settings["membership_plans"] == [PLUS], settings
    status, _, member = twin.request("POST", "/v1/members", {"email": "club@example.com"}, key=partner)
    assert status == 201, member
    mid = member["id"]
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    body = {"plan_id": "plus", "payment_reference": "psp-e2e-1", "starts_at": times.iso(began)}
    status, _, started = twin.request("POST", f"/v1/members/{mid}/memberships", body, key=partner)
    assert status == 201 and started["status"] == "active" and started["welcome"]["points_earned"] == 500, started
    end = memberships.add_months(began, 1)
    assert times.parse(started["current_period_end"]) == end
    status, _, again = twin.request("POST", f"/v1/members/{mid}/memberships", body, key=partner)
    assert status == 200 and again["replayed"] is True and again["membership_id"] == started["membership_id"]
    status, _, view = twin.request("GET", f"/v1/members/{mid}/tier", key=partner)
    assert status == 200 and (view["tier"], view["qualified_tier"]) == ("gold", "bronze"), view
    purchase = {"transaction_id": "club-1", "amount": {"value": 10_000, "currency": "EUR"},
                "occurred_at": times.iso(datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2))}
    status, _, earned = twin.request("POST", f"/v1/members/{mid}/purchases", purchase, key=partner)
    assert status == 200, earned
    assert {line["rule_id"]: line["points"] for line in earned["breakdown"]} == {
        "base": 100, "tier:gold": 50, "membership:plus": 20}
    status, _, trial = twin.request("GET", "/v1/finance/trial-balance", key=club["finance"])
    assert status == 200 and trial["balanced"] is True, trial
    eur = next(u for u in trial["units"] if u["unit"] == "EUR")
    assert {a["account"]: a["balance"] for a in eur["accounts"]}["revenue:memberships"] == 999
    (started_event,) = events(twin, partner, "membership.started", mid, 1)
    assert started_event["data"]["membership_id"] == started["membership_id"]

    assert review(twin, synthesized, end - timedelta(seconds=1))["ended"] == 0  # not due yet
    assert review(twin, synthesized, end)["ended"] >= 1
    status, _, view = twin.request("GET", f"/v1/members/{mid}/tier", key=partner)
    assert status == 200 and (view["tier"], view["membership"]) == ("bronze", None), view
    status, _, listed = twin.request("GET", f"/v1/members/{mid}/memberships", key=partner)
    assert status == 200 and [(m["status"], m["ended_reason"]) for m in listed["items"]] == [("ended", "lapsed")]
    (ended,) = events(twin, partner, "membership.ended", mid, 1)
    assert (ended["data"]["tier_before"], ended["data"]["tier_after"]) == ("gold", "bronze")
    assert review(twin, synthesized, end)["ended"] == 0  # the same event again: nothing more
    time.sleep(3)  # anything the replay wrote would have settled by now
    assert len(events(twin, partner, "membership.ended", mid, 1)) == 1
