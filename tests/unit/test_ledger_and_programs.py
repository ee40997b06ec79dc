import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.core.ledger import Account, Posting, PostingType, request_fingerprint
from treue.core.programs import Program


def posting(points, debit=Account.PROGRAM_ISSUED, credit=Account.MEMBER_AVAILABLE):
    return Posting(
        id="pst_1", program_id="prg", member_id="mbr", type=PostingType.EARN, debit=debit, credit=credit,
        points=points, reference="t1", reason="purchase", actor="test", created_at="now",
    )


@given(st.integers(min_value=1, max_value=10**12))
def test_every_posting_sums_to_zero(points):
    p = posting(points)
    assert sum(p.deltas().values()) == 0
    assert p.member_delta() == points


@pytest.mark.parametrize("points", [0, -5, True])
def test_postings_move_a_positive_integer(points):
    with pytest.raises(ValueError):
        posting(points)


def test_a_posting_needs_two_accounts():
    with pytest.raises(ValueError):
        posting(5, Account.MEMBER_AVAILABLE, Account.MEMBER_AVAILABLE)


def test_fingerprints_ignore_key_order_and_see_values():
    assert request_fingerprint({"a": 1, "b": 2}) == request_fingerprint({"b": 2, "a": 1})
    assert request_fingerprint({"a": 1}) != request_fingerprint({"a": 2})


def test_default_program_earns_one_point_per_euro_rounded_down():
    p = Program(id="prg", name="Café", currency="EUR")
    assert [p.points_for(v) for v in (0, 99, 100, 4999, -100)] == [0, 0, 1, 49, 0]
    assert p.money_value(250) == 250


def test_program_rates_are_integers():
    p = Program(id="prg", name="Yen", currency="JPY", earn_points=3, earn_per_minor=200)
    assert p.points_for(1000) == 15
    for bad in ({"currency": "eur"}, {"earn_points": 0}, {"value_minor": 1.5}, {"name": " "}):
        with pytest.raises(ValueError):
            Program(**{"id": "p", "name": "n", "currency": "EUR", **bad})
