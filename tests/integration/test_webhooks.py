"""Webhooks and the event log on moto: events written with their change, the fan-out from stream
records, signed deliveries with backoff, the failing status, redelivery; rewards paid by the budget."""

import json
import socket
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.twin.receiver import Receiver
from tests.integration.helpers import call, enroll, events_of
from tests.integration.test_orders import member_with
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core.records import WebhookEndpoint
from treue.handlers import rewards, webhook_fanout, webhook_sender, webhooks
from treue.logic import webhooks as hooks
from treue.store.items import to_item

REGION = "eu-central-1"


@pytest.fixture
def queue(payout, monkeypatch):
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="deliveries", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", url)
    monkeypatch.setenv("ALLOW_LOCAL_WEBHOOKS", "true")
    runtime.reset()
    return sqs, url


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def register(shop, url, types=("*",), scope="partner"):
    status, body, _ = call(webhooks, "webhooks/post_webhook.json", shop["auth"][scope],
                           body={"url": url, "event_types": list(types)})
    return status, body


def stream_of(items):
    """Stream records (as the table's stream would carry them) for event items."""
    return {"Records": [{"eventName": "INSERT", "dynamodb": {"SequenceNumber": str(i), "NewImage": to_item(item)}}
                        for i, item in enumerate(items)]}


def drain(sqs, url, max_rounds=20):
    """Deliver what the queue holds through the sender, as the SQS event source would; returns the outcomes."""
    outcomes = []
    for _ in range(max_rounds):
        out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
        messages = out.get("Messages", [])
        if not messages:
            break
        records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                    "attributes": m["Attributes"]} for m in messages]
        result = webhook_sender.handler({"Records": records}, LambdaContext())
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        outcomes.append(result)
    return outcomes


def fan_out(shop, types=None):
    """Run the fan-out over every event of the shop so far."""
    items = [dict(e, kind="event") for e in events_of(shop, types)]
    return webhook_fanout.handler(stream_of(items), LambdaContext())


def test_signatures_verify_with_the_secret_and_reject_tampering_and_staleness():
    body = b'{"id":"evt_1"}'
    now = int(time.time())
    header = hooks.signature_header(["whsec_new", "whsec_old"], body, now)
    assert hooks.verify(header, body, "whsec_new") and hooks.verify(header, body, "whsec_old")
    assert not hooks.verify(header, body, "whsec_other")
    assert not hooks.verify(header, body + b" ", "whsec_new")
    stale = hooks.signature_header(["whsec_new"], body, now - 301)
    assert not hooks.verify(stale, body, "whsec_new")
    assert not hooks.verify("v1=abc", body, "whsec_new") and not hooks.verify("", body, "whsec_new")


def test_the_retry_schedule_spans_more_than_a_day():
    delays = [hooks.retry_delay(a, 30) for a in range(1, hooks.MAX_ATTEMPTS)]
    assert delays[:4] == [30, 60, 120, 240] and max(delays) == hooks.MAX_DELAY_SECONDS
    assert sum(delays) > 24 * 3600


def test_urls_must_be_public_https_unless_local_ones_are_allowed():
    from treue.errors import MalformedRequest

    assert hooks.check_url("https://crm.example.com/hook", False)
    assert hooks.check_url("http://127.0.0.1:8000/hook", True)
    for url in ("http://crm.example.com/x", "https://127.0.0.1/x", "https://10.0.0.5/x", "https://u:p@x.com/",
                "http://127.0.0.1:8000/hook", "https://169.254.169.254/latest", "https://100.64.0.1/x",
                "https://[::ffff:10.0.0.5]/x"):
        with pytest.raises(MalformedRequest):
            hooks.check_url(url, False)


def test_every_address_a_host_resolves_to_must_be_public():
    assert hooks.deliverable_address(["93.184.216.34"], False) == "93.184.216.34"
    assert hooks.deliverable_address(["2606:2800:220:1::1"], False) == "2606:2800:220:1::1"
    assert hooks.deliverable_address(["127.0.0.1"], True) == "127.0.0.1"  # the twin
    for found in (["10.0.0.5"], ["169.254.169.254"], ["100.64.0.1"], ["::ffff:10.0.0.5"], ["fd00::1"],
                  ["fe80::1%eth0"], ["224.0.0.1"], ["0.0.0.0"], ["127.0.0.1"], ["93.184.216.34", "192.168.1.1"], []):
        with pytest.raises(ValueError):
            hooks.deliverable_address(found, False)


class HookServer:
    """An HTTP(S) server on 127.0.0.1 answering every POST with ``status`` (and ``location``)."""

    def __init__(self, status=204, location=None, cert=None):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append({"path": self.path, "host": self.headers["Host"]})
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*cert)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed(tmp_path, name):
    """A certificate for ``name`` (and its key), as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture
def dns(monkeypatch):
    """Host names the test decides the addresses of; connections made are recorded."""
    names, connected = {}, []
    resolve, connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, port, *args, **kwargs):
        return resolve(names.get(host, host), port, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        connected.append(address)
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(webhook_sender.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(webhook_sender.socket, "create_connection", create_connection)
    return names, connected


def test_the_sender_connects_to_the_checked_address_and_verifies_tls_for_the_host_name(tmp_path, dns, monkeypatch):
    names, connected = dns
    cert = self_signed(tmp_path, "hooks.example.test")
    server = HookServer(cert=cert)
    try:
        monkeypatch.setattr(webhook_sender, "_tls", ssl.create_default_context(cafile=cert[0]))
        names.update({"hooks.example.test": "127.0.0.1", "other.example.test": "127.0.0.1"})
        url = f"https://hooks.example.test:{server.port}/in?tenant=7"
        assert webhook_sender.post(url, b"{}", {"Content-Type": "application/json"}, True) == (204, None)
        assert server.seen == [{"path": "/in?tenant=7", "host": f"hooks.example.test:{server.port}"}]
        assert connected == [("127.0.0.1", server.port)]
        # the certificate is for hooks.example.test: another name on the same address is refused
        status, error = webhook_sender.post(f"https://other.example.test:{server.port}/in", b"{}", {}, True)
        assert status is None and "certificate" in error.lower() and len(server.seen) == 1
    finally:
        server.stop()


def test_redirects_are_not_followed(dns):
    target = HookServer()
    redirecting = HookServer(status=307, location=f"http://127.0.0.1:{target.port}/elsewhere")
    try:
        status, error = webhook_sender.post(f"http://127.0.0.1:{redirecting.port}/hooks", b"{}", {}, True)
        assert (status, error) == (307, "HTTP 307 (redirects are not followed)")
        assert len(redirecting.seen) == 1 and target.seen == []
    finally:
        target.stop()
        redirecting.stop()


def test_a_host_that_resolves_to_a_private_address_gets_nothing_and_the_endpoint_shows_why(shop, queue, dns):
    sqs, url = queue
    names, connected = dns
    status, endpoint = register(shop, "https://hooks.example.com/treue")
    assert status == 201  # a public name when registered
    names["hooks.example.com"] = "169.254.169.254"  # ... and later it points into the network (rebinding)
    enroll(shop["auth"]["partner"], {"email": "r@example.com"})
    fan_out(shop)
    [attempt] = drain(sqs, url)
    assert len(attempt["batchItemFailures"]) == 1 and connected == []
    _, health, _ = call(webhooks, "webhooks/get_webhook.json", shop["auth"]["partner"],
                        path=f"/v1/webhooks/{endpoint['id']}", path_parameters={"endpoint_id": endpoint["id"]})
    assert health["status"] == "failing"
    assert health["last_failure"]["error"] == "the webhook host resolves to a non-public address (169.254.169.254)"


def test_changes_write_their_events_in_the_same_transaction(shop):
    _, member, _ = enroll(shop["auth"]["partner"], {"email": "e@example.com"})
    mid = member_with(shop, 5000)
    found = events_of(shop)
    types = [e["type"] for e in found]
    assert types.count("member.enrolled") == 2 and types.count("points.earned") == 1
    assert all(e["expires_at"] - time.time() > 89 * 86400 for e in found)  # kept 90 days (TTL)
    assert {e["data"]["member_id"] for e in found} == {member["id"], mid}


def test_the_event_log_pages_in_order_filters_by_type_and_holds_back_unsettled_events(shop):
    for i in range(5):
        enroll(shop["auth"]["partner"], {"email": f"p{i}@example.com"})
    status, page, _ = call(webhooks, "webhooks/list_events.json", shop["auth"]["partner"], query={})
    assert status == 200 and page["items"] == [] and page["settle_seconds"] == 2  # all younger than 2 s
    time.sleep(2.1)
    status, page, _ = call(webhooks, "webhooks/list_events.json", shop["auth"]["finance"], query={"limit": "2"})
    assert status == 200 and len(page["items"]) == 2
    seen = [e["id"] for e in page["items"]]
    while page["items"]:
        _, page, _ = call(webhooks, "webhooks/list_events.json", shop["auth"]["partner"],
                          query={"limit": "2", "after": page["next_after"]})
        seen += [e["id"] for e in page["items"]]
    assert seen == [e["id"] for e in events_of(shop)] and len(seen) == 5
    _, only, _ = call(webhooks, "webhooks/list_events.json", shop["auth"]["partner"],
                      query={"type": "budget.low"})
    assert only["items"] == []


def test_an_event_reaches_a_subscribed_endpoint_signed_and_not_others(shop, queue, receiver):
    sqs, url = queue
    status, endpoint = register(shop, receiver.url, ["member.enrolled"])
    assert status == 201 and endpoint["secret"].startswith("whsec_")
    receiver.secrets.append(endpoint["secret"])
    assert register(shop, receiver.url, ["budget.low"])[0] == 201  # subscribed to something else
    enroll(shop["auth"]["partner"], {"email": "a@example.com"})
    assert fan_out(shop) == {"batchItemFailures": []}
    drain(sqs, url)
    [event] = receiver.events()
    assert event["type"] == "member.enrolled" and receiver.rejected == 0
    status, health, _ = call(webhooks, "webhooks/get_webhook.json", shop["auth"]["partner"],
                             path=f"/v1/webhooks/{endpoint['id']}", path_parameters={"endpoint_id": endpoint["id"]})
    assert health["status"] == "active" and health["deliveries"] == 1 and "secret" not in json.dumps(health["secrets"])


def test_a_failing_receiver_is_retried_with_backoff_and_marked_failing(shop, queue, receiver):
    sqs, url = queue
    _, endpoint = register(shop, receiver.url)
    receiver.secrets.append(endpoint["secret"])
    receiver.fail_next(1)
    enroll(shop["auth"]["partner"], {"email": "b@example.com"})
    fan_out(shop)
    [first] = drain(sqs, url)
    assert len(first["batchItemFailures"]) == 1
    _, health, _ = call(webhooks, "webhooks/get_webhook.json", shop["auth"]["partner"],
                        path=f"/v1/webhooks/{endpoint['id']}", path_parameters={"endpoint_id": endpoint["id"]})
    assert health["status"] == "failing" and health["consecutive_failures"] == 1
    assert health["last_failure"]["status_code"] == 503
    assert drain(sqs, url) == []  # hidden for the backoff delay (30 s), not retried at once
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_a_sender_attempt_to_a_dead_endpoint_fails_and_redelivery_sends_again(shop, queue, receiver):
    sqs, url = queue
    _, endpoint = register(shop, receiver.url)
    receiver.secrets.append(endpoint["secret"])
    enroll(shop["auth"]["partner"], {"email": "c@example.com"})
    fan_out(shop)
    drain(sqs, url)
    [event] = receiver.events()
    status, queued, _ = call(webhooks, "webhooks/redeliver.json", shop["auth"]["partner"],
                             path=f"/v1/events/{event['id']}/redeliver", path_parameters={"event_id": event["id"]},
                             body={})
    assert status == 202 and queued["endpoints"] == [endpoint["id"]]
    drain(sqs, url)
    assert [e["id"] for e in receiver.events()] == [event["id"], event["id"]]
    receiver.stop()
    call(webhooks, "webhooks/redeliver.json", shop["auth"]["partner"], path=f"/v1/events/{event['id']}/redeliver",
         path_parameters={"event_id": event["id"]}, body={})
    [attempt] = drain(sqs, url)
    assert len(attempt["batchItemFailures"]) == 1


def test_endpoints_are_per_program_limited_and_deleted_endpoints_get_nothing(shop, queue, receiver):
    sqs, url = queue
    _, endpoint = register(shop, receiver.url)
    path = {"path": f"/v1/webhooks/{endpoint['id']}", "path_parameters": {"endpoint_id": endpoint["id"]}}
    assert call(webhooks, "webhooks/delete_webhook.json", shop["auth"]["finance"], **path)[0] == 403
    assert call(webhooks, "webhooks/delete_webhook.json", shop["auth"]["partner"], **path)[0] == 204
    assert call(webhooks, "webhooks/get_webhook.json", shop["auth"]["partner"], **path)[0] == 404
    enroll(shop["auth"]["partner"], {"email": "d@example.com"})
    fan_out(shop)
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None
    for _ in range(hooks.MAX_ENDPOINTS):
        assert register(shop, receiver.url)[0] == 201
    status, problem = register(shop, receiver.url)
    assert status == 409 and problem["type"].endswith("too-many-endpoints")
    assert register(shop, "https://example.com/x", scope="finance")[0] == 403


def test_fan_out_skips_other_records_and_reports_where_to_retry(shop, queue, monkeypatch):
    sample = load_event("webhook_fanout/stream.json")
    other = {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "7", "NewImage": {"kind": {"S": "event"}}}}
    assert webhook_fanout.handler({"Records": [other]}, LambdaContext()) == {"batchItemFailures": []}
    monkeypatch.setattr(webhook_fanout.queues, "send_all", lambda *a: (_ for _ in ()).throw(RuntimeError("down")))
    monkeypatch.setattr(webhook_fanout.runtime, "webhooks", _one_endpoint_for_all_events)
    result = webhook_fanout.handler(sample, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "111"}]}


def wait(shop, reward_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = runtime.orders().require(shop["program_id"], reward_id)
        if order.status in ("COMPLETED", "FAILED"):
            return order
        time.sleep(0.05)
    raise AssertionError(f"reward {reward_id} did not finish: {order.status}")


def reward_body(**kw):
    return {"recipient": {"email": "ada@example.com"}, "item_id": "kaffeekranz-eur", "face_value": 2000,
            "reference": f"ref-{uuid.uuid4().hex[:8]}", **kw}


def test_a_reward_is_paid_from_the_budget_and_completes_without_points(shop):
    key = {"Idempotency-Key": uuid.uuid4().hex}
    status, accepted, _ = call(rewards, "rewards/post_reward.json", shop["auth"]["partner"], body=reward_body(),
                               headers=key)
    assert status == 202, accepted
    order = wait(shop, accepted["reward_id"])
    assert order.status == "COMPLETED" and order.points == 0 and order.funds["fee"] == 25
    status, view, _ = call(rewards, "rewards/get_reward.json", shop["auth"]["finance"],
                           path=f"/v1/rewards/{accepted['reward_id']}",
                           path_parameters={"reward_id": accepted["reward_id"]})
    assert status == 200 and view["status"] == "COMPLETED" and view["recipient"]["email"] == "ada@example.com"
    types = [e["type"] for e in events_of(shop) if e["data"].get("order_id") == accepted["reward_id"]]
    assert types == ["reward.delivered", "order.completed"]
    from tests.integration.test_finance import reconciliation, trial

    assert reconciliation(shop)["differences"] == [] and trial(shop)["balanced"]


def test_a_failed_reward_gives_the_money_back_and_emits_order_failed(shop):
    from treue.providers.simulated import set_fault

    key = uuid.uuid4().hex
    set_fault(runtime.store().ddb, runtime.store().table, shop["program_id"], "rejected", order_reference=key)
    status, accepted, _ = call(rewards, "rewards/post_reward.json", shop["auth"]["partner"], body=reward_body(),
                               headers={"Idempotency-Key": key})
    assert status == 202
    order = wait(shop, accepted["reward_id"])
    assert order.status == "FAILED" and order.funds_returned_at
    [failed] = [e for e in events_of(shop, ["order.failed"]) if e["data"]["order_id"] == accepted["reward_id"]]
    assert failed["data"]["reason"] == "provider_rejected"
    from tests.integration.test_finance import budget_of, reconciliation

    assert budget_of(shop)[0]["available"] == 5_000_000
    assert reconciliation(shop)["differences"] == []


def test_a_reward_the_budget_cannot_pay_is_refused_before_anything_happens(payout, store):
    from tests.integration.test_finance import new_program

    brand = new_program(store, "Empty")
    status, problem, _ = call(rewards, "rewards/post_reward.json", brand["auth"]["admin"], body=reward_body(),
                              headers={"Idempotency-Key": "k-1"})
    assert status == 409 and problem["type"].endswith("insufficient-funds") and problem["needed"] == 2025
    assert [e for e in events_of(brand) if e["type"].startswith("order.")] == []


def _one_endpoint_for_all_events():
    """A webhook store with one endpoint subscribed to every event type."""
    endpoint = WebhookEndpoint(id="whk_x", program_id="prg_x", url="https://hooks.example.com/x", event_types=("*",),
                               created_at="2026-01-01T00:00:00Z", secrets=())
    return type("W", (), {"list": lambda self, pid: [endpoint]})()


def test_a_failed_stream_record_is_reported_by_sequence_number_logged_and_counted(shop, queue, monkeypatch, capsys,
                                                                                  caplog):
    [template] = load_event("webhook_fanout/stream.json")["Records"]

    def record(sequence, event_id):
        copy = json.loads(json.dumps(template))
        copy["dynamodb"]["SequenceNumber"] = sequence
        copy["dynamodb"]["NewImage"]["id"]["S"] = event_id
        return copy

    queued = []

    def send_all(url, messages):
        if any(json.loads(m)["event_id"] == "evt_second" for m in messages):
            raise RuntimeError("delivery queue unavailable")
        queued.extend(json.loads(m)["event_id"] for m in messages)

    monkeypatch.setattr(webhook_fanout.queues, "send_all", send_all)
    monkeypatch.setattr(webhook_fanout.runtime, "webhooks", _one_endpoint_for_all_events)
    capsys.readouterr()
    batch = {"Records": [record("100", "evt_first"), record("200", "evt_second"), record("300", "evt_third")]}
    result = webhook_fanout.handler(batch, LambdaContext())
    # the stream retries from the failed record on (bisecting), so the one after it waits for that retry
    assert result == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    assert queued == ["evt_first"]
    [logged] = [r for r in caplog.records if r.getMessage().startswith("fan-out failed")]
    assert logged.levelname == "ERROR" and logged.sequence_number == "200"
    assert "delivery queue unavailable" in str(logged.exc_info[1])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [emf] = [line for line in lines if "_aws" in line]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Treue" and emf["WebhookFanoutFailures"] == [1.0]
