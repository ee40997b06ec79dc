"""Points + cash orders (issue 17 item 4) through the handlers, the payout state machine executed by moto.

The shop's Nordlicht Books card allows points + cash (``points_cash.min_points_bps`` 4000): a 25 EUR card costs
2500 points (1 point = 1 cent), of which at least 1000 in points and the rest in cash the till took.
"""

import pytest

from tests.integration.helpers import call, events_of
from tests.integration.test_finance import budget_of, fin, reconciliation, trial
from tests.integration.test_orders import balance, get_order, member_with, order_body, place, wait
from tests.integration.test_tier_benefits import member as earning_member
from tests.integration.test_tier_benefits import tiered
from treue import runtime
from treue.handlers import orders
from treue.providers.simulated import set_fault

BOOKS = "nordlicht-books-eur"
TODAY = lambda: runtime.now()[:10]  # noqa: E731


def split(member, points=1500, cash=1000, reference="till-4711", currency="EUR", item=BOOKS, value=2500):
    return order_body(member, item, value, payment={"points": points, "cash": {
        "value": cash, "currency": currency, "reference": reference}})


def payout_row(shop, order_id):
    status, payouts, _ = fin(shop, "get_payouts", query={"from": TODAY()})
    assert status == 200, payouts
    return next(p for p in payouts["items"] if p["order_id"] == order_id)


def moves_of(shop, order_id):
    _, movements = budget_of(shop)
    return sorted((m["type"], m["debit"], m["credit"], m["amount"], m["reference"]) for m in movements
                  if m["order_id"] == order_id)


def test_a_points_and_cash_gift_card_holds_only_the_points_completes_and_finance_sees_the_cash(shop):
    member = member_with(shop, 3000)
    before, _ = budget_of(shop)
    status, accepted = place(shop, split(member))
    assert status == 202 and accepted["points"] == 1500, accepted
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "COMPLETED", order
    assert order["points"] == 1500 and order["payment"] == {
        "points": 1500, "cash": {"value": 1000, "currency": "EUR", "reference": "till-4711"}, "price_points": 2500}
    mine = balance(shop, member)
    assert (mine["available"], mine["held"], mine["lifetime_redeemed"]) == (1500, 0, 1500)
    # the budget: 10.00 EUR came in from the till, the card's 25.00 EUR face value went out
    after, _ = budget_of(shop)
    assert after["available"] - before["available"] == 1000 - 2500
    assert after["cash_received"] - before["cash_received"] == 1000
    assert after["cash_owed_back"] == before["cash_owed_back"]
    assert moves_of(shop, accepted["order_id"]) == [
        ("cash", "cash:received", "budget:available", 1000, "till-4711"),
        ("draw", "budget:available", "payouts:face", 2500, accepted["order_id"])]
    row = payout_row(shop, accepted["order_id"])
    assert (row["points"], row["face_value"], row["cash_value"], row["cash_reference"], row["cash_owed_back"]) == (
        1500, 2500, 1000, "till-4711", 0)
    status, journal, _ = fin(shop, "get_journal", query={"from": TODAY()})
    cash_lines = [j for j in journal["items"] if j["order_id"] == accepted["order_id"] and j["type"] == "cash"]
    assert [(j["unit"], j["debit"], j["credit"], j["amount"], j["reference"]) for j in cash_lines] == [
        ("EUR", "cash:received", "budget:available", 1000, "till-4711")]
    books = trial(shop)
    eur = next(u for u in books["units"] if u["unit"] == "EUR")
    assert books["balanced"] and {"account": "cash:received", "balance": -1000} in eur["accounts"]
    assert reconciliation(shop)["differences"] == []


def test_a_failed_points_and_cash_order_releases_the_points_and_owes_the_cash_back(shop, store):
    member = member_with(shop, 3000)
    before, _ = budget_of(shop)
    set_fault(store.ddb, store.table, shop["program_id"], "rejected", order_reference="split-fails")
    _, accepted = place(shop, split(member, reference="till-0815"), key="split-fails")
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "FAILED" and order["failure_reason"] == "provider_rejected"
    assert order["payment"]["owed_back"] | {"at": None, "movement": None} == {
        "value": 1000, "currency": "EUR", "why": "failed", "at": None, "movement": None}
    mine = balance(shop, member)
    assert (mine["available"], mine["held"]) == (3000, 0)
    after, _ = budget_of(shop)
    assert after["available"] == before["available"]  # the cash came in and is owed back out again
    assert after["cash_owed_back"] - before["cash_owed_back"] == 1000
    assert [m[:4] for m in moves_of(shop, accepted["order_id"]) if m[0].startswith("cash")] == [
        ("cash", "cash:received", "budget:available", 1000),
        ("cash_owed_back", "budget:available", "cash:owed_back", 1000)]
    row = payout_row(shop, accepted["order_id"])
    assert (row["status"], row["cash_value"], row["cash_reference"], row["cash_owed_back"]) == (
        "FAILED", 1000, "till-0815", 1000)
    [failed] = [e for e in events_of(shop, ["order.failed"]) if e["data"]["order_id"] == accepted["order_id"]]
    assert failed["data"]["points_released"] == 1500
    assert failed["data"]["cash_refund_due"] == {"value": 1000, "currency": "EUR", "reference": "till-0815"}
    assert trial(shop)["balanced"] and reconciliation(shop)["differences"] == []


def test_canceling_a_points_and_cash_order_refunds_the_points_and_owes_the_cash_back(shop):
    member = member_with(shop, 3000)
    _, accepted = place(shop, split(member, points=1000, cash=1500))
    assert wait(shop, accepted["order_id"])["status"] == "COMPLETED"
    status, body, _ = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                           path=f"/v1/orders/{accepted['order_id']}/cancel",
                           path_parameters={"order_id": accepted["order_id"]}, body={"reason": "changed her mind"})
    assert status == 200 and body["status"] == "CANCELED", body
    assert body["payment"]["owed_back"]["value"] == 1500 and body["payment"]["owed_back"]["why"] == "canceled"
    assert balance(shop, member)["available"] == 3000
    assert payout_row(shop, accepted["order_id"])["cash_owed_back"] == 1500
    assert trial(shop)["balanced"] and reconciliation(shop)["differences"] == []


def test_a_replay_receives_the_cash_once_and_another_payment_under_the_key_is_409(shop):
    member = member_with(shop, 5000)
    before, _ = budget_of(shop)
    first = place(shop, split(member), key="till-replay")
    again = place(shop, split(member), key="till-replay")
    assert first[0] == again[0] == 202 and again[1]["replayed"] is True
    assert again[1]["order_id"] == first[1]["order_id"]
    other = place(shop, split(member, reference="till-4712"), key="till-replay")
    assert other[0] == 409 and other[1]["type"].endswith("/idempotency-conflict"), other
    no_cash = place(shop, order_body(member, BOOKS, 2500), key="till-replay")
    assert no_cash[0] == 409
    assert wait(shop, first[1]["order_id"])["status"] == "COMPLETED"
    after, _ = budget_of(shop)
    assert after["cash_received"] - before["cash_received"] == 1000
    assert [m[0] for m in moves_of(shop, first[1]["order_id"])].count("cash") == 1
    assert balance(shop, member)["available"] == 3500


@pytest.mark.parametrize(("body", "field"), [
    (dict(points=999, cash=1501), "payment.points"),           # under 40 % of 2500 points
    (dict(points=2500, cash=1), "payment.points"),             # the whole price in points
    (dict(points=1500, cash=999), "payment.cash.value"),       # the 1000 points left cost 1000 cents
    (dict(points=1500, cash=1001), "payment.cash.value"),
    (dict(currency="USD"), "payment.cash.currency"),
    (dict(item="atelier-mode-eur"), "payment"),                # no points_cash
    (dict(reference=""), "payment.cash.reference"),
    (dict(points=0), "payment.points"),
])
def test_a_split_that_does_not_pay_the_price_exactly_is_422_naming_the_field_and_nothing_moves(shop, body, field):
    member = member_with(shop, 3000)
    before, _ = budget_of(shop)
    status, problem = place(shop, split(member, **body))
    assert status == 422, problem
    assert problem["type"].endswith("/validation-failed") and field in [e["field"] for e in problem["errors"]]
    if field == "payment":  # the item does not allow it (not: the field is unknown)
        assert "no points_cash" in problem["detail"], problem
    after, _ = budget_of(shop)
    assert after == before
    mine = balance(shop, member)
    assert (mine["available"], mine["held"]) == (3000, 0)


def test_a_member_short_of_points_pays_the_rest_in_cash(shop):
    member = member_with(shop, 1200)
    status, problem = place(shop, order_body(member, BOOKS, 2500))
    assert status == 422 and problem["type"].endswith("/insufficient-points")
    status, accepted = place(shop, split(member, points=1200, cash=1300))
    assert status == 202, accepted
    assert wait(shop, accepted["order_id"])["status"] == "COMPLETED"
    mine = balance(shop, member)
    assert (mine["available"], mine["held"], mine["lifetime_redeemed"]) == (0, 0, 1200)


def refund(shop, order_id, reference="refund-1", scope="admin"):
    status, body, _ = fin(shop, "post_cash_refund", scope=scope, body={"order_id": order_id, "reference": reference})
    return status, body


def test_finance_records_the_refund_of_owed_back_cash_once(shop, store):
    member = member_with(shop, 3000)
    set_fault(store.ddb, store.table, shop["program_id"], "out_of_stock", order_reference="split-refund")
    _, accepted = place(shop, split(member, reference="till-0816"), key="split-refund")
    oid = accepted["order_id"]
    assert wait(shop, oid)["status"] == "FAILED"
    before, _ = budget_of(shop)
    assert refund(shop, oid, scope="finance")[0] == 403  # recording money paid out is the admin's
    status, done = refund(shop, oid, "till-0816-refund")
    assert status == 201, done
    assert (done["amount"], done["reference"], done["till_reference"], done["replayed"]) == (
        {"value": 1000, "currency": "EUR"}, "till-0816-refund", "till-0816", False)
    again = refund(shop, oid, "till-0816-refund")
    assert again[0] == 200 and again[1]["replayed"] is True and again[1]["movement_id"] == done["movement_id"]
    other = refund(shop, oid, "another-refund")
    assert other[0] == 409 and other[1]["type"].endswith("/idempotency-conflict"), other
    after, _ = budget_of(shop)
    assert before["cash_owed_back"] - after["cash_owed_back"] == 1000
    assert before["cash_received"] - after["cash_received"] == 1000  # the cash the programme kept
    assert after["available"] == before["available"]
    assert [m[:4] for m in moves_of(shop, oid) if m[0] == "cash_refunded"] == [
        ("cash_refunded", "cash:owed_back", "cash:received", 1000)]
    row = payout_row(shop, oid)
    assert (row["cash_owed_back"], row["cash_refunded"], row["cash_reference"]) == (0, 1000, "till-0816")
    _, shown = get_order(shop, oid)
    assert shown["payment"]["refunded"]["reference"] == "till-0816-refund"
    assert shown["payment"]["refunded"]["movement"] == done["movement_id"]
    assert trial(shop)["balanced"] and reconciliation(shop)["differences"] == []


def test_only_an_order_that_owes_cash_back_can_be_refunded(shop):
    member = member_with(shop, 6000)
    _, paid = place(shop, split(member))
    _, plain = place(shop, order_body(member, BOOKS, 2500))
    assert wait(shop, paid["order_id"])["status"] == wait(shop, plain["order_id"])["status"] == "COMPLETED"
    for order_id in (paid["order_id"], plain["order_id"]):
        status, problem = refund(shop, order_id)
        assert status == 409 and problem["type"].endswith("/order-state-conflict"), problem
    assert refund(shop, "ord_01m8zzzzzzzzzzzzzzzzzzzzzz")[0] == 404
    assert refund(shop, "not-an-order")[0] == 404
    assert fin(shop, "post_cash_refund", scope="admin", body={"order_id": paid["order_id"]})[0] == 422
    assert payout_row(shop, paid["order_id"])["cash_refunded"] == 0


def test_a_split_the_member_cannot_pay_in_points_receives_no_cash(shop):
    member = member_with(shop, 1400)
    before, _ = budget_of(shop)
    status, problem = place(shop, split(member))  # 1500 points of 1400
    assert status == 422 and problem["type"].endswith("/insufficient-points"), problem
    after, _ = budget_of(shop)
    assert after == before
    mine = balance(shop, member)
    assert (mine["available"], mine["held"]) == (1400, 0)


def test_a_gold_members_split_pays_the_discounted_price(shop):
    tiered(shop)  # gold: 10 % off the catalog's points prices
    gold = earning_member(shop, 1000)
    # 2500 points less 10 % is 2250: 900 points at least (40 %), and the 1350 points left are 13.50 EUR
    status, problem = place(shop, split(gold, points=899, cash=1351))
    assert status == 422 and problem["min_points"] == 900 and problem["price_points"] == 2250, problem
    status, problem = place(shop, split(gold, points=900, cash=1600))  # the list price's cash
    assert status == 422 and problem["expected"] == 1350, problem
    status, accepted = place(shop, split(gold, points=900, cash=1350))
    assert status == 202 and accepted["points"] == 900, accepted
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "COMPLETED" and order["payment"]["price_points"] == 2250
    assert order["tier_discount"]["points_after"] == 2250 and order["points"] == 900
    assert reconciliation(shop)["differences"] == []
