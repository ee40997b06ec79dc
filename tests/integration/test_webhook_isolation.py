"""One tenant's slow webhook endpoint cannot hold up other tenants' deliveries or push them to the DLQ.

The sender runs here as Lambda runs it: in a thread with a deadline; an invocation that outlives its
timeout returns every message of its batch to the queue (counted a receive), as Lambda does.
"""

import json
import socket
import threading
import time

import boto3
import pytest

from infra.twin.receiver import Receiver
from tests.integration.helpers import enroll, events_of
from tests.integration.test_webhooks import fan_out, register, stream_of
from tests.support import LambdaContext
from treue import runtime
from treue.handlers import webhook_fanout, webhook_sender
from treue.logic import webhooks as hooks

REGION = "eu-central-1"
LAMBDA_TIMEOUT = 4.0


class Tarpit:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class Deadline:
    """A Lambda context whose remaining time runs down from ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.function_name, self.memory_limit_in_mb = "treue-webhooksender", 512
        self.invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:treue-webhooksender"
        self.aws_request_id = "00000000-0000-0000-0000-000000000002"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.end - time.monotonic()) * 1000))


@pytest.fixture
def queues(payout, monkeypatch):
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="deliveries-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="deliveries", Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
    })["QueueUrl"]
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", url)
    monkeypatch.setenv("WEBHOOK_DLQ_URL", dlq)
    monkeypatch.setenv("ALLOW_LOCAL_WEBHOOKS", "true")
    monkeypatch.setattr(webhook_sender, "CONNECT_TIMEOUT_SECONDS", 0.5, raising=False)
    monkeypatch.setattr(webhook_sender, "READ_TIMEOUT_SECONDS", 0.5, raising=False)
    monkeypatch.setattr(webhook_sender, "RESERVE_SECONDS", 2.0, raising=False)
    monkeypatch.setattr(webhook_sender, "TIMEOUT_SECONDS", 1, raising=False)  # the sender before isolation
    runtime.reset()
    return sqs, url, dlq


@pytest.fixture
def tarpit():
    t = Tarpit()
    yield t
    t.stop()


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def invoke_like_lambda(records, timeout=LAMBDA_TIMEOUT):
    """The sender's answer, or None when the invocation ran past its timeout (Lambda's Task timed out)."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(result=webhook_sender.handler({"Records": records},
                                                                                       Deadline(timeout))),
                              daemon=True)
    thread.start()
    thread.join(timeout)
    return out.get("result")


def receive_round(sqs, url):
    """One batch as the SQS event source hands it over; what was done is deleted, as Lambda does."""
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
    if not messages:
        return None
    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m["Attributes"]} for m in messages]
    result = invoke_like_lambda(records)
    if result is not None:
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return result


def dead_lettered(sqs, dlq):
    out = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return [json.loads(m["Body"]) | {"_reason": m.get("MessageAttributes", {})} for m in out.get("Messages", [])]


def test_a_tarpit_endpoint_of_one_tenant_does_not_push_another_tenants_deliveries_to_the_dlq(
        program, shop, queues, tarpit, receiver):
    sqs, url, dlq = queues
    assert register(program, tarpit.url)[0] == 201  # the slow tenant, its deliveries first in the queue
    for i in range(5):
        enroll(program["auth"]["partner"], {"email": f"slow{i}@example.com"})
    items = [dict(e, kind="event") for e in events_of(program)]
    assert webhook_fanout.handler(stream_of(items), LambdaContext()) == {"batchItemFailures": []}
    _, good = register(shop, receiver.url, ["member.enrolled"])
    receiver.secrets.append(good["secret"])
    for i in range(4):
        enroll(shop["auth"]["partner"], {"email": f"fast{i}@example.com"})
    fan_out(shop, ["member.enrolled"])

    for _ in range(4):  # more rounds than the queue's maxReceiveCount (3)
        receive_round(sqs, url)
        time.sleep(1.1)  # the queue's visibility timeout
    fast = {e["id"] for e in events_of(shop, ["member.enrolled"])}
    assert len(fast) == 4 and sorted(e["id"] for e in receiver.events()) == sorted(fast)  # each once
    assert [m for m in dead_lettered(sqs, dlq) if m["program_id"] == shop["program_id"]] == []
    assert len(tarpit.accepted) == 1  # one attempt at the tarpit; its other deliveries wait without one
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    # the attempted one hidden for its backoff, the four others sent again with a delay: none lost, none dead
    assert (attrs["ApproximateNumberOfMessagesNotVisible"], attrs["ApproximateNumberOfMessagesDelayed"]) == ("1", "4")
    assert [m for m in dead_lettered(sqs, dlq)] == []


def test_with_too_little_time_left_deliveries_are_handed_back_without_an_attempt(shop, queues, receiver):
    sqs, url, _ = queues
    _, endpoint = register(shop, receiver.url, ["member.enrolled"])
    receiver.secrets.append(endpoint["secret"])
    enroll(shop["auth"]["partner"], {"email": "late@example.com"})
    fan_out(shop, ["member.enrolled"])
    [m] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    record = {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
              "attributes": m["Attributes"]}
    assert webhook_sender.handler({"Records": [record]}, Deadline(1.0)) == {"batchItemFailures": []}
    assert receiver.events() == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])  # done: it was sent again
    [again] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert json.loads(again["Body"])["attempts_before"] == 0 and again["Attributes"]["ApproximateReceiveCount"] == "1"
    receive = {"messageId": again["MessageId"], "receiptHandle": again["ReceiptHandle"], "body": again["Body"],
               "attributes": again["Attributes"]}
    assert webhook_sender.handler({"Records": [receive]}, Deadline(10)) == {"batchItemFailures": []}
    [delivered] = receiver.received
    assert delivered["attempt"] == "1"  # the handed-back receive was not an attempt


def test_an_endpoint_that_keeps_failing_waits_out_its_backoff_but_a_redelivery_goes_through(
        shop, queues, tarpit):
    sqs, url, _ = queues
    _, endpoint = register(shop, tarpit.url, ["member.enrolled"])
    enroll(shop["auth"]["partner"], {"email": "c@example.com"})
    [event] = events_of(shop, ["member.enrolled"])
    for _ in range(webhook_sender.CIRCUIT_FAILURES):
        runtime.webhooks().record_attempt(shop["program_id"], endpoint["id"], False, runtime.now(), {"attempt": 1})
    message = {"messageId": "m1", "receiptHandle": "r1", "attributes": {"ApproximateReceiveCount": "1"},
               "body": hooks.delivery_message(shop["program_id"], endpoint["id"], event["id"])}
    assert webhook_sender.handler({"Records": [message]}, Deadline(10)) == {"batchItemFailures": []}
    assert tarpit.accepted == []  # not tried: deferred
    redelivery = dict(message, body=hooks.delivery_message(shop["program_id"], endpoint["id"], event["id"], True))
    assert webhook_sender.handler({"Records": [redelivery]}, Deadline(10)) == {"batchItemFailures": [
        {"itemIdentifier": "m1"}]}
    assert len(tarpit.accepted) == 1


def test_the_last_attempt_dead_letters_also_after_deferrals(shop, queues, tarpit):
    sqs, url, dlq = queues
    _, endpoint = register(shop, tarpit.url, ["member.enrolled"])
    enroll(shop["auth"]["partner"], {"email": "d@example.com"})
    [event] = events_of(shop, ["member.enrolled"])
    body = json.loads(hooks.delivery_message(shop["program_id"], endpoint["id"], event["id"]))
    body["attempts_before"] = hooks.MAX_ATTEMPTS - 2  # deferred after 14 attempts; this is receive 2
    message = {"messageId": "m2", "receiptHandle": "r2", "attributes": {"ApproximateReceiveCount": "2"},
               "body": json.dumps(body)}
    assert webhook_sender.handler({"Records": [message]}, Deadline(10)) == {"batchItemFailures": []}
    [parked] = dead_lettered(sqs, dlq)
    assert parked["event_id"] == event["id"]
    assert parked["_reason"]["treue-error-reason"]["StringValue"] == f"{hooks.MAX_ATTEMPTS} attempts failed"
