"""``make demo``: a scripted walk-through against the running twin (one is started when none runs).

Enrolls a member, accrues points by API and by queue, shows the balance and the statement; then
spends points on a gift card, a voucher (redeemed at the till) and a donation, lets the simulated
provider fail one order, and prints each order's status history.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _alive(state: dict) -> bool:
    try:
        with urllib.request.urlopen(state["url"] + "/v1/openapi.json", timeout=2) as r:
            return r.status == 200
    except (OSError, KeyError):
        return False


def _call(state, method, path, body=None, scope="partner", headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        state["url"] + path, data=data, method=method,
        headers={"Authorization": f"Bearer {state['api_keys'][scope]}", "Content-Type": "application/json",
                 **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def step(title: str) -> None:
    print(f"\n== {title}")


def walk(state: dict) -> None:
    from infra.twin.receiver import Receiver

    run = uuid.uuid4().hex[:8]
    receiver = Receiver(echo=True).start()
    step(f"Register a webhook endpoint: a local receiver that verifies signatures ({receiver.url})")
    status, endpoint = _call(state, "POST", "/v1/webhooks", {"url": receiver.url, "event_types": ["*"],
                                                              "description": "make demo"})
    assert status == 201, endpoint
    receiver.secrets.append(endpoint["secret"])
    print(f"   {status}  id={endpoint['id']}  secret={endpoint['secret'][:12]}… (shown once)")
    try:
        _walk(state, run, receiver)
    finally:
        _call(state, "DELETE", f"/v1/webhooks/{endpoint['id']}")
        receiver.stop()


def _walk(state: dict, run: str, receiver) -> None:
    import boto3

    step("Enroll a member (POST /v1/members)")
    status, member = _call(state, "POST", "/v1/members",
                           {"email": f"ada.{run}@example.com", "name": "Ada Lovelace", "locale": "en-GB"})
    assert status == 201, member
    print(f"   {status}  id={member['id']}  card={member['card_number']}  qr={member['qr_token']}")
    mid = member["id"]

    step("Accrue by API: a 49.99 EUR purchase (POST /v1/members/{id}/purchases)")
    purchase = {"transaction_id": f"pos-{run}-1", "amount": {"value": 4999, "currency": "EUR"},
                "occurred_at": "2026-11-20T10:00:00Z"}
    status, body = _call(state, "POST", f"/v1/members/{mid}/purchases", purchase)
    assert status == 200, body
    print(f"   {status}  points_earned={body['points_earned']}  available={body['balance']['available']}")
    status, body = _call(state, "POST", f"/v1/members/{mid}/purchases", purchase)
    print(f"   replay of the same transaction: {status}  replayed={body['replayed']}  "
          f"available={body['balance']['available']}")

    step("Accrue by queue: a 129.00 EUR web-shop order via SQS")
    sqs = boto3.client("sqs", endpoint_url=state["aws_endpoint"], region_name=state["region"],
                       aws_access_key_id="twin", aws_secret_access_key="twin")
    # no program_id: the program is the one the message's SenderId (moto's fixed sender) is registered to
    message = {"member": {"email": member["email"]},
               "purchase": {"transaction_id": f"shop-{run}-1", "amount": {"value": 12900, "currency": "EUR"},
                            "occurred_at": "2026-11-21T18:30:00Z"}}
    sqs.send_message(QueueUrl=state["queues"]["accrual"], MessageBody=json.dumps(message))
    deadline = time.monotonic() + 30
    balance = {}
    while time.monotonic() < deadline:
        _, balance = _call(state, "GET", f"/v1/members/{mid}/balance")
        if balance["available"] >= 49 + 129:
            break
        time.sleep(0.3)
    assert balance["available"] == 178, balance
    print(f"   balance: {balance}")

    step("Goodwill adjustment by an admin key (POST /v1/members/{id}/adjustments)")
    status, body = _call(state, "POST", f"/v1/members/{mid}/adjustments",
                         {"points": 22, "reason": "welcome bonus", "reference": f"bonus-{run}"}, scope="admin")
    assert status == 200, body
    print(f"   {status}  available={body['balance']['available']}")

    step("Statement, newest first (GET /v1/members/{id}/ledger)")
    status, statement = _call(state, "GET", f"/v1/members/{mid}/ledger", scope="finance")
    for e in statement["entries"]:
        print(f"   {e['created_at']}  {e['type']:<10} {e['points']:>+6}  {e['reference']:<22} {e['reason']}")
    assert [e["points"] for e in statement["entries"]] == [22, 129, 49]
    redeem(state, run, mid)
    brand_reward(state, run)
    brand_batch(state, run)
    books(state)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not receiver.events("batch.completed"):
        time.sleep(0.3)
    step("What the webhook receiver got (every delivery signature-checked)")
    counts: dict[str, int] = {}
    for event in receiver.events():
        counts[event["type"]] = counts.get(event["type"], 0) + 1
    print("   " + ", ".join(f"{n} × {t}" for t, n in sorted(counts.items())) + f";  rejected: {receiver.rejected}")
    print("\nDemo complete.")


def brand_reward(state: dict, run: str) -> None:
    step("A brand sends a gift card from its CRM, paid from the budget (POST /v1/rewards)")
    body = {"recipient": {"email": f"new.hire.{run}@example.com", "name": "Grace"}, "item_id": "kaffeekranz-eur",
            "face_value": 2000, "message": "Welcome aboard", "reference": f"crm-{run}"}
    status, accepted = _call(state, "POST", "/v1/rewards", body, headers={"Idempotency-Key": f"crm-{run}"})
    assert status == 202, accepted
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, reward = _call(state, "GET", f"/v1/rewards/{accepted['reward_id']}")
        if reward["status"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.2)
    funds = reward["funds"]
    print(f"   {status}  {accepted['reward_id']}  → {reward['status']}  paid "
          f"{_money({'value': funds['face'], 'currency': funds['currency']})} + fee "
          f"{_money({'value': funds['fee'], 'currency': funds['currency']})}  code {reward['codes'][0]['masked']}")


def brand_batch(state: dict, run: str, size: int = 1000) -> None:
    step(f"A brand thanks {size:,} people at once: one batch, paid from the budget (POST /v1/batches)")
    status, funded = _call(state, "POST", "/v1/finance/fundings", scope="admin",
                           headers={"Idempotency-Key": f"q4-funding-{run}"},
                           body={"amount": {"value": 600_000, "currency": "EUR"}, "reference": f"q4-{run}"})
    assert status in (200, 201), funded
    print(f"   {status}  budget topped up by {_money(funded['amount'])}")
    lines = [{"reference": f"q4-{run}-{n:04d}", "recipient": {"email": f"staff{n}.{run}@example.com"},
              "item_id": "kaffeekranz-eur", "face_value": 500, "message": "Thank you!"} for n in range(1, size + 1)]
    started = time.monotonic()
    status, batch = _call(state, "POST", "/v1/batches", {"name": f"Q4 thank-you {run}", "lines": lines},
                          headers={"Idempotency-Key": f"q4-batch-{run}"})
    assert status == 202, batch
    print(f"   {status}  {batch['batch_id']}  {batch['lines']:,} lines validated, "
          f"costing {_money(batch['cost'][0])}, held from the budget; issuing 20 at a time:")
    while True:
        _, view = _call(state, "GET", f"/v1/batches/{batch['batch_id']}")
        done = view["counts"]["issued"] + view["counts"]["failed"]
        filled = done * 30 // size
        print(f"\r   [{'#' * filled}{'.' * (30 - filled)}] {done:>5,} / {size:,}  {view['status']:<24}",
              end="", flush=True)
        if view["status"] in ("completed", "completed_with_failures", "halted"):
            break
        time.sleep(0.5)
    print(f"\n   {view['counts']['issued']:,} issued, {view['counts']['failed']} failed in "
          f"{time.monotonic() - started:.0f} s; every line: GET /v1/batches/{batch['batch_id']}/lines")


def _order(state, run, label, body):
    status, accepted = _call(state, "POST", "/v1/orders", body, headers={"Idempotency-Key": f"{label}-{run}"})
    assert status == 202, accepted
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, order = _call(state, "GET", f"/v1/orders/{accepted['order_id']}")
        if order["status"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.2)
    print(f"   order {order['order_id']}  {order['item']['name']}  {order['points']} points")
    for h in order["history"]:
        print(f"     {h['at']}  {h['status']:<10} {h.get('reason', '')}")
    return order


def _money(m: dict) -> str:
    return f"{m['value'] // 100}.{m['value'] % 100:02d} {m['currency']}"


def redeem(state: dict, run: str, mid: str) -> None:
    step("Top up 6,000 bonus points to spend (admin adjustment)")
    status, body = _call(state, "POST", f"/v1/members/{mid}/adjustments",
                         {"points": 6000, "reason": "demo: points to spend", "reference": f"spend-{run}"},
                         scope="admin")
    assert status == 200, body
    print(f"   available={body['balance']['available']}")

    step("Catalog priced in this program's points (GET /v1/catalog?country=DE&max_points=1000)")
    _, page = _call(state, "GET", "/v1/catalog?country=DE&max_points=1000&limit=5")
    for item in page["items"]:
        print(f"   {item['type']:<9} {item['id']:<26} from {item['min_points']} points")

    step("A 25 EUR gift card (POST /v1/orders, then GET /v1/orders/{id}/codes)")
    gift = _order(state, run, "gift", {"member_id": mid, "item_id": "nordlicht-books-eur", "denomination": 2500,
                                       "delivery": {"method": "email"}})
    assert gift["status"] == "COMPLETED", gift
    _, codes = _call(state, "GET", f"/v1/orders/{gift['order_id']}/codes")
    print(f"   revealed (and recorded): {codes['codes'][0]['code']}")

    step("A 10 EUR voucher, redeemed at the till (POST /v1/vouchers/validate, /redeem)")
    voucher = _order(state, run, "voucher", {"member_id": mid, "item_id": "voucher-10-off",
                                             "delivery": {"method": "api"}})
    code = _call(state, "GET", f"/v1/orders/{voucher['order_id']}/codes")[1]["codes"][0]["code"]
    _, v = _call(state, "POST", "/v1/vouchers/validate", {"code": code})
    print(f"   validate {v['code']}: {v['status']}, {_money(v['value'])} off from {_money(v['minimum_spend'])}")
    status, v = _call(state, "POST", "/v1/vouchers/redeem", {"code": code, "reference": f"till-{run}",
                                                              "purchase_amount": {"value": 6400, "currency": "EUR"}})
    print(f"   redeem: {status} {v['status']}")
    status, again = _call(state, "POST", "/v1/vouchers/redeem", {"code": code, "reference": f"till-{run}-other"})
    print(f"   a second redemption: {status} {again['detail']}")

    step("A 15 EUR donation (an order on a charity)")
    donation = _order(state, run, "donation", {"member_id": mid, "item_id": "kuestenwald", "face_value": 1500,
                                               "delivery": {"method": "link"}})
    _, receipt = _call(state, "GET", f"/v1/donations/{donation['donation_id']}")
    print(f"   receipt {receipt['receipt_number']} for {receipt['charity_name']} ({receipt['registration_id']})")

    step("The provider runs out of stock for one order: the order fails and its points come back")
    subprocess.run([sys.executable, "-m", "treue.cli", "simulate", "fault", "--program", state["program_id"],
                    "--order-key", f"stock-{run}", "--mode", "out_of_stock"], cwd=ROOT, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT / "functions"),
                                             "TREUE_STATE": str(Path(state.get("_state_file", ".treue/local.json")))})
    failed = _order(state, run, "stock", {"member_id": mid, "item_id": "stadtkino-eur", "denomination": 1000,
                                          "delivery": {"method": "email"}})
    assert failed["status"] == "FAILED", failed

    _, balance = _call(state, "GET", f"/v1/members/{mid}/balance")
    print(f"\n   balance: {balance}")
    assert balance["held"] == 0 and balance["available"] == 200 + 6000 - 2500 - 1000 - 1500, balance


def books(state: dict) -> None:
    """What finance sees after the walk: the budget that paid, the books, today's reconciliation, the audit chain."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    step("Finance: the EUR budget paid the gift cards, the donation and the batch (GET /v1/finance/budget)")
    _, budget = _call(state, "GET", "/v1/finance/budget?currency=EUR&limit=4", scope="finance")
    eur = budget["budgets"][0]
    print(f"   available {_money({'value': eur['available'], 'currency': 'EUR'})}, paid "
          f"{_money({'value': eur['paid_face_value'], 'currency': 'EUR'})} face value + "
          f"{_money({'value': eur['paid_fees'], 'currency': 'EUR'})} fees")
    for m in budget["movements"]:
        print(f"     {m['created_at']}  {m['type']:<7} {m['credit']:<17} {m['amount']:>8}  {m['reference']}")
    step("Finance: trial balance and today's reconciliation")
    _, trial = _call(state, "GET", "/v1/finance/trial-balance", scope="finance")
    for unit in trial["units"]:
        print(f"   {unit['unit']:<6} total {unit['total']}  "
              + "  ".join(f"{a['account']}={a['balance']}" for a in unit["accounts"] if a["balance"]))
    _, recon = _call(state, "GET", f"/v1/finance/reconciliation?date={day}", scope="finance")
    print(f"   reconciliation {day}: {recon['checked']['orders']} orders, {len(recon['differences'])} differences")
    assert trial["balanced"] and recon["differences"] == [], recon
    step("Audit trail: chained by the sealer schedule (treue audit verify)")
    verify = subprocess.run([sys.executable, "-m", "treue.cli", "audit", "verify", "--program", state["program_id"]],
                            cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "functions"),
                                 "TREUE_STATE": str(Path(state.get("_state_file", ".treue/local.json")))})
    result = json.loads(verify.stdout)
    print(f"   intact={result['intact']}  records={result['records_checked']}  head={result['head']['hash'][:16]}…")
    assert verify.returncode == 0, verify.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.twin.demo")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--state-dir", default=".treue")
    args = parser.parse_args(argv)
    state_file = Path(args.state_dir) / "local.json"
    started = None
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    state["_state_file"] = str(state_file.resolve())
    if not _alive(state):
        print(f"No twin running; starting one on port {args.port} …")
        started = subprocess.Popen(
            [sys.executable, "-m", "infra.twin", "--port", str(args.port), "--state-dir", args.state_dir],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 120
        while True:
            state = json.loads(state_file.read_text()) if state_file.exists() else {}
            state["_state_file"] = str(state_file.resolve())
            if _alive(state):
                break
            if started.poll() is not None or time.monotonic() > deadline:
                print(started.stderr.read() if started.poll() is not None else "timed out", file=sys.stderr)
                return 1
            time.sleep(0.3)
    print(f"Twin at {state['url']}, program {state['program_id']}")
    try:
        walk(state)
    finally:
        if started:
            started.terminate()
            started.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
