"""What a return reverses of its purchase's points (treue.core.returns.split): per line, the share of bonuses for
the purchase as a whole, cumulative rounding, and what is left."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treue.core.returns import Component, PurchaseLine, Returned, ReturnLine, TooMuch, split

# A purchase of 100.00 EUR: books 3 × 10.00 (line 0), a pen 1 × 50.00 (line 1), 20.00 not on a line.
LINES = (PurchaseLine("books", 3, 3000), PurchaseLine("pen", 1, 5000))
EARNED = (
    Component("base", 1, 30, 0), Component("base", 1, 50, 1), Component("base", 1, 20, None),
    Component("rul_books", 2, 15, 0),  # 5 per book
    Component("rul_fixed", 1, 7, None),  # a fixed bonus for the purchase as a whole
    Component("rul_capped", 1, 0, None),  # a rule that paid nothing: nothing to reverse
)


def by_rule(reversal) -> dict[tuple[str, int | None], int]:
    return {(c.rule_id, c.line_index): points for c, points in reversal.reversed}


def test_a_returned_line_reverses_its_points_and_its_share_of_the_purchase_bonuses():
    out = split(EARNED, 10000, LINES, Returned(), by_lines=[ReturnLine("books", 1, 1000)])
    assert by_rule(out) == {("base", 0): 10, ("base", 1): 0, ("base", None): 2, ("rul_books", 0): 5,
                            ("rul_fixed", None): 0}  # 7 × 10 % = 0.7: floor
    assert out.points == 17
    assert out.after == Returned(1000, (Fraction(1, 3), Fraction(0)), Fraction(1, 10))


def test_partial_returns_round_cumulatively_and_the_last_reverses_exactly_what_is_left():
    state, total = Returned(), {}
    for _ in range(10):  # ten returns of 10.00 each
        out = split(EARNED, 10000, LINES, state, by_amount=1000)
        for key, points in by_rule(out).items():
            total[key] = total.get(key, 0) + points
        state = out.after
    assert total == {("base", 0): 30, ("base", 1): 50, ("base", None): 20, ("rul_books", 0): 15,
                     ("rul_fixed", None): 7}
    with pytest.raises(TooMuch) as err:
        split(EARNED, 10000, LINES, state, by_amount=1)
    assert err.value.left == {"amount": 0, "lines": [{"sku": "books", "quantity": 0}, {"sku": "pen", "quantity": 0}]}


def test_an_amount_return_reverses_everything_in_proportion():
    out = split(EARNED, 10000, LINES, Returned(), by_amount=5000)
    assert by_rule(out) == {("base", 0): 15, ("base", 1): 25, ("base", None): 10, ("rul_books", 0): 7,
                            ("rul_fixed", None): 3}


def test_an_amount_return_after_a_line_return_takes_what_is_left_of_every_line():
    first = split(EARNED, 10000, LINES, Returned(), by_lines=[ReturnLine("pen", 1, 5000)])
    assert by_rule(first)[("base", 1)] == 50
    rest = split(EARNED, 10000, LINES, first.after, by_amount=5000)
    assert by_rule(rest) == {("base", 0): 30, ("base", 1): 0, ("base", None): 10, ("rul_books", 0): 15,
                             ("rul_fixed", None): 4}  # 7 in all: 3 with the pen, 4 now
    assert rest.complete(10000, LINES)


def test_more_than_is_left_is_refused_naming_what_is_left():
    first = split(EARNED, 10000, LINES, Returned(), by_lines=[ReturnLine("books", 2, 2000)])
    with pytest.raises(TooMuch) as err:
        split(EARNED, 10000, LINES, first.after, by_lines=[ReturnLine("books", 2, 2000)])
    assert err.value.left == {"amount": 8000, "lines": [{"sku": "books", "quantity": 1}, {"sku": "pen", "quantity": 1}]}
    with pytest.raises(TooMuch, match="no line with sku mug"):
        split(EARNED, 10000, LINES, first.after, by_lines=[ReturnLine("mug", 1, 100)])
    with pytest.raises(TooMuch, match="more than the 8000 left"):
        split(EARNED, 10000, LINES, first.after, by_amount=8001)
    with pytest.raises(TooMuch, match="add up to 9000"):
        split(EARNED, 10000, LINES, first.after, by_lines=[ReturnLine("pen", 1, 9000)])


def test_two_lines_of_one_sku_are_returned_first_line_first():
    lines = (PurchaseLine("cup", 2, 400), PurchaseLine("cup", 1, 200))
    earned = (Component("base", 1, 4, 0), Component("base", 1, 2, 1))
    out = split(earned, 600, lines, Returned(), by_lines=[ReturnLine("cup", 3, 600)])
    assert by_rule(out) == {("base", 0): 4, ("base", 1): 2}


def test_the_state_survives_its_json():
    out = split(EARNED, 10000, LINES, Returned(), by_amount=3333)
    assert Returned.from_json(out.after.to_json()) == out.after
    assert Returned.from_json(None) == Returned()


# --- property: any sequence of partial returns never reverses more than earned; returning all reverses all

purchases = st.integers(1, 4).flatmap(lambda n: st.tuples(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 5000)), min_size=n, max_size=n),
    st.integers(0, 3000),  # the amount no line covers
    st.lists(st.tuples(st.integers(0, 500), st.one_of(st.none(), st.integers(0, n - 1))), min_size=1, max_size=8),
))


@settings(max_examples=300, deadline=None)
@given(purchases, st.lists(st.tuples(st.booleans(), st.integers(0, 10**6), st.integers(0, 10)), max_size=12))
def test_returns_never_reverse_more_than_earned_and_a_full_return_reverses_all(purchase, steps):
    raw_lines, rest, raw_earned = purchase
    lines = tuple(PurchaseLine(f"sku{i}", q, a) for i, (q, a) in enumerate(raw_lines))
    amount = sum(line.amount for line in lines) + rest
    earned = tuple(Component(f"r{i}", 1, points, index) for i, (points, index) in enumerate(raw_earned))
    state, total = Returned(), {c: 0 for c in earned}
    for by_amount, size, line in steps:
        left = amount - state.amount
        try:
            if by_amount:
                out = split(earned, amount, lines, state, by_amount=size % (left + 1))
            else:
                i = line % len(lines)
                room = lines[i].quantity * (1 - state.fraction(i))
                quantity = max(1, int(room)) if room >= 1 else 1
                out = split(earned, amount, lines, state,
                            by_lines=[ReturnLine(lines[i].sku, quantity, min(lines[i].amount, left))])
        except TooMuch:
            continue
        for component, points in out.reversed:
            assert points >= 0
            total[component] += points
        state = out.after
        assert all(0 <= total[c] <= c.points for c in earned)
    left = amount - state.amount
    final = split(earned, amount, lines, state, by_amount=left)
    for component, points in final.reversed:
        total[component] += points
    assert total == {c: c.points for c in earned}
    assert final.complete(amount, lines)
