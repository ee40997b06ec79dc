"""When points expire and which of a member's points have (treue.core.expiry): pure, no AWS."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.core.expiry import Policy, add_months, composition, due, parse, undated, upcoming


@pytest.mark.parametrize(("policy", "earned", "on"), [
    (Policy("rolling", 12), date(2026, 3, 15), date(2027, 3, 15)),
    (Policy("rolling", 1), date(2026, 1, 31), date(2026, 2, 28)),  # the 31st of a shorter month: its last day
    (Policy("rolling", 12), date(2024, 2, 29), date(2025, 2, 28)),
    (Policy("rolling", 24), date(2026, 12, 31), date(2028, 12, 31)),
    (Policy("end_of_period", 12), date(2026, 3, 15), date(2027, 12, 31)),  # a multiple of 12: the year's end
    (Policy("end_of_period", 24), date(2026, 1, 1), date(2028, 12, 31)),
    (Policy("end_of_period", 3), date(2026, 12, 31), date(2027, 3, 31)),  # otherwise: the quarter's end
    (Policy("end_of_period", 6), date(2026, 2, 10), date(2026, 9, 30)),
    (Policy("end_of_period", 18), date(2026, 5, 31), date(2027, 12, 31)),
])
def test_the_expiry_date_of_points_earned_on_a_day(policy, earned, on):
    assert policy.expires_on(earned) == on
    assert policy.expires_on(datetime.combine(earned, datetime.min.time(), UTC) + timedelta(hours=23)) == on


@pytest.mark.parametrize(("setting", "reason"), [
    ({"policy": "sliding", "months": 12}, "expiry.policy must be one of rolling, end_of_period"),
    ({"policy": "rolling", "months": 0}, "expiry.months must be an integer from 1 to 120"),
    ({"policy": "rolling", "months": True}, "expiry.months must be an integer from 1 to 120"),
    ({"policy": "rolling"}, "expiry must be"),
    ({"policy": "rolling", "months": 3, "days": 1}, "expiry must be"),
])
def test_a_wrong_setting_names_what_is_wrong(setting, reason):
    with pytest.raises(ValueError, match=reason):
        parse(setting)
    assert parse(None) is None
    assert parse({"policy": "end_of_period", "months": 12}) == Policy("end_of_period", 12)


def test_the_available_points_sit_in_the_latest_buckets_and_what_passed_is_due():
    buckets = {date(2026, 1, 31): 100, date(2026, 6, 30): 200, date(2026, 12, 31): 300}
    # 450 available of 600 credited: 150 were spent from the earliest (January's 100, June's 50)
    assert composition(450, 0, buckets) == {date(2026, 6, 30): 150, date(2026, 12, 31): 300}
    assert due(450, 0, buckets, date(2026, 7, 1)) == 150
    assert due(450, 0, buckets, date(2026, 6, 30)) == 0  # the last day they can be spent
    assert due(450, 0, buckets, date(2027, 1, 1)) == 450
    # 50 points that never expire (earned before the setting) stay the longest
    assert composition(450, 50, buckets) == {date(2026, 6, 30): 100, date(2026, 12, 31): 300}
    assert due(450, 50, buckets, date(2027, 1, 1)) == 400
    assert undated(lifetime_earned=650, dated=600, pending=0) == 50
    assert undated(lifetime_earned=650, dated=600, pending=80) == 0


def test_upcoming_lists_the_next_three_dates_and_what_is_overdue():
    buckets = {date(2026, 1, 31): 100, date(2026, 3, 31): 10, date(2026, 6, 30): 200, date(2026, 9, 30): 20,
               date(2026, 12, 31): 300}
    assert upcoming(630, 0, buckets, date(2026, 1, 1)) == [
        {"points": 100, "on": "2026-01-31"}, {"points": 10, "on": "2026-03-31"}, {"points": 200, "on": "2026-06-30"}]
    # January's date has passed and the run has not expired them yet: listed under their date
    assert upcoming(630, 0, buckets, date(2026, 2, 5))[0] == {"points": 100, "on": "2026-01-31"}
    # released after the run dropped January's bucket: listed as going at the next run (yesterday)
    assert upcoming(130, 0, {date(2026, 12, 31): 100}, date(2026, 2, 5)) == [
        {"points": 30, "on": "2026-02-04"}, {"points": 100, "on": "2026-12-31"}]
    assert upcoming(0, 0, buckets, date(2026, 1, 1)) == []


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 500)), min_size=1, max_size=12),
       st.integers(0, 6000), st.integers(0, 300), st.integers(0, 400))
def test_due_points_are_exactly_the_available_points_sitting_in_passed_buckets(lots, available, never, day):
    start = date(2026, 1, 1)
    buckets: dict[date, int] = {}
    for offset, points in lots:
        on = start + timedelta(days=offset)
        buckets[on] = buckets.get(on, 0) + points
    available = min(available, sum(buckets.values()) + never)
    today = start + timedelta(days=day)
    sits = composition(available, never, buckets)
    assert sum(sits.values()) == max(0, available - never)
    assert all(0 < sits[on] <= buckets[on] for on in sits)
    assert due(available, never, buckets, today) == sum(p for on, p in sits.items() if on < today)
    assert add_months(start, 12) == date(2027, 1, 1)
