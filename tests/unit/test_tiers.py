"""Status tiers, pure (treue.core.tiers): the configuration's checks, windows of rolling months and calendar
years across their boundaries, levels reached, the pace projection and the review's decisions; the upgrade
decision of an accrual (treue.logic.tiers.purchase_items) on a fake store."""

from __future__ import annotations

from datetime import datetime

import pytest

from treue.core import tiers
from treue.core.programs import Program
from treue.logic import tiers as tiering
from treue.logic.models import Purchase

EXAMPLE = {"metric": "points", "period": {"type": "rolling", "months": 12},
           "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                      {"id": "gold", "name": "Gold", "threshold": 1000, "benefits": {"earn_multiplier_bps": 15000}}]}
THREE = {"metric": "spend", "period": {"type": "calendar_year"},
         "levels": [{"id": "blue", "name": "Blue", "threshold": 0},
                    {"id": "silver", "name": "Silver", "threshold": 50_000},
                    {"id": "gold", "name": "Gold", "threshold": 200_000,
                     "benefits": {"earn_multiplier_bps": 12500, "catalog_discount_bps": 500, "free_delivery": True}}]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_issue_example_parses_and_shows_every_benefit():
    config = tiers.parse(EXAMPLE)
    assert (config.metric, config.months, config.calendar, config.counter) == ("points", 12, False, "qualifying_points")
    assert config.to_json()["levels"][0] == {"id": "bronze", "name": "Bronze", "threshold": 0, "benefits": {
        "earn_multiplier_bps": 10000, "catalog_discount_bps": 0, "free_delivery": False}}
    assert config.to_json()["levels"][1]["benefits"]["earn_multiplier_bps"] == 15000
    assert tiers.parse(config.to_json()) == config  # what is stored reads back the same
    assert Program(id="p", name="P", currency="EUR", tiers=config.to_json()).tier_config() == config


@pytest.mark.parametrize(("change", "reason"), [
    (lambda c: c.update(metric="visits"), "tiers.metric"),
    (lambda c: c.update(period={"type": "rolling"}), "tiers.period.months"),
    (lambda c: c.update(period={"type": "rolling", "months": 0}), "tiers.period.months"),
    (lambda c: c.update(period={"type": "calendar_year", "months": 12}), "tiers.period"),
    (lambda c: c.update(period={"type": "weekly"}), "tiers.period"),
    (lambda c: c["levels"].pop(), "tiers.levels must list"),
    (lambda c: c["levels"][1].update(id="bronze"), "unique"),
    (lambda c: c["levels"][1].update(id="Gold Plus"), "tiers.levels[1].id"),
    (lambda c: c["levels"][0].update(threshold=10), "tiers.levels[0].threshold must be 0"),
    (lambda c: c["levels"][1].update(threshold=0), "strictly ascending"),
    (lambda c: c["levels"][1].update(threshold=-5), "tiers.levels[1].threshold"),
    (lambda c: c["levels"][1].update(threshold=True), "tiers.levels[1].threshold"),
    (lambda c: c["levels"][1]["benefits"].update(earn_multiplier_bps=9999), "earn_multiplier_bps"),
    (lambda c: c["levels"][1]["benefits"].update(catalog_discount_bps=10001), "catalog_discount_bps"),
    (lambda c: c["levels"][1]["benefits"].update(free_delivery="yes"), "free_delivery"),
    (lambda c: c["levels"][1]["benefits"].update(cashback=1), "unknown fields"),
    (lambda c: c.update(extra=1), "unknown fields"),
])
def test_an_incoherent_configuration_is_refused_with_the_reason(change, reason):
    config = {**EXAMPLE,
              "levels": [dict(level, benefits=dict(level.get("benefits", {}))) for level in EXAMPLE["levels"]]}
    change(config)
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")) as raised:
        tiers.parse(config)
    assert str(raised.value).startswith("tiers")
    with pytest.raises(ValueError, match="^tiers"):
        Program(id="p", name="P", currency="EUR", tiers=config)


def test_a_rolling_window_is_this_month_and_the_months_before_across_a_year_boundary():
    config = tiers.parse({**EXAMPLE, "period": {"type": "rolling", "months": 3}})
    start, end = config.window(at("2027-01-15T10:00:00Z"))
    assert (start, end) == (at("2026-11-01T00:00:00Z"), at("2027-02-01T00:00:00Z"))
    assert tiers.months_between(start, end) == ["2026-11", "2026-12", "2027-01"]
    assert config.first_until(at("2026-12-31T23:59:59Z")) == at("2027-03-01T00:00:00Z")
    assert config.review_window(at("2027-03-01T00:00:00Z")) == (at("2026-12-01T00:00:00Z"), at("2027-03-01T00:00:00Z"))
    assert config.next_until(at("2027-03-01T00:00:00Z")) == at("2027-06-01T00:00:00Z")
    # the month is UTC's: 00:30 on the 1st at +02:00 is still the month before
    assert tiers.month_key(at("2027-02-01T00:30:00+02:00")) == "2027-01"


def test_a_calendar_year_window_ends_at_new_year_and_the_review_judges_the_year_before():
    config = tiers.parse(THREE)
    assert config.window(at("2026-12-31T23:59:59Z")) == (at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
    assert config.window(at("2027-01-01T00:00:00Z"))[0] == at("2027-01-01T00:00:00Z")
    assert config.first_until(at("2026-03-10T00:00:00Z")) == at("2027-01-01T00:00:00Z")
    assert tiers.months_between(*config.review_window(at("2027-01-01T00:00:00Z")))[::11] == ["2026-01", "2026-12"]


def test_levels_reached_by_threshold():
    config = tiers.parse(THREE)
    assert [config.reached(v).id for v in (0, 49_999, 50_000, 199_999, 200_000, 10**9)] == [
        "blue", "blue", "silver", "silver", "gold", "gold"]
    assert config.above(config.level("silver")).id == "gold" and config.above(config.level("gold")) is None
    assert config.level("retired-level").id == "blue"  # a level no longer configured counts as the lowest


def test_the_projection_extrapolates_the_pace_over_the_whole_period():
    start, end = at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z")
    # 100 days in, 300 points: 3 a day, 265 days left → 300 + 795
    assert tiers.projected_value(300, start, end, at("2026-04-11T00:00:00Z")) == 1095
    # on day 2 the pace is measured over 30 days, not 2
    assert tiers.projected_value(30, start, end, at("2026-01-03T00:00:00Z")) == 30 + 30 * 363 // 30
    assert tiers.projected_value(700, start, end, at("2027-01-05T00:00:00Z")) == 700  # the period is over
    assert tiers.projected_value(0, start, end, at("2026-06-01T00:00:00Z")) == 0


def months(**values: int) -> dict[str, int]:
    return {k.replace("_", "-")[1:]: v for k, v in values.items()}


def test_the_review_keeps_a_member_who_requalified_and_moves_until_on():
    config = tiers.parse(THREE)
    outcome = tiers.review(config, config.level("gold"), at("2027-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"),
                           months(m2026_03=150_000, m2026_11=60_000))
    assert (outcome.level.id, outcome.until, outcome.values, outcome.since) == (
        "gold", at("2028-01-01T00:00:00Z"), (210_000,), None)
    assert not outcome.changed(config.level("gold"))


def test_the_review_downgrades_to_the_level_the_period_reached_never_up():
    config = tiers.parse(THREE)
    gold = config.level("gold")
    down = tiers.review(config, gold, at("2027-01-01T00:00:00Z"), at("2027-01-02T00:00:00Z"),
                        months(m2026_05=60_000, m2027_01=500_000))  # January 2027 is not judged yet
    assert (down.level.id, down.until, down.since) == ("silver", at("2028-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
    lowest = tiers.review(config, gold, at("2027-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), {})
    assert (lowest.level.id, lowest.until) == ("blue", None)  # the lowest level has no until
    silver = config.level("silver")
    never_up = tiers.review(config, silver, at("2027-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"),
                            months(m2026_05=900_000))
    assert (never_up.level.id, never_up.until) == ("silver", at("2028-01-01T00:00:00Z"))
    assert not tiers.review(config, gold, at("2027-01-01T00:00:00Z"), at("2026-12-31T23:59:59Z"), {}).values


def test_a_late_review_judges_every_period_that_ended():
    config = tiers.parse({**EXAMPLE, "period": {"type": "rolling", "months": 2}})
    gold = config.level("gold")
    # until March: Jan+Feb 1200 keep gold; until May: Mar+Apr 300 → bronze
    outcome = tiers.review(config, gold, at("2027-03-01T00:00:00Z"), at("2027-05-20T00:00:00Z"),
                           months(m2027_01=1000, m2027_02=200, m2027_03=300))
    assert (outcome.level.id, outcome.until, outcome.values, outcome.since) == (
        "bronze", None, (1200, 300), at("2027-05-01T00:00:00Z"))


class FakeStore:
    """What purchase_items calls: the items it would write, as tuples."""

    def month_item(self, program_id, member_id, month, adds, categories, room=None):
        return ("month", month, dict(adds), tuple(categories), room)

    def tier_change_items(self, program_id, member_id, read_version, state, event_type, event, now):
        return [("tier", read_version, dict(state)), ("event", str(event_type), event["to"])]


def standing(level: str, values: dict[str, int], config=EXAMPLE, version: int = 0) -> tiering.Standing:
    parsed = tiers.parse(config)
    return tiering.Standing(parsed, parsed.level(level), version, parsed.window(at(NOW)), values)


NOW = "2026-12-03T10:00:00.000Z"


def bought(amount: int, occurred: str = "2026-12-03T09:00:00Z", category: str | None = "books") -> Purchase:
    lines = [{"sku": "a", "category": category, "amount": {"value": amount, "currency": "EUR"}}]
    return Purchase.model_validate({"transaction_id": "t-1", "amount": {"value": amount, "currency": "EUR"},
                                    "occurred_at": occurred, "lines": lines})


def test_the_crossing_purchase_upgrades_in_its_own_transaction():
    items, event = tiering.purchase_items(FakeStore(), "p", "m", standing("bronze", months(m2026_06=800), version=3),
                                          bought(20_000), 200, NOW)
    assert items[0] == ("month", "2026-12", {"qualifying_points": 200, "spend": 20_000, "purchases": 1}, ("books",),
                        None)
    assert items[1] == ("tier", 3, {"tier": "gold", "since": NOW, "until": "2027-12-01T00:00:00Z"})
    assert items[2] == ("event", "tier.upgraded", "gold")
    assert event["value"] == 1000 and event["from"] == "bronze"


def test_a_purchase_below_the_threshold_is_conditioned_on_the_room_left():
    items, event = tiering.purchase_items(FakeStore(), "p", "m",
                                          standing("bronze", months(m2026_06=500, m2026_12=100)),
                                          bought(10_000), 100, NOW)
    assert event is None
    # 500 in June + this 100: the month may hold at most 1000 - 1 - 100 - 500 = 399 before it (100 read)
    assert items == [("month", "2026-12", {"qualifying_points": 100, "spend": 10_000, "purchases": 1}, ("books",),
                      ("qualifying_points", 399))]


def test_months_outside_the_window_do_not_count_and_a_late_purchase_qualifies_for_nothing():
    # a purchase that occurred 13 months ago counts in its month, not in the window
    items, event = tiering.purchase_items(FakeStore(), "p", "m", standing("bronze", months(m2026_06=900)),
                                          bought(50_000, "2025-11-20T10:00:00Z"), 500, NOW)
    assert event is None and items[0][1] == "2025-11" and items[0][4] is None
    # the spend metric counts the amount, whatever the points
    spend = {**THREE, "period": {"type": "rolling", "months": 1}}
    items, event = tiering.purchase_items(FakeStore(), "p", "m", standing("blue", {}, spend), bought(50_000), 0, NOW)
    assert event is not None and event["to"] == "silver" and event["value"] == 50_000


def test_at_the_top_nothing_is_decided():
    parsed = tiers.parse(EXAMPLE)
    top = tiering.Standing(parsed, parsed.level("gold"), 1, parsed.window(at(NOW)), None)
    items, event = tiering.purchase_items(FakeStore(), "p", "m", top, bought(100_000), 1500, NOW)
    assert event is None and items[0][4] is None and len(items) == 1
    member = top.member()
    assert member.tier is not None and (member.tier.id, member.tier.earn_multiplier_bps) == ("gold", 15000)


def test_a_gold_member_earns_150_points_on_100_eur():
    from treue.logic.earning import evaluate, purchase_event

    program = Program(id="p", name="P", currency="EUR", tiers=EXAMPLE)
    parsed = program.tier_config()
    assert parsed is not None
    gold = tiering.Standing(parsed, parsed.level("gold"), 1, parsed.window(at(NOW)), None).member()
    purchase = Purchase.model_validate({"transaction_id": "t", "amount": {"value": 10_000, "currency": "EUR"},
                                        "occurred_at": "2026-12-03T09:00:00Z"})
    assert evaluate(program, [], gold, purchase_event(purchase)).total == 150
