"""Webhook sender: POST one event to one endpoint, signed; failures come back with exponential backoff.

Each SQS message names (program, endpoint, event). A 2xx answer marks the endpoint active; anything
else marks it failing (visible on ``GET /v1/webhooks/{id}``, never disabled) and hides the message for
``retry_delay(attempt)`` seconds. A delivery that fails its ``MAX_ATTEMPTS``th attempt (more than 24
hours with the default 30 s base) is moved to the dead-letter queue; the event stays in the log for
``GET /v1/events`` and ``POST /v1/events/{id}/redeliver``.

One tenant's slow endpoint cannot hold up the others' deliveries or push them to the DLQ:

- every attempt has tight timeouts (``CONNECT_TIMEOUT_SECONDS`` to connect, ``READ_TIMEOUT_SECONDS``
  for each read or write), so a tarpit costs one attempt a few seconds;
- after an attempt to an endpoint fails, the batch's other messages to it are not tried: they wait;
- an endpoint that failed ``CIRCUIT_FAILURES`` times in a row is not tried again until its backoff
  has passed (redeliveries asked for by the partner go through);
- an attempt starts only while ``RESERVE_SECONDS`` of the invocation remain, never running into the
  Lambda timeout (which would return the whole batch to the queue, every message counted a receive).

A delivery that waits is *deferred*: sent again to the queue as a new message with a delay and
``attempts_before`` (the attempts made so far), and the received one is deleted. Deferring is not an
attempt, so it counts toward nothing: neither the retry schedule nor the queue's maxReceiveCount.
"""

import http.client
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from treue import runtime
from treue.core.records import WebhookEndpoint
from treue.errors import MalformedRequest
from treue.handlers.logs import Logger
from treue.handlers.tracing import Tracer
from treue.logic import webhooks
from treue.store import clients, queues

logger = Logger()
tracer = Tracer()
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 5.0  # each read or write of the request and the answer
RESERVE_SECONDS = CONNECT_TIMEOUT_SECONDS + 2 * READ_TIMEOUT_SECONDS + 2.0  # an attempt starts with this left
CIRCUIT_FAILURES = 3
MAX_DEFER_SECONDS = 900  # SQS's longest message delay
_tls: ssl.SSLContext | None = None  # certificates checked against the URL's host name; see _tls_context


def _tls_context() -> ssl.SSLContext:
    """Created at the first HTTPS delivery, not at import: loading the CA store takes ~30 ms of cold start."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls
_opened: dict[str, str] = {}  # sealed secret → secret (a warm function decrypts each secret once)


def _signing_secrets(endpoint: WebhookEndpoint, now: str) -> list[str]:
    """The endpoint's secrets that sign now, newest first."""
    out = []
    for meta in sorted(endpoint.secrets, key=lambda s: s.created_at, reverse=True):
        if not meta.signs_at(now):
            continue
        if meta.sealed not in _opened:
            _opened[meta.sealed] = runtime.vault().open(meta.sealed, endpoint.program_id, endpoint.id)
        out.append(_opened[meta.sealed])
    return out


def post(url: str, body: bytes, headers: dict[str, str], allow_local: bool,
         reserved_local_ports: frozenset[int] = frozenset()) -> tuple[int | None, str | None]:
    """(HTTP status, error) of one delivery attempt.

    The host is resolved once and every address checked (``webhooks.deliverable_address``); the
    connection goes to the checked address, with the host name for TLS (SNI and certificate check)
    and the ``Host`` header. Redirects are not followed: a 3xx is a failed attempt.
    """
    try:
        url = webhooks.check_url(url, allow_local, reserved_local_ports)
    except MalformedRequest as err:
        return None, err.detail
    parts = urlsplit(url)
    host, tls = parts.hostname or "", parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        address = webhooks.deliverable_address([str(info[4][0]) for info in found], allow_local)
        webhooks.refuse_reserved_local([str(info[4][0]) for info in found], port, reserved_local_ports)
    except (OSError, ValueError) as err:
        return None, str(err)[:300]
    connection = (http.client.HTTPSConnection if tls else http.client.HTTPConnection)(
        host, port, timeout=READ_TIMEOUT_SECONDS)
    try:
        connection.sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_SECONDS)
        connection.sock.settimeout(READ_TIMEOUT_SECONDS)
        if tls:
            connection.sock = _tls_context().wrap_socket(connection.sock, server_hostname=host)
        connection.request("POST", urlunsplit(("", "", parts.path or "/", parts.query, "")), body, headers)
        answer = connection.getresponse()
        answer.read(65536)
    except (OSError, http.client.HTTPException) as err:
        return None, (str(err) or type(err).__name__)[:300]
    finally:
        connection.close()
    if 200 <= answer.status < 300:
        return answer.status, None
    if 300 <= answer.status < 400:
        return answer.status, f"HTTP {answer.status} (redirects are not followed)"
    return answer.status, f"HTTP {answer.status}"


def deliver(message: dict[str, Any], attempt: int, waiting: dict[str, int] | None = None) -> bool | int:
    """One attempt; True when done (delivered, or nothing left to deliver to), False when it failed, or
    the seconds to defer it without an attempt (its endpoint is in ``waiting`` or its circuit is open).

    ``waiting``: endpoint id → seconds to wait, for endpoints whose attempt failed in this invocation;
    a failed attempt adds its endpoint.
    """
    pid, eid = message["program_id"], message["event_id"]
    waiting = {} if waiting is None else waiting
    if message["endpoint_id"] in waiting:
        return waiting[message["endpoint_id"]]
    endpoint = runtime.webhooks().get(pid, message["endpoint_id"])
    if endpoint is None:
        logger.info("endpoint deleted; delivery dropped", extra={"endpoint_id": message["endpoint_id"]})
        return True
    base = runtime.settings().webhook_retry_base_seconds
    if not message.get("redelivery"):
        closed_in = webhooks.circuit_open_seconds(endpoint, time.time(), base, CIRCUIT_FAILURES)
        if closed_in:
            waiting[endpoint.id] = min(closed_in, MAX_DEFER_SECONDS)
            return waiting[endpoint.id]
    event = runtime.events().get(pid, eid)
    if event is None:
        logger.warning("event expired or unknown; delivery dropped", extra={"event_id": eid})
        return True
    now = runtime.now()
    body = json.dumps(event.public(), separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json", "User-Agent": "Treue-Webhooks/1",
        webhooks.SIGNATURE_HEADER: webhooks.signature_header(_signing_secrets(endpoint, now), body, timestamp),
        "Treue-Event-Id": eid, "Treue-Event-Type": str(event.type), "Treue-Delivery-Attempt": str(attempt),
    }
    settings = runtime.settings()
    status, error = post(endpoint.url, body, headers, settings.allow_local_webhooks,
                         settings.reserved_local_webhook_ports)
    ok = status is not None and 200 <= status < 300
    detail = {"attempt": attempt, "event_id": eid}
    if status is not None:
        detail["status_code"] = status
    if error:
        detail["error"] = error
    runtime.webhooks().record_attempt(pid, endpoint.id, ok, now, detail)
    logger.info("delivery attempt", extra={"endpoint_id": endpoint.id, "event_id": eid, "ok": ok,
                                           "status": status, "attempt": attempt})
    if not ok:
        failures = endpoint.consecutive_failures + 1
        waiting[endpoint.id] = min(webhooks.retry_delay(failures, base), MAX_DEFER_SECONDS)
    return ok


def _defer(record: dict[str, Any], message: dict[str, Any], attempt: int, seconds: int) -> bool:
    """Send the delivery again as a new message (``seconds`` delay) that knows the attempts made so far."""
    body = json.dumps({**message, "attempts_before": attempt - 1}, separators=(",", ":"))
    try:
        clients.get("sqs").send_message(QueueUrl=runtime.required("webhook_queue_url"), MessageBody=body,
                                        DelaySeconds=max(0, min(int(seconds), MAX_DEFER_SECONDS)))
    except Exception:
        logger.exception("could not defer a delivery; it comes back after the queue's visibility timeout")
        return False
    return True


def _give_up(record: dict[str, Any], message: dict[str, Any], attempt: int) -> bool:
    try:
        queues.dead_letter(runtime.required("webhook_dlq_url"), record["body"], "DeliveryFailed",
                           f"{attempt} attempts failed", record["messageId"])
    except Exception:
        logger.exception("could not dead-letter a delivery; it comes back")
        return False
    logger.warning("delivery dead-lettered", extra={"endpoint_id": message["endpoint_id"],
                                                    "event_id": message["event_id"], "attempts": attempt})
    return True


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    base = runtime.settings().webhook_retry_base_seconds
    waiting: dict[str, int] = {}  # endpoint id → seconds its other deliveries wait (failed in this invocation)
    deferred = 0
    for record in event.get("Records", []):
        receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
        try:
            message = json.loads(record["body"])
            attempt = int(message.get("attempts_before", 0)) + receives
            if context.get_remaining_time_in_millis() / 1000 < RESERVE_SECONDS:
                outcome: bool | int = 0  # no time for an attempt: try it in the next invocation
            else:
                outcome = deliver(message, attempt, waiting)
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.exception("unreadable delivery message; dropped", extra={"body": record.get("body", "")[:200]})
            continue
        except Exception:
            logger.exception("delivery attempt broke; retried")
            outcome = False
        if outcome is True:
            continue
        if outcome is not False:  # deferred: not an attempt
            if _defer(record, message, attempt, outcome):
                deferred += 1
                continue
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        if attempt >= webhooks.MAX_ATTEMPTS and _give_up(record, message, attempt):
            continue
        failures.append({"itemIdentifier": record["messageId"]})
        try:
            clients.get("sqs").change_message_visibility(
                QueueUrl=runtime.required("webhook_queue_url"), ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=webhooks.retry_delay(attempt, base))
        except Exception:  # the queue's own visibility timeout applies instead
            logger.exception("could not set the retry delay")
    if deferred:
        logger.info("deliveries deferred", extra={"deferred": deferred, "waiting_endpoints": len(waiting)})
    return {"batchItemFailures": failures}
