import copy
import json

import boto3
import pytest

from tests.integration.conftest import REGION
from tests.integration.helpers import call, enroll, member_call
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core import keys
from treue.handlers import accrual, accrual_queue, queue_senders
from treue.logic import provisioning

SHOP_ROLE = "AROA3XFRBF535PLBIFPI4"  # the role of the sample batch's SenderId (AROA…:<session name>)
OTHER_ROLE = "AROA5KQZ7NOMWUDJ4XL2E"


@pytest.fixture
def dlq(aws, monkeypatch):
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="accrual-dlq")["QueueUrl"]
    monkeypatch.setenv("ACCRUAL_DLQ_URL", url)
    runtime.reset()
    return sqs, url


def register(program, principal_id, description="web shop order export"):
    """PUT /v1/queue-senders/{principal_id} with the program's admin key."""
    return call(queue_senders, "queue_senders/put_sender.json", program["auth"]["admin"],
                path=f"/v1/queue-senders/{principal_id}", path_parameters={"principal_id": principal_id},
                body={"description": description})


@pytest.fixture
def registered(program):
    """The sample batch's role is a queue sender of ``program``."""
    status, _, _ = register(program, SHOP_ROLE)
    assert status == 201
    return SHOP_ROLE


def another_program(store, name="Bäckerei Zwei"):
    created = provisioning.create_program(store, name, "EUR", runtime.now())
    auth = {}
    for scope, key in created["api_keys"].items():
        key_id, _ = keys.parse(key)
        auth[scope] = {"program_id": created["program_id"], "key_id": key_id, "scope": scope}
    return {**created, "auth": auth}


def batch(*bodies, sender=f"{SHOP_ROLE}:shop-export-1"):
    """An SQS event of the messages, each sent by ``sender`` (None: no SenderId attribute at all)."""
    sample = load_event("accrual_queue/batch.json")
    records = []
    for i, body in enumerate(bodies):
        r = copy.deepcopy(sample["Records"][0])
        r["messageId"] = f"msg-{i}"
        r["body"] = body if isinstance(body, str) else json.dumps(body)
        if sender is None:
            del r["attributes"]["SenderId"]
        else:
            r["attributes"]["SenderId"] = sender
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


def test_the_sample_batch_accrues_good_messages_and_dead_letters_the_bad(program, registered, dlq):
    sqs, url = dlq
    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    event = load_event("accrual_queue/batch.json")
    for r in event["Records"][:2]:
        body = json.loads(r["body"])
        if "program_id" in body:  # optional: when given, it is the sender's program
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


def test_every_message_delivered_three_times_is_credited_once(program, registered, dlq):
    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    messages = [message(program, f"shop-{i}", 1000) for i in range(10)]
    for _ in range(3):
        assert accrual_queue.handler(batch(*messages), LambdaContext()) == {"batchItemFailures": []}
    b = balance(program, mid)
    assert b["available"] == 100 and b["lifetime_earned"] == 100
    assert dead_letters(*dlq) == []


def test_http_and_queue_share_exactly_once(program, registered, dlq):
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
        ({"program_id": "prg_unknown"}, "program-mismatch"),
        ({"member": {"email": "stranger@example.com"}}, "member-not-found"),
        ({"purchase": {"transaction_id": "t", "amount": {"value": 1, "currency": "USD"},
                       "occurred_at": "2026-11-01T10:00:00Z"}}, "currency-mismatch"),
    ],
)
def test_messages_that_can_never_succeed_are_dead_lettered_with_their_reason(program, registered, dlq, body,
                                                                           reason):
    enroll(program["auth"]["partner"], {"email": "a@example.com"})
    if isinstance(body, dict):
        body = {**message(program, "t-1", member={"email": "a@example.com"}), **body}
    assert accrual_queue.handler(batch(body), LambdaContext()) == {"batchItemFailures": []}
    [(parked_body, attrs)] = dead_letters(*dlq)
    assert attrs["treue-error-type"] == reason and attrs["treue-error-reason"]
    assert parked_body == (body if isinstance(body, str) else json.dumps(body))


def test_transient_failures_are_retried_not_dead_lettered(program, registered, dlq, monkeypatch):
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


def test_a_registered_sender_accrues_without_naming_the_program_from_any_session_of_its_role(program, registered,
                                                                                            dlq):
    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    bodies = [message(program, f"shop-{i}", 1000) for i in range(2)]
    for body in bodies:
        del body["program_id"]
    assert accrual_queue.handler(batch(bodies[0], sender=f"{SHOP_ROLE}:export-monday"),
                                 LambdaContext()) == {"batchItemFailures": []}
    assert accrual_queue.handler(batch(bodies[1], sender=f"{SHOP_ROLE}:i-0abc123def4567890"),
                                 LambdaContext()) == {"batchItemFailures": []}
    assert balance(program, mid)["available"] == 20
    assert dead_letters(*dlq) == []


def test_a_message_naming_another_program_is_refused_and_credits_nothing(program, registered, store, dlq):
    victim = another_program(store)
    assert register(victim, OTHER_ROLE)[0] == 201
    ours = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    theirs = enroll(victim["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    forged = message(victim, "forged-1", 500_000)  # the shop's role names the other program
    assert accrual_queue.handler(batch(forged), LambdaContext()) == {"batchItemFailures": []}
    assert balance(victim, theirs) == {"available": 0, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                                       "lifetime_earned": 0, "lifetime_redeemed": 0}
    assert balance(program, ours)["available"] == 0
    [(parked, attrs)] = dead_letters(*dlq)
    assert parked == json.dumps(forged)
    assert attrs["treue-error-type"] == "program-mismatch"
    assert victim["program_id"] in attrs["treue-error-reason"] and SHOP_ROLE in attrs["treue-error-reason"]
    # the other program's own sender is accepted for it, with or without naming it
    assert accrual_queue.handler(batch(forged, sender=f"{OTHER_ROLE}:pos"), LambdaContext()) == {
        "batchItemFailures": []}
    assert balance(victim, theirs)["available"] == 5000


@pytest.mark.parametrize("sender", [
    "AIDAJQABLZS4A3QDU576Q",  # an IAM user nobody registered
    "AROA5KQZ7NOMWUDJ4XL2E:shop-export-1",  # a role nobody registered
    "123456789012",  # an account root
    "",
    None,  # no SenderId attribute
])
def test_a_message_from_an_unregistered_sender_is_refused_and_credits_nothing(program, registered, dlq, sender):
    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    body = message(program, "shop-1", 12900)  # names the right program: still not enough
    assert accrual_queue.handler(batch(body, sender=sender), LambdaContext()) == {"batchItemFailures": []}
    assert balance(program, mid)["available"] == 0
    [(parked, attrs)] = dead_letters(*dlq)
    assert parked == json.dumps(body)
    assert attrs["treue-error-type"] == "unknown-sender" and attrs["treue-error-reason"]
    assert attrs["treue-source-message-id"] == "msg-0"


def test_an_unknown_sender_is_refused_before_its_body_is_read(program, dlq):
    accrual_queue.handler(batch("this is not json", sender="AIDAJQABLZS4A3QDU576Q"), LambdaContext())
    [(_, attrs)] = dead_letters(*dlq)
    assert attrs["treue-error-type"] == "unknown-sender"


def test_a_sender_deleted_by_its_program_is_refused_once_the_cache_expires(program, registered, dlq, monkeypatch):
    monkeypatch.setenv("PROGRAM_CACHE_SECONDS", "0")
    runtime.reset()
    mid = enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]
    assert accrual_queue.handler(batch(message(program, "a")), LambdaContext()) == {"batchItemFailures": []}
    status, _, _ = call(queue_senders, "queue_senders/delete_sender.json", program["auth"]["admin"],
                        path=f"/v1/queue-senders/{SHOP_ROLE}", path_parameters={"principal_id": SHOP_ROLE})
    assert status == 204
    accrual_queue.handler(batch(message(program, "b")), LambdaContext())
    assert balance(program, mid)["available"] == 25
    [(_, attrs)] = dead_letters(*dlq)
    assert attrs["treue-error-type"] == "unknown-sender"
