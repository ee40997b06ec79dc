"""The local twin over real HTTP: the README quickstart, the queue path, errors and keys."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.e2e


def purchase(txn, value):
    return {"transaction_id": txn, "amount": {"value": value, "currency": "EUR"},
            "occurred_at": "2026-11-01T10:00:00Z"}


def enroll(twin, **body):
    status, _, member = twin.request("POST", "/v1/members", body or {"email": f"{uuid.uuid4().hex}@example.com"})
    assert status == 201, member
    return member


def test_quickstart_enroll_accrue_balance_statement(twin):
    member = enroll(twin, email="ada@example.com", name="Ada Lovelace")
    mid = member["id"]
    status, _, accrued = twin.request("POST", f"/v1/members/{mid}/purchases", purchase("pos-1001", 4999))
    assert status == 200 and accrued["points_earned"] == 49
    status, _, balance = twin.request("GET", f"/v1/members/{mid}/balance", key="finance")
    assert balance == {"available": 49, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                       "lifetime_earned": 49, "lifetime_redeemed": 0}
    status, _, found = twin.request("GET", f"/v1/members?card_number={member['card_number']}")
    assert [m["id"] for m in found["items"]] == [mid]
    status, _, statement = twin.request("GET", f"/v1/members/{mid}/ledger")
    assert [(e["type"], e["points"], e["reference"]) for e in statement["entries"]] == [("earn", 49, "pos-1001")]


def test_queue_accrual_reaches_the_ledger_and_bad_messages_reach_the_dlq(twin):
    member = enroll(twin)
    sqs = twin.sqs()
    queue = twin.state["queues"]["accrual"]
    body = {"program_id": twin.state["program_id"], "member": {"email": member["email"]},
            "purchase": purchase("shop-1", 12900)}
    for _ in range(3):  # duplicate delivery: credited once
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=queue, MessageBody="not json at all")
    # the twin's one SenderId is the demo program's registered sender: naming another program is refused
    forged = {**body, "program_id": "prg_01another000000000000000", "purchase": purchase("shop-2", 500_000)}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(forged))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, _, b = twin.request("GET", f"/v1/members/{member['id']}/balance")
        if b["available"]:
            break
        time.sleep(0.2)
    dlq = twin.state["dead_letter_queues"]["accrual"]
    parked = []
    while time.monotonic() < deadline and len(parked) < 2:
        parked += sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1,
                                      MaxNumberOfMessages=10).get("Messages", [])
    time.sleep(1.5)
    _, _, b = twin.request("GET", f"/v1/members/{member['id']}/balance")
    assert b["available"] == 129
    reasons = {m["Body"]: m["MessageAttributes"]["treue-error-type"]["StringValue"] for m in parked}
    assert reasons == {"not json at all": "malformed-message", json.dumps(forged): "program-mismatch"}


def test_auth_errors_are_problem_json(twin):
    cases = [
        (None, "GET", "/v1/members/mbr_x/balance", 401, "unauthenticated"),
        ("trk_key_01nope0000000000000000000_" + "x" * 43, "GET", "/v1/members/mbr_x/balance", 401, "unauthenticated"),
        ("partner", "POST", "/v1/members/mbr_01m8600vs1kfrsqaawesws1vt9/adjustments", 403, "forbidden"),
        ("finance", "POST", "/v1/members", 403, "forbidden"),
        ("partner", "GET", "/v1/nothing-here", 404, "no-such-route"),
        ("partner", "DELETE", "/v1/members", 404, "no-such-route"),
    ]
    for key, method, path, status, slug in cases:
        got, headers, problem = twin.request(method, path, body={} if method == "POST" else None, key=key)
        assert (got, problem["type"].rsplit("/", 1)[-1]) == (status, slug), (method, path, problem)
        assert headers["Content-Type"] == "application/problem+json"


def test_bad_input_over_http_is_4xx(twin):
    mid = enroll(twin)["id"]
    for path in ("/v1/members", f"/v1/members/{mid}/purchases"):
        for raw in (b"{", b"[]", b"\xff\xfe", b'{"email": 5}', b"x" * 200_000):
            status, headers, problem = twin.request("POST", path, raw=raw)
            assert 400 <= status < 500 and headers["Content-Type"] == "application/problem+json", (path, raw[:10])


def test_revoked_keys_stop_working_at_once(twin):
    created = twin.treue("key", "create", "--program", twin.state["program_id"], "--scope", "partner")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert twin.request("GET", "/v1/members?email=a@example.com", key=key["api_key"])[0] == 200
    revoked = twin.treue("key", "revoke", key["key_id"])
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked"] is True
    assert twin.request("GET", "/v1/members?email=a@example.com", key=key["api_key"])[0] == 401


def test_programs_created_by_the_cli_are_isolated(twin):
    other = twin.new_program("Other shop", currency="CHF", country=None)
    mid = enroll(twin)["id"]
    status, _, problem = twin.request("GET", f"/v1/members/{mid}", key=other["api_keys"]["partner"])
    assert status == 404 and problem["type"].endswith("/member-not-found")
    chf = {**purchase("x-1", 100), "amount": {"value": 100, "currency": "CHF"}}
    status, _, problem = twin.request("POST", f"/v1/members/{mid}/purchases", chf, key=other["api_keys"]["partner"])
    assert status == 404


def test_concurrent_purchases_over_http_add_up(twin):
    mid = enroll(twin)["id"]

    def buy(i):
        return twin.request("POST", f"/v1/members/{mid}/purchases", purchase(f"par-{i}", 1000))[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(buy, range(24))) == {200}
    assert twin.request("GET", f"/v1/members/{mid}/balance")[2]["available"] == 240


def test_the_openapi_document_is_served_without_a_key(twin):
    status, _, doc = twin.request("GET", "/v1/openapi.json", key=None)
    assert status == 200 and doc["openapi"].startswith("3.") and "/v1/members/{member_id}/purchases" in doc["paths"]
