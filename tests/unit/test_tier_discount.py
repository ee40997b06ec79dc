"""The catalog discount of a member's tier (issue 16 item 4, ``catalog_discount_bps``): the arithmetic at its bounds
and its rounding (the discount rounds down, the price up, in the programme's favour like the price itself; never
below 1 point), the prices ``present`` shows for a member, and which level's discount a member has."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.core.programs import Program
from treue.logic import catalog

LEVELS = [{"id": "bronze", "name": "Bronze", "threshold": 0},
          {"id": "silver", "name": "Silver", "threshold": 500, "benefits": {"catalog_discount_bps": 0}},
          {"id": "gold", "name": "Gold", "threshold": 1000, "benefits": {"catalog_discount_bps": 1500}}]
TIERED = Program(id="prg_t", name="T", currency="EUR", markup_bps=500,
                 tiers={"metric": "points", "period": {"type": "calendar_year"}, "levels": LEVELS})
FLAT = Program(id="prg_f", name="F", currency="EUR", markup_bps=500)


@pytest.mark.parametrize(("points", "bps", "expected"), [
    (2500, 0, 2500),        # no discount
    (2500, 10_000, 1),      # everything off but the 1 point a redemption holds
    (1, 10_000, 1),
    (2500, 1000, 2250),     # exact
    (105, 1000, 95),        # 10.5 off rounds down to 10: the price rounds up
    (9, 1000, 9),           # 0.9 off: nothing
    (10, 1000, 9),
    (10_000, 1, 9999),      # 1 bps of 10000 points is one point
    (9999, 1, 9999),
    (3, 9999, 1),           # 2.9997 off rounds down to 2, leaving 1
    (10**12, 3333, 666_700_000_000),
])
def test_the_discounted_price_at_the_bounds_and_its_rounding(points, bps, expected):
    assert catalog.TierDiscount("gold", bps).price(points) == expected


@given(st.integers(min_value=1, max_value=10**13), st.integers(min_value=0, max_value=10_000))
def test_the_discount_is_never_more_than_bps_and_keeps_a_point(points, bps):
    after = catalog.TierDiscount("gold", bps).price(points)
    assert 1 <= after <= points
    assert (points - after) * 10_000 <= points * bps  # never more off than the bps say
    assert after == 1 or (points - after + 1) * 10_000 > points * bps  # and less than a point short of it


def test_a_members_catalog_shows_their_prices_and_those_before():
    books = catalog.parse_item({"type": "gift_card", "id": "books-eur", "brand": "B", "name": "Books",
                                "category": "books", "countries": ["DE"], "currency": "EUR",
                                "denominations": [1000, 2500], "expiry": {"policy": "never"},
                                "delivery_methods": ["email"], "cancel_policy": {"policy": "none"}})
    shown = catalog.present(books, TIERED, catalog.TierDiscount("gold", 1500))
    assert shown is not None
    assert shown["denominations"] == [{"face_value": 1000, "points": 893, "points_before": 1050},
                                      {"face_value": 2500, "points": 2232, "points_before": 2625}]
    assert (shown["min_points"], shown["min_points_before"], shown["tier_discount"]) == (
        893, 1050, {"tier": "gold", "bps": 1500})
    plain = catalog.present(books, TIERED)
    assert plain is not None and plain["denominations"][0] == {"face_value": 1000, "points": 1050}
    assert "tier_discount" not in plain and "min_points_before" not in plain
    fund = catalog.parse_item({"type": "charity", "id": "fund-eur", "name": "Fund", "registration_id": "R-1",
                               "country": "DE", "cause": "nature", "currency": "EUR", "min_value": 100,
                               "max_value": 1000})
    shown = catalog.present(fund, TIERED, catalog.TierDiscount("gold", 1500))
    assert shown is not None and shown["open_value"] == {"min": 100, "max": 1000, "min_points": 90,
                                                          "max_points": 893, "min_points_before": 105,
                                                          "max_points_before": 1050}


class Tiers:
    def __init__(self, state):
        self.state, self.reads = state, 0

    def tier_state(self, program_id, member_id):
        self.reads += 1
        return self.state


@pytest.mark.parametrize(("state", "expected"), [
    (None, None),                                   # no TIER item: the lowest level, no discount
    ({"tier": "silver", "version": 1}, None),       # a level without discount
    ({"tier": "gold", "version": 2}, ("gold", 1500)),
    ({"tier": "platinum", "version": 3}, None),     # a level no longer configured: the lowest
])
def test_a_members_discount_is_their_levels(state, expected):
    store = Tiers(state)
    found = catalog.member_discount(store, TIERED, "mbr_1")
    assert (found and (found.tier, found.bps)) == (expected or None) and store.reads == 1


def test_a_program_without_tiers_reads_no_tier_state():
    store = Tiers({"tier": "gold", "version": 1})
    assert catalog.member_discount(store, FLAT, "mbr_1") is None and store.reads == 0
    assert catalog.tier_discount(FLAT, "gold") is None
    assert catalog.tier_discount(TIERED, "gold") == catalog.TierDiscount("gold", 1500)
    assert catalog.tier_discount(TIERED, None) is None
