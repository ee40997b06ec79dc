"""Orders through the handlers, with the payout state machine of infra/payout.asl.json executed by moto.

Every test ends by checking the member's points: nothing stays held, and available is exactly what
the orders that completed should have left.
"""

import time

import pytest

from tests.integration.helpers import buy, call, enroll, purchase
from tests.support import LambdaContext, api_event, body_of
from treue import runtime
from treue.handlers import accrual, catalog, orders, vouchers
from treue.providers.simulated import SimulatedProvider, set_fault


def member_with(shop, points: int, **extra) -> str:
    status, body, _ = enroll(shop["auth"]["partner"], {"email": f"m{time.monotonic_ns()}@example.com", **extra})
    assert status == 201, body
    member_id = body["id"]
    if points:
        status, body, _ = purchase(shop["auth"]["partner"], member_id, buy(f"t-{time.monotonic_ns()}", points * 100))
        assert status == 200, body
    return member_id


def place(shop, body, key=None, scope="partner", idempotency=True):
    headers = {"Idempotency-Key": key or f"k-{time.monotonic_ns()}"} if idempotency else {}
    event = api_event("orders/post_order.json", body=body, auth=shop["auth"][scope])
    event["headers"].pop("Idempotency-Key")
    event["multiValueHeaders"].pop("Idempotency-Key")
    for k, v in headers.items():
        event["headers"][k] = v
        event["multiValueHeaders"][k] = [v]
    response = orders.handler(event, LambdaContext())
    return response["statusCode"], body_of(response)


def get_order(shop, order_id, scope="partner"):
    return call(orders, "orders/get_order.json", shop["auth"][scope], path=f"/v1/orders/{order_id}",
                path_parameters={"order_id": order_id})[:2]


def wait(shop, order_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, order = get_order(shop, order_id)
        if order["status"] in ("COMPLETED", "FAILED"):
            return order
        time.sleep(0.05)
    raise AssertionError(f"order {order_id} did not finish: {order}")


def balance(shop, member_id):
    status, body, _ = call(accrual, "accrual/get_balance.json", shop["auth"]["partner"],
                           path=f"/v1/members/{member_id}/balance", path_parameters={"member_id": member_id})
    assert status == 200
    return body


def order_body(member_id, item_id, value=None, quantity=1, method="email", **kw):
    body = {"member_id": member_id, "item_id": item_id, "quantity": quantity, "delivery": {"method": method}}
    if value is not None:
        body["face_value"] = value
    body.update(kw)
    return body


def voucher_call(shop, sample, body, scope="partner"):
    status, out, _ = call(vouchers, f"vouchers/{sample}.json", shop["auth"][scope], body=body)
    return status, out


def reveal(shop, order_id):
    return call(orders, "orders/get_codes.json", shop["auth"]["partner"], path=f"/v1/orders/{order_id}/codes",
                path_parameters={"order_id": order_id})[:2]


# ---------------------------------------------------------------- catalog


def test_the_catalog_is_priced_in_program_points_and_filters(shop):
    auth = shop["auth"]["partner"]
    status, page, _ = call(catalog, "catalog/list_catalog.json", auth, query={"type": "gift_card", "country": "DE"})
    assert status == 200
    assert page["items"] and all(i["type"] == "gift_card" and "DE" in i["countries"] for i in page["items"])
    books = next(i for i in page["items"] if i["id"] == "nordlicht-books-eur")
    assert books["denominations"][1] == {"face_value": 2500, "points": 2500}  # 1 point = 1 cent
    status, item, _ = call(catalog, "catalog/get_item.json", auth, path="/v1/catalog/redwood-outfitters-usd",
                           path_parameters={"item_id": "redwood-outfitters-usd"})
    assert status == 200 and item["open_value"]["min_points"] == 920  # 10 USD at 0.92
    status, page, _ = call(catalog, "catalog/list_catalog.json", auth, query={"currency": "SEK"})
    assert status == 200 and page["items"] == []  # no SEK rate configured: not offered
    status, page, _ = call(catalog, "catalog/list_catalog.json", auth, query={"q": "books", "max_points": "1000"})
    assert [i["id"] for i in page["items"]] == ["nordlicht-books-eur"]


def test_catalog_pages_with_a_cursor_cover_everything_once(shop):
    auth = shop["auth"]["partner"]
    seen, cursor = [], None
    while True:
        query = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        status, page, _ = call(catalog, "catalog/list_catalog.json", auth, query=query)
        assert status == 200
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and len(seen) >= 30
    status, body, _ = call(catalog, "catalog/list_catalog.json", auth, query={"cursor": "garbage!"})
    assert status == 400


def test_a_warm_catalog_function_does_not_read_the_catalog_again(shop, monkeypatch):
    auth = shop["auth"]["partner"]
    call(catalog, "catalog/list_catalog.json", auth, query={})
    reads = []
    original = runtime.orders().catalog_items
    monkeypatch.setattr(runtime.orders(), "catalog_items", lambda **kw: reads.append(1) or original(**kw))
    for _ in range(5):
        assert call(catalog, "catalog/list_catalog.json", auth, query={})[0] == 200
    assert reads == []


# ---------------------------------------------------------------- reward types


def test_a_gift_card_order_completes_and_captures_the_points(shop):
    member = member_with(shop, 5000)
    status, accepted = place(shop, order_body(member, "nordlicht-books-eur", denomination=2500))
    assert status == 202 and accepted["status"] == "PENDING" and accepted["points"] == 2500
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "COMPLETED", order
    assert [h["status"] for h in order["history"]] == ["PENDING", "PROCESSING", "ISSUED", "COMPLETED"]
    assert order["codes"][0]["masked"].startswith("***-****-****-****-")
    assert order["delivered"]["method"] == "email"
    assert balance(shop, member) == {"available": 2500, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                                     "lifetime_earned": 5000, "lifetime_redeemed": 2500}
    status, revealed = reveal(shop, accepted["order_id"])
    assert status == 200 and revealed["codes"][0]["code"].startswith("SIM-")
    assert revealed["codes"][0]["code"].endswith(order["codes"][0]["masked"][-4:])
    assert runtime.orders().reveals(shop["program_id"], accepted["order_id"])[0]["actor"].startswith("partner:")


def test_a_voucher_order_then_the_till_redeems_it_once(shop):
    member = member_with(shop, 3000)
    status, accepted = place(shop, order_body(member, "voucher-10-off", method="api"))
    assert status == 202
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "COMPLETED" and balance(shop, member)["available"] == 2000
    code = reveal(shop, accepted["order_id"])[1]["codes"][0]["code"]
    status, v = voucher_call(shop, "validate", {"code": code.lower().replace("-", " ")})
    assert status == 200 and v["status"] == "ACTIVE" and v["value"] == {"value": 1000, "currency": "EUR"}
    redeem = {"code": code, "reference": "till-1", "purchase_amount": {"value": 4000, "currency": "EUR"}}
    status, out = voucher_call(shop, "redeem", redeem)
    assert status == 409 and out["reason"] == "minimum_spend"
    redeem["purchase_amount"]["value"] = 6000
    status, out = voucher_call(shop, "redeem", redeem)
    assert status == 200 and out["status"] == "REDEEMED" and out["replayed"] is False
    status, out = voucher_call(shop, "redeem", redeem)
    assert status == 200 and out["replayed"] is True
    status, out = voucher_call(shop, "redeem", {**redeem, "reference": "till-2"})
    assert status == 409 and out["reason"] == "redeemed"
    status, out = voucher_call(shop, "void", {"code": code, "reason": "too late"})
    assert status == 409
    typo = code[:-1] + ("2" if code[-1] != "2" else "3")
    assert voucher_call(shop, "validate", {"code": typo})[0] == 404


def test_a_donation_records_a_receipt_and_totals(shop):
    member = member_with(shop, 2000)
    status, accepted = place(shop, order_body(member, "kuestenwald", 1500, method="link"))
    assert status == 202
    order = wait(shop, accepted["order_id"])
    assert order["status"] == "COMPLETED" and order["donation_id"].startswith("don_")
    status, receipt, _ = call(orders, "orders/get_donation.json", shop["auth"]["finance"],
                              path=f"/v1/donations/{order['donation_id']}",
                              path_parameters={"donation_id": order["donation_id"]})
    assert status == 200 and receipt["amount"] == 1500 and receipt["registration_id"] == "VR-20417-HB"
    status, totals, _ = call(orders, "orders/donation_totals.json", shop["auth"]["finance"])
    assert totals["charities"] == [{"charity_id": "kuestenwald", "charity_name": "Küstenwald Aufforstung e.V.",
                                    "currency": "EUR", "total": 1500, "donations": 1}]
    assert balance(shop, member)["available"] == 500


# ---------------------------------------------------------------- provider failures


@pytest.mark.parametrize(
    ("mode", "times", "status", "reason"),
    [
        ("timeout", 1, "COMPLETED", None),
        ("5xx", 2, "COMPLETED", None),
        ("out_of_stock", None, "FAILED", "out_of_stock"),
        ("rejected", None, "FAILED", "provider_rejected"),
        ("timeout", None, "FAILED", "provider_timeout"),
    ],
)
def test_injected_provider_failures_end_exactly_once(shop, store, mode, times, status, reason):
    member = member_with(shop, 4000)
    key = f"fault-{mode}-{times}"
    set_fault(store.ddb, store.table, shop["program_id"], mode, order_reference=key, times=times)
    _, accepted = place(shop, order_body(member, "nordlicht-books-eur", 2500), key=key)
    order = wait(shop, accepted["order_id"])
    assert order["status"] == status, order
    assert order.get("failure_reason") == reason
    provider = SimulatedProvider(store.ddb, store.table)
    issued = provider.status(shop["program_id"], accepted["order_id"])
    if status == "COMPLETED":
        assert issued.status == "ISSUED" and len(issued.cards) == 1
        assert balance(shop, member)["available"] == 1500
    else:
        assert issued is None or issued.status == "CANCELED"  # issued before the timeout: canceled again
        assert balance(shop, member)["available"] == 4000
    assert balance(shop, member)["held"] == 0


def test_a_brand_fault_fails_every_order_of_that_brand(shop, store):
    member = member_with(shop, 6000)
    set_fault(store.ddb, store.table, shop["program_id"], "out_of_stock", brand="Stadtkino")
    _, a = place(shop, order_body(member, "stadtkino-eur", 1000), key="brand-a")
    _, b = place(shop, order_body(member, "nordlicht-books-eur", 1000), key="brand-b")
    assert wait(shop, a["order_id"])["status"] == "FAILED"
    assert wait(shop, b["order_id"])["status"] == "COMPLETED"
    assert balance(shop, member) | {"lifetime_earned": 0} == {
        "available": 5000, "pending": 0, "held": 0, "debt": 0, "expiring": [],
        "lifetime_earned": 0, "lifetime_redeemed": 1000}


# ---------------------------------------------------------------- idempotency, replays, cancel


def test_the_same_key_and_body_answers_the_same_order_and_another_body_conflicts(shop):
    member = member_with(shop, 5000)
    body = order_body(member, "nordlicht-books-eur", 1000)
    status, first = place(shop, body, key="same-key")
    status2, again = place(shop, body, key="same-key")
    assert status == status2 == 202 and again["order_id"] == first["order_id"] and again["replayed"] is True
    status, conflict = place(shop, {**body, "face_value": 2500}, key="same-key")
    assert status == 409 and conflict["type"].endswith("idempotency-conflict")
    wait(shop, first["order_id"])
    assert balance(shop, member)["available"] == 4000


def test_a_repeated_execution_start_pays_nothing_twice(shop, payout):
    member = member_with(shop, 5000)
    _, accepted = place(shop, order_body(member, "nordlicht-books-eur", 1000))
    order = wait(shop, accepted["order_id"])
    runtime.starter().start(runtime.orders().require(shop["program_id"], accepted["order_id"]))
    place(shop, order_body(member, "nordlicht-books-eur", 1000), key="again")  # unrelated second order
    time.sleep(0.3)
    status, entries, _ = call(accrual, "accrual/get_ledger.json", shop["auth"]["partner"],
                              path=f"/v1/members/{member}/ledger", path_parameters={"member_id": member})
    mine = {e["type"]: (e["points"], e["held"]) for e in entries["entries"] if e["reference"] == order["order_id"]}
    assert mine == {"hold": (-1000, 1000), "capture": (0, -1000)}
    sfn = payout["sfn"]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=payout["state_machine"])["executions"]]
    assert names.count(order["order_id"]) == 1


def test_cancel_a_completed_voucher_order_refunds_and_voids(shop):
    member = member_with(shop, 3000)
    _, accepted = place(shop, order_body(member, "voucher-5-off", method="api", quantity=2))
    wait(shop, accepted["order_id"])
    code = reveal(shop, accepted["order_id"])[1]["codes"][0]["code"]
    status, out, _ = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                          path=f"/v1/orders/{accepted['order_id']}/cancel",
                          path_parameters={"order_id": accepted["order_id"]})
    assert status == 200 and out["status"] == "CANCELED"
    assert balance(shop, member) | {"lifetime_earned": 0} == {
        "available": 3000, "pending": 0, "held": 0, "debt": 0, "expiring": [],
        "lifetime_earned": 0, "lifetime_redeemed": 0}
    assert voucher_call(shop, "validate", {"code": code})[1]["status"] == "VOID"
    status, again, _ = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                            path=f"/v1/orders/{accepted['order_id']}/cancel",
                            path_parameters={"order_id": accepted["order_id"]})
    assert status == 200 and balance(shop, member)["available"] == 3000  # a second cancel refunds nothing


def test_a_redeemed_voucher_and_a_donation_cannot_be_canceled(shop):
    member = member_with(shop, 3000)
    _, v = place(shop, order_body(member, "voucher-5-off", method="api"))
    wait(shop, v["order_id"])
    code = reveal(shop, v["order_id"])[1]["codes"][0]["code"]
    assert voucher_call(shop, "redeem", {"code": code, "reference": "r1",
                                         "purchase_amount": {"value": 2000, "currency": "EUR"}})[0] == 200
    _, d = place(shop, order_body(member, "kuestenwald", 500, method="api"))
    wait(shop, d["order_id"])
    for oid in (v["order_id"], d["order_id"]):
        status, out, _ = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                              path=f"/v1/orders/{oid}/cancel", path_parameters={"order_id": oid})
        assert status == 409 and out["type"].endswith("not-cancelable"), out
    assert balance(shop, member)["available"] == 2000


def test_cancel_a_gift_card_cancels_it_at_the_provider(shop, store):
    member = member_with(shop, 3000)
    _, accepted = place(shop, order_body(member, "nordlicht-books-eur", 1000))
    wait(shop, accepted["order_id"])
    status, out, _ = call(orders, "orders/cancel_order.json", shop["auth"]["admin"],
                          path=f"/v1/orders/{accepted['order_id']}/cancel",
                          path_parameters={"order_id": accepted["order_id"]})
    assert status == 200 and out["status"] == "CANCELED"
    issued = SimulatedProvider(store.ddb, store.table).status(shop["program_id"], accepted["order_id"])
    assert issued.status == "CANCELED"
    assert balance(shop, member)["available"] == 3000


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"item_id": "no-such-item", "face_value": 1000}, 404, "item-not-found"),
        ({"item_id": "nordlicht-books-eur", "face_value": 1234}, 422, "not-orderable"),
        ({"item_id": "thames-books-gbp", "face_value": 1000}, 422, "not-orderable"),  # GB only
        ({"item_id": "nordlicht-books-eur", "face_value": 5000, "quantity": 11}, 422, "not-orderable"),
        ({"item_id": "nordlicht-books-eur", "face_value": 5000, "quantity": 2}, 422, "insufficient-points"),
        ({"item_id": "nordlicht-books-eur", "face_value": "5000"}, 422, "validation-failed"),
        ({"item_id": "fahrwerk-mobility-eur", "face_value": 2000, "delivery": {"method": "link"}}, 422,
         "not-orderable"),
    ],
)
def test_orders_that_cannot_be_placed_are_refused_with_a_reason_and_hold_nothing(shop, body, status, slug):
    member = member_with(shop, 6000)
    full = {**order_body(member, "x"), **body}
    got, out = place(shop, full)
    assert got == status and out["type"].endswith(slug), out
    assert balance(shop, member)["held"] == 0 and balance(shop, member)["available"] == 6000


def test_an_order_needs_an_idempotency_key_and_a_write_scope(shop):
    member = member_with(shop, 6000)
    status, out = place(shop, order_body(member, "nordlicht-books-eur", 1000), idempotency=False)
    assert status == 400 and out["header"] == "Idempotency-Key"
    status, out = place(shop, order_body(member, "nordlicht-books-eur", 1000), scope="finance")
    assert status == 403


def test_orders_of_another_program_are_not_found(shop, program):
    member = member_with(shop, 2000)
    _, accepted = place(shop, order_body(member, "nordlicht-books-eur", 1000))
    wait(shop, accepted["order_id"])
    status, out, _ = call(orders, "orders/get_order.json", program["auth"]["admin"],
                          path=f"/v1/orders/{accepted['order_id']}", path_parameters={"order_id": accepted["order_id"]})
    assert status == 404
    status, out, _ = call(orders, "orders/member_orders.json", shop["auth"]["partner"],
                          path=f"/v1/members/{member}/orders", path_parameters={"member_id": member})
    assert status == 200 and [o["order_id"] for o in out["items"]] == [accepted["order_id"]]
