"""Earning rules that name a segment or a tier, through the Accrual function on moto (issue 16 items 2 and 9): a
purchase, its simulation and an activity pay a segment-targeted rule to a member in the segment and not to one
outside it; an activity rule for a tier pays the members of that tier only. The segments are read only when a
rule in force asks for them."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.integration.helpers import call, member_call, purchase
from tests.integration.test_segments import create, member, rule, seed
from tests.integration.test_segments import shop as shop_fixture  # noqa: F401 (the fixture "shop")
from treue import runtime
from treue.handlers import accrual
from treue.handlers import program as program_handler

READERS = {"id": "readers", "name": "Readers", "conditions": {"category_bought": {"category": "books", "days": 90}}}


def bought(txn: str, category: str, value: int) -> dict:
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"transaction_id": txn, "amount": {"value": value, "currency": "EUR"}, "occurred_at": at,
            "lines": [{"sku": f"{category}-1", "category": category, "quantity": 1,
                       "amount": {"value": value, "currency": "EUR"}}]}


def activity(shop, mid: str, reference: str) -> dict:
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    status, body, _ = member_call(accrual, "accrual/post_activity.json", shop["auth"]["partner"], mid, "/activities",
                                  body={"type": "review", "reference": reference, "occurred_at": at})
    assert status == 200, body
    return body


def test_a_rule_for_a_segment_pays_its_members_only_in_purchases_simulations_and_activities(shop, monkeypatch):
    assert create(shop, READERS)[0] == 201
    bonus = rule(shop, {"name": "Readers earn 40 more", "trigger": "purchase", "conditions": {"segment": "readers"},
                        "effect": {"points": 40}}, "readers-bonus")
    rule(shop, {"name": "Reviews by new members", "trigger": "activity",
                         "conditions": {"activity_type": "review", "segment": "new"}, "effect": {"points": 15}},
         "new-reviews")
    reader, other = member(shop, "reader"), member(shop, "other", enrolled_days=200, active_days=1)
    asked = []
    segments_of = runtime.segments_of

    def counted(program, member_id, now):
        asked.append(member_id)
        return segments_of(program, member_id, now)

    monkeypatch.setattr(runtime, "segments_of", counted)
    # the first books purchase makes the reader a reader only after it: it earns the base alone
    first = purchase(shop["auth"]["partner"], reader, bought("r-1", "books", 2000))[1]
    assert first["points_earned"] == 20 and asked == [reader]
    second = purchase(shop["auth"]["partner"], reader, bought("r-2", "toys", 1000))[1]
    assert second["points_earned"] == 10 + 40
    assert [line for line in second["breakdown"] if line["rule_id"] == bonus] == [
        {"rule_id": bonus, "version": 1, "points": 40, "reason": None, "line_index": None}]
    assert purchase(shop["auth"]["partner"], other, bought("o-1", "toys", 1000))[1]["points_earned"] == 10
    status, simulated, _ = call(accrual, "accrual/post_simulate.json", shop["auth"]["partner"],
                                body={**bought("r-3", "toys", 1000), "member_id": reader})
    assert status == 200 and simulated["points_earned"] == 50
    # the activity rule asks for "new": the reader enrolled today is new, the other member (200 days) is not
    assert activity(shop, reader, "rev-1")["points_earned"] == 15
    refused = activity(shop, other, "rev-2")
    assert refused["points_earned"] == 0 and refused["reason"].startswith("no earning rule in force matches")


def test_a_rule_for_a_tier_pays_that_tier_only_and_no_segment_is_read_without_a_segment_rule(shop, monkeypatch):
    rule(shop, {"name": "Gold reviews", "trigger": "activity",
                "conditions": {"activity_type": "review", "tier": "gold"}, "effect": {"points": 30}}, "gold-reviews")
    tiers = {"tiers": {"metric": "points", "period": {"type": "rolling", "months": 12},
                       "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                                  {"id": "gold", "name": "Gold", "threshold": 1000}]}}
    status, body, _ = call(program_handler, "program/patch_program.json", shop["auth"]["admin"], body=tiers)
    assert status == 200, body
    runtime.reset()
    gold, bronze = member(shop, "goldie"), member(shop, "bronzie")
    seed(shop, gold, "TIER", tier="gold", since="2026-06-01T00:00:00.000Z", version=1)
    monkeypatch.setattr(runtime, "segments_of", lambda *a: (_ for _ in ()).throw(AssertionError("read segments")))
    assert activity(shop, gold, "g-1")["points_earned"] == 30
    assert activity(shop, bronze, "b-1")["points_earned"] == 0
