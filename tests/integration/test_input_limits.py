"""Limits on input that the models alone cannot judge: a voucher's minimum spend, an order's size."""

from tests.integration.test_orders import member_with, order_body, place, reveal, voucher_call, wait


def test_a_min_spend_voucher_without_a_purchase_amount_is_refused_not_redeemed(shop):
    member = member_with(shop, 3000)
    _, accepted = place(shop, order_body(member, "voucher-10-off", method="api"))
    assert wait(shop, accepted["order_id"])["status"] == "COMPLETED"
    code = reveal(shop, accepted["order_id"])[1]["codes"][0]["code"]
    status, problem = voucher_call(shop, "redeem", {"code": code, "reference": "till-1"})
    assert status == 422 and problem["reason"] == "minimum_spend", problem
    assert problem["errors"][0]["field"] == "purchase_amount" and "5000" in problem["detail"]
    status, voucher = voucher_call(shop, "validate", {"code": code})
    assert status == 200 and voucher["status"] == "ACTIVE"
    status, out = voucher_call(shop, "redeem", {"code": code, "reference": "till-1",
                                                "purchase_amount": {"value": 5000, "currency": "EUR"}})
    assert status == 200 and out["status"] == "REDEEMED"
    status, again = voucher_call(shop, "redeem", {"code": code, "reference": "till-2"})
    assert status == 409 and again["reason"] == "redeemed"  # what the till needs to know first
