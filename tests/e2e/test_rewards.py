"""Rewards on the twin over HTTP: gift cards, vouchers at the till, donations, provider failures, cancel.

Orders run through the payout state machine in moto's ASL interpreter, its tasks in the function
workers. After every test the member holds nothing and has exactly the points they should.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.e2e


def member_with(twin, points):
    status, _, member = twin.request("POST", "/v1/members", {"email": f"{uuid.uuid4().hex}@example.com"})
    assert status == 201
    status, _, out = twin.request("POST", f"/v1/members/{member['id']}/adjustments", key="admin",
                                  body={"points": points, "reason": "welcome bonus", "reference": uuid.uuid4().hex})
    assert status == 200, out
    return member["id"]


def order(twin, member_id, item_id, key=None, **fields):
    body = {"member_id": member_id, "item_id": item_id, "delivery": {"method": "email"}, **fields}
    status, headers, out = twin.request("POST", "/v1/orders", body,
                                        headers={"Idempotency-Key": key or uuid.uuid4().hex})
    assert status == 202, out
    assert headers["Location"] == f"/v1/orders/{out['order_id']}"
    return out


def finished(twin, order_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, out = twin.request("GET", f"/v1/orders/{order_id}")
        assert status == 200
        if out["status"] in ("COMPLETED", "FAILED"):
            return out
        time.sleep(0.1)
    raise AssertionError(f"order {order_id} still {out['status']}")


def balance(twin, member_id):
    return twin.request("GET", f"/v1/members/{member_id}/balance")[2]


def assert_points(twin, member_id, available):
    b = balance(twin, member_id)
    assert b["held"] == 0 and b["available"] == available, b


def test_a_gift_card_from_order_to_revealed_code(twin):
    member = member_with(twin, 5000)
    accepted = order(twin, member, "nordlicht-books-eur", denomination=2500)
    done = finished(twin, accepted["order_id"])
    assert done["status"] == "COMPLETED"
    assert [h["status"] for h in done["history"]] == ["PENDING", "PROCESSING", "ISSUED", "COMPLETED"]
    assert done["delivered"]["method"] == "email"
    status, _, codes = twin.request("GET", f"/v1/orders/{accepted['order_id']}/codes")
    assert status == 200 and codes["codes"][0]["code"].startswith("SIM-")
    assert_points(twin, member, 2500)
    status, _, listed = twin.request("GET", f"/v1/members/{member}/orders", key="finance")
    assert [o["order_id"] for o in listed["items"]] == [accepted["order_id"]]


def test_a_voucher_redeemed_once_at_the_till_under_concurrency(twin):
    member = member_with(twin, 2000)
    accepted = order(twin, member, "voucher-10-off", delivery={"method": "api"})
    assert finished(twin, accepted["order_id"])["status"] == "COMPLETED"
    code = twin.request("GET", f"/v1/orders/{accepted['order_id']}/codes")[2]["codes"][0]["code"]
    status, _, v = twin.request("POST", "/v1/vouchers/validate", {"code": code})
    assert status == 200 and v["status"] == "ACTIVE"

    def redeem(i):
        return twin.request("POST", "/v1/vouchers/redeem", {"code": code, "reference": f"till-{i}",
                                                            "purchase_amount": {"value": 5000, "currency": "EUR"}})[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(redeem, range(8)))
    assert sorted(statuses) == [200] + [409] * 7
    assert twin.request("POST", "/v1/vouchers/validate", {"code": code})[2]["status"] == "REDEEMED"
    assert_points(twin, member, 1000)


def test_a_donation_with_its_receipt(twin):
    member = member_with(twin, 1000)
    accepted = order(twin, member, "tafelrunde-hilfe", face_value=750, delivery={"method": "link"})
    done = finished(twin, accepted["order_id"])
    assert done["status"] == "COMPLETED"
    status, _, receipt = twin.request("GET", f"/v1/donations/{done['donation_id']}", key="finance")
    assert status == 200 and receipt["amount"] == 750 and receipt["charity_id"] == "tafelrunde-hilfe"
    totals = twin.request("GET", "/v1/donations/totals")[2]["charities"]
    assert any(t["charity_id"] == "tafelrunde-hilfe" and t["total"] >= 750 for t in totals)
    assert_points(twin, member, 250)


@pytest.mark.parametrize(
    ("mode", "times", "status", "reason"),
    [
        ("timeout", "1", "COMPLETED", None),
        ("5xx", "2", "COMPLETED", None),
        ("out_of_stock", None, "FAILED", "out_of_stock"),
        ("rejected", None, "FAILED", "provider_rejected"),
        ("timeout", None, "FAILED", "provider_timeout"),
        ("5xx", None, "FAILED", "provider_unavailable"),
    ],
)
def test_each_injected_provider_failure(twin, mode, times, status, reason):
    member = member_with(twin, 3000)
    key = uuid.uuid4().hex
    args = ["simulate", "fault", "--program", twin.state["program_id"], "--order-key", key, "--mode", mode]
    done = twin.treue(*args, *(["--times", times] if times else []))
    assert done.returncode == 0, done.stderr
    accepted = order(twin, member, "bergwerk-outdoor-eur", key=key, face_value=2000)
    out = finished(twin, accepted["order_id"])
    assert out["status"] == status and out.get("failure_reason") == reason, out
    assert_points(twin, member, 1000 if status == "COMPLETED" else 3000)
    if status == "FAILED":
        assert out["history"][-1] == {"status": "FAILED", "at": out["updated_at"], "reason": reason}
        assert twin.request("GET", f"/v1/orders/{accepted['order_id']}/codes")[0] == 409


def test_cancel_a_completed_gift_card_refunds_the_points(twin):
    member = member_with(twin, 3000)
    accepted = order(twin, member, "nordlicht-books-eur", denomination=1000)
    finished(twin, accepted["order_id"])
    status, _, out = twin.request("POST", f"/v1/orders/{accepted['order_id']}/cancel", {"reason": "wrong card"})
    assert status == 200 and out["status"] == "CANCELED" and out["canceled_reason"] == "wrong card"
    assert_points(twin, member, 3000)
    charity = order(twin, member, "kuestenwald", face_value=100)
    finished(twin, charity["order_id"])
    status, _, problem = twin.request("POST", f"/v1/orders/{charity['order_id']}/cancel", {"reason": "oops"})
    assert status == 409 and problem["type"].endswith("not-cancelable")
    assert_points(twin, member, 2900)


def test_replays_and_refusals_over_http(twin):
    member = member_with(twin, 1000)
    body = {"member_id": member, "item_id": "voucher-5-off", "delivery": {"method": "api"}}
    first = twin.request("POST", "/v1/orders", body, headers={"Idempotency-Key": "e2e-replay"})[2]
    status, _, again = twin.request("POST", "/v1/orders", body, headers={"Idempotency-Key": "e2e-replay"})
    assert status == 202 and again["order_id"] == first["order_id"] and again["replayed"] is True
    status, _, conflict = twin.request("POST", "/v1/orders", {**body, "quantity": 2},
                                       headers={"Idempotency-Key": "e2e-replay"})
    assert status == 409
    status, _, problem = twin.request("POST", "/v1/orders", body)
    assert status == 400 and problem["header"] == "Idempotency-Key"
    finished(twin, first["order_id"])
    assert_points(twin, member, 500)
