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
    from treue.store import table
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
    real = table.with_audit
    monkeypatch.setattr(table, "with_audit", lambda items: sizes.append(len(real(items))) or real(items))
    status, accepted = place(shop, order_body(member, bulk["id"], method="api", quantity=MAX_VOUCHERS_PER_ORDER))
    assert status == 202, accepted
    assert wait(shop, accepted["order_id"], timeout=60)["status"] == "COMPLETED"
    oid = accepted["order_id"]
    status, canceled, _ = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                               path=f"/v1/orders/{oid}/cancel", path_parameters={"order_id": oid})
    assert status == 200 and canceled["status"] == "CANCELED", canceled
    assert MAX_VOUCHERS_PER_ORDER < max(sizes) <= 100, sizes  # the cancel: every code and the refund in one


def test_a_batch_upload_url_takes_only_the_declared_size_up_to_20_mb(shop, batch_machine):
    from urllib.parse import parse_qs, urlsplit

    from tests.integration.helpers import call
    from treue.handlers import batches

    auth = shop["auth"]["partner"]
    for refused in ("", {}, {"content_length": 0}, {"content_length": 20_000_001}, {"content_length": "100"}):
        status, problem, _ = call(batches, "batches/post_upload.json", auth, body=refused)
        assert status == 422 and problem["errors"][0]["field"] in ("", "content_length"), (refused, problem)
    status, upload, _ = call(batches, "batches/post_upload.json", auth, body={"content_length": 1234})
    assert status == 201, upload
    signed = parse_qs(urlsplit(upload["url"]).query)["X-Amz-SignedHeaders"][0].split(";")
    assert "content-length" in signed and upload["headers"]["Content-Length"] == "1234"


def test_an_uploaded_object_over_the_limit_is_refused_before_it_is_read(shop, batch_machine, monkeypatch):
    from tests.integration.helpers import call
    from treue.handlers import batches
    from treue.logic import batches as batch_logic

    monkeypatch.setattr(batch_logic, "MAX_UPLOAD_BYTES", 1_000)
    status, upload, _ = call(batches, "batches/post_upload.json", shop["auth"]["partner"],
                             body={"content_length": 2_000})
    key = f"uploads/{shop['program_id']}/{upload['upload_id']}.csv"
    batch_machine["s3"].put_object(Bucket="treue-batches", Key=key, Body=b"reference,item_id\r\n" + b"x" * 1_981)
    event_body = {"upload_id": upload["upload_id"]}
    status, problem, _ = call(batches, "batches/post_batch_upload.json", shop["auth"]["partner"], body=event_body,
                              headers={"Idempotency-Key": "too-big"})
    assert status == 400 and "larger than" in problem["detail"], problem
