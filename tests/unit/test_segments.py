"""Segments (treue.logic.segments) and offers (treue.logic.offers): pure, no AWS. Each built-in segment at its
boundaries, custom conditions, the snapshot's due decision and the offers' ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from treue.core.programs import Program
from treue.logic import offers, segment_admin
from treue.logic.catalog import parse_item
from treue.logic.earning import RuleCounters
from treue.logic.rules import Rule
from treue.logic.segments import (
    Custom,
    Facts,
    Month,
    NewSegment,
    SegmentConditions,
    builtin_segments,
    fact_months,
    member_segments,
    months_back,
    stamp,
    targeted_items,
    top_tier,
    window,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TIERED = SimpleNamespace(tiers={"metric": "points", "levels": [{"id": "bronze", "threshold": 0},
                                                               {"id": "gold", "threshold": 1000}]})
PLAIN = SimpleNamespace(tiers=None)


def ago(**delta: float) -> str:
    return stamp(NOW - timedelta(**delta))


def ids(facts: Facts, program: object = PLAIN, customs: tuple[Custom, ...] = ()) -> list[str]:
    return [m.id for m in member_segments(program, list(customs), facts, NOW)]


# ------------------------------------------------------------------ new, active, inactive


def test_new_is_enrolled_less_than_30_days_ago_to_the_millisecond():
    assert ids(Facts(enrolled_at=ago(days=30, milliseconds=-1), updated_at=ago(days=30, milliseconds=-1))) == ["new"]
    assert ids(Facts(enrolled_at=ago(days=30), updated_at=ago(days=30))) == ["inactive"]


def test_active_is_a_posting_less_than_90_days_ago_and_enrollment_alone_is_none():
    enrolled = ago(days=400)
    assert ids(Facts(enrolled_at=enrolled, updated_at=ago(days=90, milliseconds=-1))) == ["active"]
    assert ids(Facts(enrolled_at=enrolled, updated_at=ago(days=90))) == ["inactive"]
    # a new member who bought is new and active; one who did nothing is only new, never inactive
    assert ids(Facts(enrolled_at=ago(days=2), updated_at=ago(days=1))) == ["new", "active"]
    assert ids(Facts(enrolled_at=ago(days=2), updated_at=ago(days=2))) == ["new"]


def test_inactive_says_since_when():
    [gone] = builtin_segments(Facts(enrolled_at=ago(days=400), updated_at=ago(days=100)), NOW, None)
    assert gone.id == "inactive" and gone.since == ago(days=10)  # 90 days after the last posting
    [never] = builtin_segments(Facts(enrolled_at=ago(days=40), updated_at=ago(days=40)), NOW, None)
    assert never.since == ago(days=10) and "never earned or redeemed" in never.reason  # 30 days after enrollment


# ------------------------------------------------------------------ at_risk


def months(recent: int, past: int, past_purchases: int = 4, current: int = 0, older: int = 0) -> dict[str, Month]:
    """Qualifying points spread: ``recent`` in the 3 months before this one, ``past`` over the 12 before those."""
    this = "2026-12"
    out = {this: Month(qualifying_points=current, purchases=1)}
    for n in (1, 2, 3):
        out[months_back(this, n)] = Month(qualifying_points=recent if n == 1 else 0, purchases=1 if recent else 0)
    for n in range(4, 16):
        out[months_back(this, n)] = Month(qualifying_points=past if n == 4 else 0,
                                          purchases=past_purchases if n == 4 else 0)
    out[months_back(this, 16)] = Month(qualifying_points=older, purchases=10)
    return out


def risky(**kw: int) -> bool:
    facts = Facts(enrolled_at=ago(days=800), updated_at=ago(days=5), months=months(**kw))
    return "at_risk" in ids(facts)


def test_at_risk_is_the_last_three_months_below_half_the_own_average_quarter():
    # past 1200 over 12 months: 300 a quarter on average; below half of it (150) is at risk
    assert risky(recent=149, past=1200) and risky(recent=0, past=1200)
    assert not risky(recent=150, past=1200)
    # the current month and the 16th month back do not count
    assert risky(recent=100, past=1200, current=10_000) and not risky(recent=100, past=0, older=10_000)
    # three purchases in the past year at least: one big purchase is no habit
    assert risky(recent=0, past=1200, past_purchases=3) and not risky(recent=0, past=1200, past_purchases=2)


def test_at_risk_names_its_figures_and_skips_new_members():
    facts = Facts(enrolled_at=ago(days=800), updated_at=ago(days=5), months=months(recent=40, past=1200))
    [risk] = [m for m in member_segments(PLAIN, [], facts, NOW) if m.id == "at_risk"]
    assert risk.reason.startswith("40 qualifying points in 2026-09 to 2026-11, less than half of the 300 of an "
                                  "average 3 months in 2025-09 to 2026-08 (1200 points, 4 purchases)")
    young = Facts(enrolled_at=ago(days=10), updated_at=ago(days=5), months=months(recent=0, past=1200))
    assert "at_risk" not in ids(young)


def test_the_facts_cover_sixteen_months_and_windows_take_whole_months():
    assert fact_months(NOW)[0] == "2025-09" and fact_months(NOW)[-1] == "2026-12" and len(fact_months(NOW)) == 16
    assert window(NOW, 2) == ["2026-12"]
    assert window(NOW, 3) == ["2026-12", "2026-11"]  # 30 November 12:00 lies in November
    assert window(NOW, 366)[-1] == "2025-12"


# ------------------------------------------------------------------ premium


def test_premium_is_the_top_of_two_or_more_levels_and_no_tier_item_is_the_lowest():
    assert top_tier(TIERED) == "gold" and top_tier(PLAIN) is None
    assert top_tier(SimpleNamespace(tiers={"levels": [{"id": "only"}]})) is None
    gold = Facts.of({"enrolled_at": ago(days=400), "updated_at": ago(days=1)}, {"tier": "gold", "since": ago(days=3)},
                    {}, "bronze")
    assert ids(gold, TIERED) == ["active", "premium"]
    [premium] = [m for m in member_segments(TIERED, [], gold, NOW) if m.id == "premium"]
    assert premium.since == ago(days=3)
    plain = Facts.of({"enrolled_at": ago(days=400), "updated_at": ago(days=1)}, None, {}, "bronze")
    assert plain.tier == "bronze" and ids(plain, TIERED) == ["active"]


# ------------------------------------------------------------------ custom segments


def custom(segment_id: str, **conditions: object) -> Custom:
    return Custom(segment_id, segment_id, SegmentConditions.model_validate(conditions))


def test_custom_conditions_all_hold_by_calendar_month():
    facts = Facts(enrolled_at=ago(days=400), updated_at=ago(days=1), available=900, tier="gold", months={
        "2026-12": Month(spend=3000, purchases=1, qualifying_points=30, categories=frozenset({"books"})),
        "2026-10": Month(spend=7000, purchases=2, qualifying_points=70, categories=frozenset({"wine"}))})
    cases = {
        "big": ({"min_spend": {"amount": 10_000, "days": 60}}, True),  # October and December count whole
        "big30": ({"min_spend": {"amount": 10_000, "days": 30}}, False),  # November and December only
        "loyal": ({"min_purchases": {"count": 3, "days": 90}}, True),
        "points": ({"min_points": {"points": 101, "days": 90}}, False),
        "readers": ({"category_bought": {"category": "books", "days": 1}}, True),
        "wine": ({"category_bought": {"category": ["beer", "wine"], "days": 30}}, False),
        "gold": ({"tier": ["gold", "platinum"]}, True),
        "silver": ({"tier": "silver"}, False),
        "rich": ({"min_balance": 900}, True),
        "richer": ({"min_balance": 901}, False),
        "fans": ({"builtin": ["active"], "min_spend": {"amount": 1, "days": 1}}, True),
        "lapsed": ({"builtin": ["inactive", "new"]}, False),
    }
    found = {m.id: m for m in member_segments(PLAIN, [custom(k, **v[0]) for k, v in cases.items()], facts, NOW)
             if m.kind == "custom"}
    assert sorted(found) == sorted(k for k, (_, inside) in cases.items() if inside)
    assert found["big"].reason == "10000 spent in 2026-10 to 2026-12 (at least 10000)"
    assert found["readers"].reason == "bought books in 2026-12 to 2026-12"


def test_a_custom_segment_is_checked_before_it_is_stored():
    with pytest.raises(ValidationError, match="at least one condition"):
        NewSegment.model_validate({"id": "x", "name": "x", "conditions": {}})
    with pytest.raises(ValidationError, match="built-in segment"):
        NewSegment.model_validate({"id": "premium", "name": "x", "conditions": {"min_balance": 1}})
    for bad in ({"min_spend": {"amount": 0, "days": 30}}, {"min_spend": {"amount": 1, "days": 367}},
                {"builtin": ["vip"]}, {"tier": []}, {"min_balance": "5"}, {"colour": "red"}):
        with pytest.raises(ValidationError):
            NewSegment.model_validate({"id": "x", "name": "x", "conditions": bad})
    made = NewSegment.model_validate({"id": "Book-fans_2", "name": "Fans", "conditions": {"tier": "gold"}})
    assert made.definition().conditions.tier == ["gold"]


# ------------------------------------------------------------------ the snapshot's schedule


def test_a_count_is_due_when_forced_new_changed_or_old_and_not_otherwise():
    fresh = {"computed_at": ago(seconds=30), "started_at": ago(seconds=31), "position": "p5", "definitions_seen": "d1",
             "definitions_changed_at": "d1"}
    assert segment_admin.due(fresh, "p5", NOW, force=False) is None
    assert segment_admin.due(fresh, "p6", NOW, force=False) is None  # too soon after the last walk began
    assert segment_admin.due({**fresh, "started_at": ago(seconds=60)}, "p6", NOW, force=False) == \
        "events since the last count"
    assert segment_admin.due({**fresh, "started_at": ago(seconds=60)}, "p5", NOW, force=False) is None
    assert segment_admin.due({**fresh, "definitions_changed_at": "d2"}, "p5", NOW, force=False) == \
        "the custom segments changed"
    assert segment_admin.due({**fresh, "computed_at": ago(seconds=3600)}, "p5", NOW, force=False) == \
        "older than 3600 s"
    assert segment_admin.due({}, None, NOW, force=False) == "never counted"
    assert segment_admin.due(fresh, "p5", NOW, force=True) == "forced"


# ------------------------------------------------------------------ offers

EUR = Program(id="p1", name="Shop", currency="EUR", country="DE")


def rule(rule_id: str, **fields: object) -> Rule:
    body: dict[str, object] = {"name": rule_id, "trigger": "purchase", "effect": {"points": 10}}
    return Rule.model_validate({"id": rule_id, "version": 1, **body, **fields})


def test_rule_offers_fit_the_member_and_rank_targeted_then_points():
    facts = Facts(tier="gold", available=0)
    rules = [
        rule("books", conditions={"category": "books"}, effect={"multiplier_bps": 20000}),  # 100 more on 100.00
        rule("review", trigger="activity", conditions={"activity_type": "review"}, effect={"points": 50},
             limits={"per_member_per_day": 1}),
        rule("vip", conditions={"segment": "vip"}, effect={"points": 20}),  # targeted: first despite fewer points
        rule("silver", conditions={"tier": "silver"}, effect={"points": 500}),  # not this member's tier
        rule("others", conditions={"segment": "others"}, effect={"points": 500}),  # not this member's segment
        rule("capped", effect={"points": 900}, limits={"per_member_lifetime": 2}),  # used up
        rule("spent", effect={"points": 900}, limits={"budget_points": 100}),  # budget gone
        rule("friends", trigger="referral", effect={"referrer_points": 300, "referee_points": 100}),
        rule("saturday", conditions={"weekdays": ["sat"]}, effect={"points": 40}),  # 3 December 2026 is a Thursday
        rule("welcome", trigger="enrollment", effect={"points": 1000}),  # not an offer: already enrolled
    ]
    counters = {"capped": RuleCounters(lifetime=2), "spent": RuleCounters(total_points=100),
                "review": RuleCounters(today=0)}
    found = offers.rule_offers(EUR, rules, facts, frozenset({"vip", "active"}), NOW, counters)
    assert [(o.rule.id, o.points, o.targeted) for o in found] == [
        ("vip", 20, True), ("friends", 300, False), ("books", 100, False), ("review", 50, False),
        ("saturday", 40, False)]
    by_id = {o.rule.id: o.view() for o in found}
    assert by_id["saturday"]["applies_on"] == "2026-12-05" and by_id["books"]["applies_on"] == "2026-12-03"
    assert by_id["review"]["remaining_uses"] == 1 and by_id["books"]["remaining_uses"] is None
    assert by_id["books"]["description"].startswith("2× base points on books")
    assert offers.rule_offers(EUR, rules, facts, frozenset({"vip"}), NOW,
                              {**counters, "review": RuleCounters(today=1)})[3].rule.id == "saturday"


GIFT = {"id": "gc-books", "type": "gift_card", "name": "Books", "brand": "Books", "category": "books",
        "currency": "EUR", "countries": ["DE"], "denominations": [1000, 2500, 5000], "delivery_methods": ["email"],
        "fee": {"fixed": 0, "percent_bps": 0}, "expiry": {"policy": "months_after_issue", "months": 36},
        "cancel_policy": {"policy": "unredeemed_within_days", "days": 14}}


def item(item_id: str, **changes: object) -> object:
    return parse_item({**GIFT, "id": item_id, **changes})


def test_catalog_offers_are_affordable_then_nearly_within_eighty_percent():
    items = {i.id: i for i in (item("a-small", denominations=[1000]), item("b-big", denominations=[2500, 5000]),
                               item("c-near", denominations=[3126]), item("d-edge", denominations=[3125]),
                               item("e-far", denominations=[9000]), item("f-fr", countries=["FR"]),
                               item("g-open", denominations=None, min_value=500, max_value=10_000))}
    found = offers.catalog_offers(EUR, items, 2500, "DE")
    assert [(o["item_id"], o["affordable"], o["points_missing"]) for o in found] == [
        ("b-big", True, 0), ("g-open", True, 0), ("a-small", True, 0), ("d-edge", False, 625)]
    assert found[0]["best"] == {"face_value": 2500, "points": 2500}
    assert found[1]["best"] == {"face_value": 2500, "points": 2500} and found[2]["best"]["points"] == 1000
    assert [o["item_id"] for o in offers.catalog_offers(EUR, items, 2500, None)][-1] == "d-edge"
    assert "f-fr" in [o["item_id"] for o in offers.catalog_offers(EUR, items, 2500, None)]


def test_catalog_items_targeted_at_the_members_segments_come_first_whatever_their_price():
    items = {i.id: i for i in (item("a-small", denominations=[1000]), item("e-far", denominations=[9000]),
                               item("h-far", denominations=[9500]), item("f-fr", countries=["FR"]))}
    fans = Custom("fans", "Fans", SegmentConditions(min_balance=1), ("h-far", "f-fr"))
    other = Custom("others", "Others", SegmentConditions(min_balance=10**9), ("e-far",))
    facts = Facts(enrolled_at=ago(days=400), updated_at=ago(days=1), available=2500)
    found = member_segments(PLAIN, [fans, other], facts, NOW)
    targeted = targeted_items([fans, other], found)
    assert targeted == {"h-far": ["fans"], "f-fr": ["fans"]}  # not the items of a segment the member is not in
    ranked = offers.catalog_offers(EUR, items, 2500, "DE", targeted)
    assert [(o["item_id"], o["targeted"], o["segments"]) for o in ranked] == [
        ("h-far", True, ["fans"]), ("a-small", False, [])]  # f-fr is not offered in DE; e-far is too far
    assert ranked[0]["points_missing"] == 7000 and ranked[0]["best"] is None
    with pytest.raises(ValidationError):
        NewSegment.model_validate({"id": "x", "name": "x", "conditions": {"min_balance": 1},
                                   "catalog_items": ["Not An Id"]})
