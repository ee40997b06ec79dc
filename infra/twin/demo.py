"""``make demo``: a scripted walk-through against the running twin (one is started when none runs).

Enrolls a member, accrues points by API and by queue, shows the balance and the statement.
"""

from __future__ import annotations

import argparse
import json
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


def _call(state, method, path, body=None, scope="partner"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        state["url"] + path, data=data, method=method,
        headers={"Authorization": f"Bearer {state['api_keys'][scope]}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def step(title: str) -> None:
    print(f"\n== {title}")


def walk(state: dict) -> None:
    import boto3

    run = uuid.uuid4().hex[:8]
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
    message = {"program_id": state["program_id"], "member": {"email": member["email"]},
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
    print("\nDemo complete.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.twin.demo")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--state-dir", default=".treue")
    args = parser.parse_args(argv)
    state_file = Path(args.state_dir) / "local.json"
    started = None
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if not _alive(state):
        print(f"No twin running; starting one on port {args.port} …")
        started = subprocess.Popen(
            [sys.executable, "-m", "infra.twin", "--port", str(args.port), "--state-dir", args.state_dir],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 120
        while True:
            state = json.loads(state_file.read_text()) if state_file.exists() else {}
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
