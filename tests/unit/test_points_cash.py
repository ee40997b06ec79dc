"""Points + cash (issue 17 item 4): the split's checks and arithmetic at their bounds (the cash pays the points
not paid in points at the program's point value, rounded up in the programme's favour; the points pay at least
``min_points_bps`` of the price, rounded up, and never all of it), the catalog's ``points_cash`` field, the
fingerprint, and what the reconciliation says of a points + cash order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from treue.core.programs import Program
from treue.core.records import Order
from treue.core.statuses import ItemType, OrderStatus
from treue.errors import ValidationFailed
from treue.logic import catalog, finance
from treue.logic.models import OrderRequest, Payment
from treue.logic.orders import cash_for, min_points, split_payment

CENT = Program(id="prg_c", name="C", currency="EUR")  # 1 point = 1 cent
FINE = Program(id="prg_f", name="F", currency="EUR", value_points=3, value_minor=2)  # 3 points = 2 cents
BOOKS = {"type": "gift_card", "id": "books-eur", "brand": "B", "name": "Books card", "category": "books",
         "countries": ["DE"], "currency": "EUR", "denominations": [1000, 2500], "expiry": {"policy": "never"},
         "delivery_methods": ["email"], "cancel_policy": {"policy": "none"},
         "points_cash": {"min_points_bps": 4000}}


def card(**changes):
    return catalog.parse_item({**BOOKS, **changes})


def pay(points, value, currency="EUR", reference="till-1"):
    return Payment.model_validate({"points": points, "cash": {"value": value, "currency": currency,
                                                              "reference": reference}})


def failed_field(program, item, price, payment):
    with pytest.raises(ValidationFailed) as err:
        split_payment(program, item, price, payment)
    [error] = err.value.extra["errors"]
    assert err.value.status == 422 and error["location"] == "body"
    return error["field"], err.value.extra


@pytest.mark.parametrize(("program", "points", "expected"), [
    (CENT, 1, 1), (CENT, 1500, 1500),
    (FINE, 3, 2),          # exact
    (FINE, 1, 1),          # 2/3 of a cent is paid as a whole cent
    (FINE, 2, 2),          # 4/3 cents: 2
    (FINE, 4, 3),          # 8/3: 3
    (Program(id="p", name="p", currency="EUR", value_points=100, value_minor=1), 101, 2),  # 1.01 cents: 2
    (Program(id="p", name="p", currency="EUR", value_points=1, value_minor=5), 7, 35),      # 5 cents a point
])
def test_the_cash_for_points_rounds_up_in_the_programmes_favour(program, points, expected):
    assert cash_for(program, points) == expected


@pytest.mark.parametrize(("price", "bps", "expected"), [
    (2500, 4000, 1000),    # exact
    (2501, 4000, 1001),    # 1000.4 rounds up
    (3, 1, 1),             # at least 1 point
    (10_000, 0, 1),        # 0 bps: still 1 point (an order always holds points)
    (10_000, 9999, 9999),
    (9, 9999, 9),          # 8.9991 rounds up to the whole price: no split is possible
])
def test_the_least_points_round_up_and_are_at_least_one(price, bps, expected):
    assert min_points(price, bps) == expected


def test_a_split_at_its_bounds_is_accepted_and_says_what_the_order_keeps():
    item = card()
    assert split_payment(CENT, item, 2500, pay(1000, 1500)) == {
        "points": 1000, "cash": {"value": 1500, "currency": "EUR", "reference": "till-1"}, "price_points": 2500,
        "point_value": {"points": 100, "value": 100}}
    assert split_payment(CENT, item, 2500, pay(2499, 1))["points"] == 2499  # the most points: all but one
    assert split_payment(FINE, item, 3750, pay(1501, 1500))["cash"]["value"] == 1500  # 2249 points: 1499.33 → 1500


@pytest.mark.parametrize(("points", "value", "field", "expected"), [
    (999, 1501, "payment.points", None),       # one point under 40 %
    (2500, 1, "payment.points", None),         # the whole price in points: no split
    (2600, 1, "payment.points", None),         # more than the price
    (1000, 1499, "payment.cash.value", 1500),  # one cent short
    (1000, 1501, "payment.cash.value", 1500),  # one cent over: exactly, not more
])
def test_a_split_that_does_not_pay_the_price_exactly_names_the_field(points, value, field, expected):
    found, extra = failed_field(CENT, card(), 2500, pay(points, value))
    assert found == field
    assert extra.get("expected") == expected


def test_the_rounding_is_checked_both_ways():
    # 3750 - 1501 = 2249 points = 1499.33 cents: 1499 is short, 1500 is the price, 1501 is too much
    assert failed_field(FINE, card(), 3750, pay(1501, 1499))[0] == "payment.cash.value"
    assert failed_field(FINE, card(), 3750, pay(1501, 1501))[0] == "payment.cash.value"


def test_only_items_with_points_cash_in_the_program_currency_and_cash_in_it_split():
    assert failed_field(CENT, card(points_cash=None), 2500, pay(1000, 1500))[0] == "payment"
    usd = card(currency="USD")
    assert failed_field(Program(id="p", name="p", currency="EUR", fx_ppm={"USD": 920_000}), usd, 2300,
                        pay(1000, 1300, "USD"))[0] == "payment.cash.currency"
    assert failed_field(CENT, card(), 2500, pay(1000, 1500, "USD"))[0] == "payment.cash.currency"
    voucher = catalog.parse_item({"type": "voucher", "id": "five-off", "name": "5 off", "countries": ["DE"],
                                  "currency": "EUR", "discount": {"kind": "fixed", "amount": 500}, "face_value": 500,
                                  "validity_days": 30, "terms": "t", "delivery_methods": ["api"],
                                  "cancel_policy": {"policy": "none"}})
    assert failed_field(CENT, voucher, 500, pay(200, 300))[0] == "payment"


@given(price=st.integers(min_value=2, max_value=10**6), bps=st.integers(min_value=0, max_value=9999),
       value_points=st.integers(min_value=1, max_value=1000), value_minor=st.integers(min_value=1, max_value=1000),
       share=st.floats(min_value=0, max_value=1))
def test_any_accepted_split_pays_at_least_the_price_and_less_than_a_minor_unit_more(
        price, bps, value_points, value_minor, share):
    program = Program(id="p", name="p", currency="EUR", value_points=value_points, value_minor=value_minor)
    least = min_points(price, bps)
    if least >= price:
        return
    points = least + int((price - 1 - least) * share)
    due = cash_for(program, price - points)
    kept = split_payment(program, card(points_cash={"min_points_bps": bps}), price, pay(points, due))
    # the cash is worth at least the points it stands for, and less than one minor unit more
    assert due * value_points >= (price - points) * value_minor > (due - 1) * value_points
    assert kept["points"] == points and points * 10_000 >= price * bps


def test_the_catalog_field_is_checked():
    assert card().points_cash == catalog.PointsCash(min_points_bps=4000)
    for bad in ({"min_points_bps": 10_000}, {"min_points_bps": -1}, {"min_points_bps": "40"}, {"share": 1}):
        with pytest.raises(ValidationError):
            card(points_cash=bad)
    view = catalog.present(card(), CENT)
    assert view is not None and view["points_cash"] == {"min_points_bps": 4000}
    plain = catalog.present(card(points_cash=None), CENT)
    assert plain is not None and "points_cash" not in plain


def test_the_payment_is_part_of_the_fingerprint_and_its_absence_keeps_the_old_one():
    body = {"member_id": "mem_1", "item_id": "books-eur", "denomination": 2500, "delivery": {"method": "email"}}
    plain = OrderRequest.model_validate(body).fingerprint_payload()
    assert plain == {"member_id": "mem_1", "item_id": "books-eur", "value": 2500, "quantity": 1,
                     "delivery": {"method": "email", "email": None}}
    split = {**body, "payment": {"points": 1000, "cash": {"value": 1500, "currency": "EUR", "reference": "till-1"}}}
    other = {**split, "payment": {**split["payment"], "cash": {**split["payment"]["cash"], "reference": "till-2"}}}
    assert len({str(OrderRequest.model_validate(b).fingerprint_payload()) for b in (body, split, other)}) == 3
    for bad in ({"points": 0, "cash": split["payment"]["cash"]},
                {"points": 1000, "cash": {"value": 0, "currency": "EUR", "reference": "till-1"}},
                {"points": 1000, "cash": {"value": 1500, "currency": "EUR"}}):
        with pytest.raises(ValidationError):
            OrderRequest.model_validate({**body, "payment": bad})


def order(status, payment, points=1000):
    return Order(id="ord_1", program_id="prg_c", type=ItemType.GIFT_CARD, item_id="books-eur", item=BOOKS,
                 face_value=2500, currency="EUR", quantity=1, points=points, points_each=2500, delivery={},
                 status=status, history=[], actor="t", client_reference="k", created_at="2026-12-03T10:00:00.000Z",
                 updated_at="2026-12-03T10:00:00.000Z", member_id="mem_1", payment=payment)


PAID = {"points": 1000, "cash": {"value": 1500, "currency": "EUR", "reference": "till-1"}, "price_points": 2500,
        "point_value": {"points": 100, "value": 100}}


def cash_move(kind, amount=1500):
    return {"id": f"mov_{kind}", "type": kind, "currency": "EUR", "amount": amount, "order_id": "ord_1",
            "debit": "x", "credit": "y", "created_at": "2026-12-03T10:00:00.000Z"}


def differences(o, entries):
    run = finance.Reconciliation("2026-12-03")
    run.add_order(o)
    for e in entries:
        run.add_entry(e)
    run.check(run.unchecked()[0])
    return [(d["check"], d["expected"], d["actual"]) for d in run.differences if d["check"].startswith(("cash",
                                                                                                      "points_cash"))]


def test_the_reconciliation_checks_the_cash_of_a_points_and_cash_order():
    completed = order(OrderStatus.COMPLETED, PAID)
    assert differences(completed, [cash_move("cash")]) == []
    assert differences(completed, []) == [("cash_received", 1500, 0)]
    assert differences(completed, [cash_move("cash"), cash_move("cash_owed_back")]) == [("cash_owed_back", 0, 1500)]
    failed = order(OrderStatus.FAILED, PAID)
    assert differences(failed, [cash_move("cash"), cash_move("cash_owed_back")]) == []
    assert differences(failed, [cash_move("cash"), cash_move("cash_owed_back"), cash_move("cash_refunded")]) == []
    assert differences(failed, [cash_move("cash"), cash_move("cash_owed_back"), cash_move("cash_refunded"),
                                cash_move("cash_refunded")]) == [("cash_refunded", 1500, 3000)]
    assert differences(failed, [cash_move("cash")]) == [("cash_owed_back", 1500, 0)]
    short = order(OrderStatus.COMPLETED, {**PAID, "cash": {**PAID["cash"], "value": 1400}})
    assert differences(short, [cash_move("cash", 1400)]) == [("points_cash", 1500, 1400)]
    assert differences(order(OrderStatus.COMPLETED, PAID, points=900), [cash_move("cash")])[0][0] == "points_cash"
    # a job's state written before points + cash reads back as a points-only order
    state = finance.order_summary(order(OrderStatus.COMPLETED, None)).state()
    old = {k: v for k, v in state.items() if k not in ("cash", "cash_due", "paid_points")}
    assert finance.OrderSummary.from_state(old) == finance.OrderSummary.from_state(state)


def test_the_payout_row_shows_the_cash_what_is_still_owed_back_and_what_was_refunded():
    owed = {**PAID, "owed_back": {"value": 1500, "currency": "EUR", "at": "t", "why": "failed", "movement": "m"}}
    refunded = {**owed, "refunded": {"value": 1500, "currency": "EUR", "reference": "r", "at": "t", "by": "a",
                                     "movement": "m2"}}
    assert finance.cash_columns(order(OrderStatus.COMPLETED, PAID)) == {
        "cash_value": 1500, "cash_reference": "till-1", "cash_owed_back": 0, "cash_refunded": 0}
    assert finance.cash_columns(order(OrderStatus.FAILED, owed))["cash_owed_back"] == 1500
    assert finance.cash_columns(order(OrderStatus.FAILED, refunded)) == {
        "cash_value": 1500, "cash_reference": "till-1", "cash_owed_back": 0, "cash_refunded": 1500}
    assert finance.cash_columns(order(OrderStatus.COMPLETED, None)) == {
        "cash_value": None, "cash_reference": None, "cash_owed_back": None, "cash_refunded": None}
    assert finance.PAYOUT_COLUMNS[-4:] == ("cash_value", "cash_reference", "cash_owed_back", "cash_refunded")


def test_the_sample_event_orders_the_demo_card_with_points_and_cash():
    root = Path(__file__).resolve().parents[2]
    sample = json.loads((root / "events" / "orders" / "post_order_points_cash.json").read_text())
    request = OrderRequest.model_validate_json(sample["body"])
    assert request.payment is not None and request.value is not None
    _, items = catalog.load_dir(root / "catalog")
    item = next(i for i in items if i.id == request.item_id)
    price = catalog.points_for(CENT, item.currency, request.value) * request.quantity
    assert split_payment(CENT, item, price, request.payment)["points"] == request.payment.points


def test_the_failed_order_sample_carries_the_cash_refund_the_release_writes():
    from treue.logic import budget
    from treue.store.events import inserted_event

    root = Path(__file__).resolve().parents[2]
    [record] = json.loads((root / "events" / "webhook_fanout" / "order_failed_cash_refund_due.json").read_text())[
        "Records"]
    event = inserted_event(record, "order.failed")
    assert event is not None
    failed = order(OrderStatus.FAILED, {**PAID, "cash": {**PAID["cash"], "value": 1000,
                                                         "reference": "till-7-receipt-0042"}})
    assert event.data["cash_refund_due"] == budget.cash_refund_due(failed)
    assert budget.cash_refund_due(order(OrderStatus.FAILED, None)) is None
