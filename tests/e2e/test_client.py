"""treue.client against the twin: the README's Python block runs as written, and the typed methods carry a
member from enrollment to a completed order, with replays, CSV, query parameters and problems."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid

import pytest

from tests.e2e.conftest import ROOT
from treue.client import ApiError, TreueClient

pytestmark = pytest.mark.e2e

PROBLEM = "https://treue.dev/problems/"


def readme_client_block() -> str:
    section = (ROOT / "README.md").read_text().split("### The Python client", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "one Python block under 'The Python client'"
    return blocks[0]


def test_the_readme_python_block_runs_against_the_twin(twin):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions"), "TREUE_URL": twin.url, "TREUE_KEY": twin.key("partner")}
    done = subprocess.run([sys.executable, "-c", readme_client_block()], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "200 25 25"
    assert lines[1] == f"422 {PROBLEM}insufficient-points"
    assert lines[2].startswith("Not enough available points | ") and len(lines[2]) > len("Not enough available "
                                                                                          "points | ")


def test_the_typed_methods_from_enrollment_to_a_completed_order(twin):
    partner, finance, admin = twin.api("partner"), twin.api("finance"), twin.api("admin")
    run = uuid.uuid4().hex[:8]
    email = f"client.{run}@example.com"
    member = partner.enroll_member({"email": email}, idempotency_key=f"enrol-{run}")
    again = partner.enroll_member({"email": email}, idempotency_key=f"enrol-{run}")
    assert (member.status, again.status, again["id"]) == (201, 200, member["id"])
    assert [m["id"] for m in partner.find_member(email=email)["items"]] == [member["id"]]
    admin.adjust_member_points(member["id"], {"points": 3000, "reason": "client test", "reference": f"c-{run}"})
    assert partner.get_member_balance(member["id"])["available"] == 3000

    order = partner.create_order({"member_id": member["id"], "item_id": "nordlicht-books-eur", "denomination": 2500,
                                  "delivery": {"method": "api"}})  # the Idempotency-Key is generated
    assert order.status == 202 and order["replayed"] is False
    deadline = time.monotonic() + 60
    while (seen := partner.get_order(order["order_id"]))["status"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline, seen
        time.sleep(0.3)
    assert seen["status"] == "COMPLETED"
    assert len(partner.reveal_order_codes(order["order_id"])["codes"]) == 1
    listed = partner.list_member_orders(member["id"], limit=1)
    assert [o["order_id"] for o in listed["items"]] == [order["order_id"]]

    today = time.strftime("%Y-%m-%d", time.gmtime())
    payouts = finance.list_payouts_csv(from_=today)
    assert payouts.status == 200 and payouts.headers["Content-Type"].startswith("text/csv")
    assert payouts.splitlines()[0].startswith("order_id,") and order["order_id"] in payouts
    assert finance.get_trial_balance()["units"] and finance.get_trial_balance_csv().startswith("unit,account,balance")

    with pytest.raises(ApiError) as missing:
        partner.get_order("ord_" + "0" * 26)
    assert missing.value.status == 404 and missing.value.type.startswith(PROBLEM)
    with pytest.raises(ApiError) as scope:
        finance.create_order({"member_id": member["id"], "item_id": "nordlicht-books-eur", "denomination": 2500,
                              "delivery": {"method": "api"}})
    assert scope.value.status == 403
    with pytest.raises(ApiError) as invalid:
        partner.accrue_purchase(member["id"], {"transaction_id": f"t-{run}", "amount": {"value": 1.5,
                                                                                      "currency": "EUR"}})
    assert invalid.value.status == 422 and invalid.value.errors
    with pytest.raises(ApiError) as unknown:
        TreueClient(twin.url, "trk_not_a_key").get_member(member["id"])
    assert unknown.value.status in (401, 403)
    assert TreueClient(twin.url, None).get_open_api_document()["openapi"].startswith("3.")
