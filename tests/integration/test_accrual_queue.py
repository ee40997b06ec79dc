import copy
import json

import boto3
import pytest

from tests.integration.conftest import REGION
from tests.integration.helpers import enroll, member_call
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.handlers import accrual, accrual_queue


@pytest.fixture
def dlq(aws, monkeypatch):
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="accrual-dlq")["QueueUrl"]
    monkeypatch.setenv("ACCRUAL_DLQ_URL", url)
    runtime.reset()
    return sqs, url


def batch(*bodies):
    sample = load_event("accrual_queue/batch.json")
    records = []
    for i, body in enumerate(bodies):
        r = copy.deepcopy(sample["Records"][0])
        r["messageId"] = f"msg-{i}"
        r["body"] = body if isinstance(body, str) else json.dumps(body)
        records.append(r)
    return {"Records": records}


def message(program, txn, value=2500, member=None):
    return {
        "program_id": program["program_id"],
        "member": member or {"email": "ada@example.com"},
        "purchase": {"transaction_id": txn, "amount": {"value": value, "currency": "EUR"},
                     "occurred_at": "2026-11-01T10:00:00Z"},
    }


def dead_letters(sqs, url):
    out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return [(m["Body"], {k: v["StringValue"] for k, v in m["MessageAttributes"].items()})
            for m in out.get("Messages", [])]


def balance(program, mid):
    return member_call(accrual, "accrual/get_balance.json", program["auth"]["partner"], mid, "/balance")[1]


def test_the_sample_batch_accrues_good_messages_and_dead_letters_the_bad(program, dlq):
    sqs, url = dlq
    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    event = load_event("accrual_queue/batch.json")
    for r in event["Records"][:2]:
        body = json.loads(r["body"])
        body["program_id"] = program["program_id"]
        r["body"] = json.dumps(body)
    result = accrual_queue.handler(event, LambdaContext())
    assert result == {"batchItemFailures": []}
    assert balance(program, mid)["available"] == 129
    parked = dead_letters(sqs, url)
    reasons = {attrs["treue-error-type"] for _, attrs in parked}
    assert reasons == {"malformed-message", "member-not-found"}
    assert {attrs["treue-source-message-id"] for _, attrs in parked} == {r["messageId"] for r in event["Records"][1:]}
    assert "this is not json" in [body for body, _ in parked]


def test_every_message_delivered_three_times_is_credited_once(program, dlq):
    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    messages = [message(program, f"shop-{i}", 1000) for i in range(10)]
    for _ in range(3):
        assert accrual_queue.handler(batch(*messages), LambdaContext()) == {"batchItemFailures": []}
    b = balance(program, mid)
    assert b["available"] == 100 and b["lifetime_earned"] == 100
    assert dead_letters(*dlq) == []


def test_http_and_queue_share_exactly_once(program, dlq):
    from tests.integration.helpers import buy, purchase

    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    purchase(program["auth"]["partner"], mid, {**buy("txn-1", 2500), "occurred_at": "2026-11-01T10:00:00Z"})
    assert accrual_queue.handler(batch(message(program, "txn-1")), LambdaContext()) == {"batchItemFailures": []}
    assert balance(program, mid)["available"] == 25
    # same id, different amount: a conflict, parked with its reason, nothing credited
    accrual_queue.handler(batch(message(program, "txn-1", 9900)), LambdaContext())
    assert balance(program, mid)["available"] == 25
    [(_, attrs)] = dead_letters(*dlq)
    assert attrs["treue-error-type"] == "idempotency-conflict"


@pytest.mark.parametrize(
    "body, reason",
    [
        ("{", "malformed-message"),
        ({"purchase": {"transaction_id": "t"}}, "malformed-message"),
        ({"member": {}}, "malformed-message"),
        ({"member": {"email": "a@example.com", "phone": "+4915112345678"}}, "malformed-message"),
        ({"program_id": "prg_unknown"}, "program-not-found"),
        ({"member": {"email": "stranger@example.com"}}, "member-not-found"),
        ({"purchase": {"transaction_id": "t", "amount": {"value": 1, "currency": "USD"},
                       "occurred_at": "2026-11-01T10:00:00Z"}}, "currency-mismatch"),
    ],
)
def test_messages_that_can_never_succeed_are_dead_lettered_with_their_reason(program, dlq, body, reason):
    enroll(program["auth"]["partner"], {"email": "a@example.com"})
    if isinstance(body, dict):
        body = {**message(program, "t-1", member={"email": "a@example.com"}), **body}
    assert accrual_queue.handler(batch(body), LambdaContext()) == {"batchItemFailures": []}
    [(parked_body, attrs)] = dead_letters(*dlq)
    assert attrs["treue-error-type"] == reason and attrs["treue-error-reason"]
    assert parked_body == (body if isinstance(body, str) else json.dumps(body))


def test_transient_failures_are_retried_not_dead_lettered(program, dlq, monkeypatch):
    from treue.errors import Contention
    from treue.logic import points

    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    real = points.accrue
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise Contention("throttled")
        return real(*args, **kwargs)

    monkeypatch.setattr(points, "accrue", flaky)
    result = accrual_queue.handler(batch(message(program, "a"), message(program, "b")), LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert balance(program, mid)["available"] == 25
    assert dead_letters(*dlq) == []
    # redelivery after the visibility timeout succeeds
    assert accrual_queue.handler(batch(message(program, "a")), LambdaContext()) == {"batchItemFailures": []}
    assert balance(program, mid)["available"] == 50
