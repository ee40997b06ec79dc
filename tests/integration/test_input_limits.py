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


def test_voucher_orders_are_capped_so_no_transaction_has_more_than_100_items(shop, monkeypatch):
    from tests.integration.helpers import call
    from treue import runtime
    from treue.handlers import orders
    from treue.logic.orders import MAX_VOUCHERS_PER_ORDER
    from treue.store import dynamodb
    from treue.store.orders import OrderStore

    store = OrderStore(runtime.store())
    items = store.catalog_items()
    bulk = {**next(i for i in items if i["id"] == "voucher-5-off"), "id": "voucher-5-off-bulk", "max_quantity": 100}
    store.put_catalog("bulk", [*items, bulk], runtime.now())
    runtime.reset()
    member = member_with(shop, 60_000)

    status, problem = place(shop, order_body(member, bulk["id"], method="api", quantity=MAX_VOUCHERS_PER_ORDER + 1))
    assert status == 422 and problem["reason"] == "quantity", problem
    assert problem["max_quantity"] == MAX_VOUCHERS_PER_ORDER == 90 and "at most 90 vouchers" in problem["detail"]

    sizes = []
    real = dynamodb.with_audit
    monkeypatch.setattr(dynamodb, "with_audit", lambda items: sizes.append(len(real(items))) or real(items))
    status, accepted = place(shop, order_body(member, bulk["id"], method="api", quantity=MAX_VOUCHERS_PER_ORDER))
    assert status == 202, accepted
    assert wait(shop, accepted["order_id"], timeout=60)["status"] == "COMPLETED"
    oid = accepted["order_id"]
    status, canceled, _ = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                               path=f"/v1/orders/{oid}/cancel", path_parameters={"order_id": oid})
    assert status == 200 and canceled["status"] == "CANCELED", canceled
    assert MAX_VOUCHERS_PER_ORDER < max(sizes) <= 100, sizes  # the cancel: every code and the refund in one
