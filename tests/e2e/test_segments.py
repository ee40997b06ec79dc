"""Segments and offers on the twin, through the gateway, the authorizer and the Segments and SegmentCounts
functions' roles: a custom segment, a rule targeted at it leading the offers of its member only, and GET
/v1/segments counting the program's members once the scheduled count ran (the twin runs it every few seconds)."""

from __future__ import annotations

import time

import pytest

from treue.client import ApiError

pytestmark = pytest.mark.e2e

SAVERS = {"id": "savers", "name": "Savers", "description": "At least 100 points available",
          "conditions": {"min_balance": 100}}


@pytest.fixture(scope="module")
def shop(twin):
    """A program of its own: its members are the only ones counted."""
    return twin.program_apis("Segments shop")


def test_a_custom_segment_targets_a_rule_in_offers_and_the_schedule_counts_it(shop):
    admin, partner, finance = shop["admin"], shop["partner"], shop["finance"]
    saver = partner.enroll_member({"email": "saver@example.com"})["id"]
    spender = partner.enroll_member({"email": "spender@example.com"})["id"]
    admin.adjust_member_points(saver, {"points": 500, "reason": "welcome gift", "reference": "gift-saver"})

    made = admin.create_segment(SAVERS)
    assert made.status == 201 and made["version"] == 1 and made.headers["ETag"] == '"1"'
    assert admin.create_segment(SAVERS).status == 200  # the same id and definition: as it stands
    with pytest.raises(ApiError) as taken:
        admin.create_segment({**SAVERS, "conditions": {"min_balance": 1}})
    assert taken.value.status == 409
    with pytest.raises(ApiError) as refused:
        partner.create_segment({**SAVERS, "id": "others"})
    assert refused.value.status == 403
    rule = admin.create_rule({"name": "Savers earn 40 more", "trigger": "purchase",
                              "conditions": {"segment": "savers"}, "effect": {"points": 40}},
                             idempotency_key="savers-40")["id"]

    segments = partner.get_member_segments(saver)
    assert [(s["id"], s["kind"]) for s in segments["segments"]] == [
        ("new", "builtin"), ("active", "builtin"), ("savers", "custom")]
    assert [s["id"] for s in partner.get_member_segments(spender)["segments"]] == ["new"]

    time.sleep(1)  # the rule is in force from its created_at (offers read the rules in force now)
    offers = partner.get_member_offers(saver)
    assert offers["available_points"] == 500 and "savers" in offers["segments"]
    assert offers["rules"][0]["rule_id"] == rule and offers["rules"][0]["targeted"] is True
    assert offers["rules"][0]["potential_points"] == 40
    assert all(c["min_points"] <= 500 or 500 * 10 >= c["min_points"] * 8 for c in offers["catalog"])
    assert rule not in [r["rule_id"] for r in partner.get_member_offers(spender)["rules"]]

    deadline = time.monotonic() + 90
    while True:
        listed = finance.list_segments()
        if listed["computed_at"] and listed["members"] == 2:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(1)
    counts = {s["id"]: s["members"] for s in listed["segments"]}
    assert counts == {"new": 2, "active": 1, "inactive": 0, "at_risk": 0, "premium": 0, "savers": 1}
    assert listed["tiers"] == [{"tier": None, "members": 2}]
    with pytest.raises(ApiError) as partner_reads:
        partner.list_segments()
    assert partner_reads.value.status == 403
    kpis = finance.get_kpis()
    assert kpis["members_by_tier"]["computed_at"] == listed["computed_at"]
    assert admin.retire_segment("savers", if_match=1)["status"] == "retired"
    assert [s["id"] for s in partner.get_member_segments(saver)["segments"]] == ["new", "active"]
