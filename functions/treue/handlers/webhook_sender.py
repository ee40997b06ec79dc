"""Webhook sender: POST one event to one endpoint, signed; failures come back with exponential backoff.

Each SQS message names (program, endpoint, event). A 2xx answer marks the endpoint active; anything
else marks it failing (visible on ``GET /v1/webhooks/{id}``, never disabled) and hides the message for
``retry_delay(attempt)`` seconds. After ``MAX_ATTEMPTS`` receives (more than 24 hours with the default
30 s base) the queue moves the message to its dead-letter queue; the event stays in the log for
``GET /v1/events`` and ``POST /v1/events/{id}/redeliver``.
"""

import http.client
import json
import socket
import ssl
import time
from urllib.parse import urlsplit, urlunsplit

from aws_lambda_powertools import Logger, Tracer

from treue import runtime
from treue.errors import MalformedRequest
from treue.logic import webhooks
from treue.store import clients
from treue.store import events as event_log

logger = Logger()
tracer = Tracer()
TIMEOUT_SECONDS = 10
_tls: ssl.SSLContext | None = None  # certificates checked against the URL's host name; see _tls_context


def _tls_context() -> ssl.SSLContext:
    """Created at the first HTTPS delivery, not at import: loading the CA store takes ~30 ms of cold start."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls
_opened: dict[str, str] = {}  # sealed secret → secret (a warm function decrypts each secret once)


def _signing_secrets(endpoint: dict, now: str) -> list[str]:
    """The endpoint's secrets that sign now, newest first."""
    out = []
    for meta in sorted(endpoint.get("secrets", []), key=lambda s: s["created_at"], reverse=True):
        if meta.get("expires_at") and meta["expires_at"] <= now:
            continue
        if meta["sealed"] not in _opened:
            _opened[meta["sealed"]] = runtime.vault().open(meta["sealed"], endpoint["program_id"], endpoint["id"])
        out.append(_opened[meta["sealed"]])
    return out


def post(url: str, body: bytes, headers: dict[str, str], allow_local: bool) -> tuple[int | None, str | None]:
    """(HTTP status, error) of one delivery attempt.

    The host is resolved once and every address checked (``webhooks.deliverable_address``); the
    connection goes to the checked address, with the host name for TLS (SNI and certificate check)
    and the ``Host`` header. Redirects are not followed: a 3xx is a failed attempt.
    """
    try:
        url = webhooks.check_url(url, allow_local)
    except MalformedRequest as err:
        return None, err.detail
    parts = urlsplit(url)
    host, tls = parts.hostname or "", parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        address = webhooks.deliverable_address([info[4][0] for info in found], allow_local)
    except (OSError, ValueError) as err:
        return None, str(err)[:300]
    connection = (http.client.HTTPSConnection if tls else http.client.HTTPConnection)(
        host, port, timeout=TIMEOUT_SECONDS)
    try:
        connection.sock = socket.create_connection((address, port), timeout=TIMEOUT_SECONDS)
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


def deliver(message: dict, attempt: int) -> bool:
    """One attempt; True when done (delivered, or nothing left to deliver to)."""
    pid, eid = message["program_id"], message["event_id"]
    endpoint = runtime.webhooks().get(pid, message["endpoint_id"])
    if endpoint is None:
        logger.info("endpoint deleted; delivery dropped", extra={"endpoint_id": message["endpoint_id"]})
        return True
    event = runtime.events().get(pid, eid)
    if event is None:
        logger.warning("event expired or unknown; delivery dropped", extra={"event_id": eid})
        return True
    now = runtime.now()
    body = json.dumps(event_log.public(event), separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json", "User-Agent": "Treue-Webhooks/1",
        webhooks.SIGNATURE_HEADER: webhooks.signature_header(_signing_secrets(endpoint, now), body, timestamp),
        "Treue-Event-Id": eid, "Treue-Event-Type": event["type"], "Treue-Delivery-Attempt": str(attempt),
    }
    status, error = post(endpoint["url"], body, headers, runtime.settings().allow_local_webhooks)
    ok = status is not None and 200 <= status < 300
    detail = {"attempt": attempt, "event_id": eid}
    if status is not None:
        detail["status_code"] = status
    if error:
        detail["error"] = error
    runtime.webhooks().record_attempt(pid, endpoint["id"], ok, now, detail)
    logger.info("delivery attempt", extra={"endpoint_id": endpoint["id"], "event_id": eid, "ok": ok,
                                           "status": status, "attempt": attempt})
    return ok


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event, context):
    failures = []
    base = runtime.settings().webhook_retry_base_seconds
    for record in event.get("Records", []):
        attempt = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
        try:
            message = json.loads(record["body"])
            done = deliver(message, attempt)
        except (ValueError, KeyError, TypeError):
            logger.exception("unreadable delivery message; dropped", extra={"body": record.get("body", "")[:200]})
            continue
        except Exception:
            logger.exception("delivery attempt broke; retried")
            done = False
        if done:
            continue
        failures.append({"itemIdentifier": record["messageId"]})
        if attempt < webhooks.MAX_ATTEMPTS:
            try:
                clients.get("sqs").change_message_visibility(
                    QueueUrl=runtime.required("webhook_queue_url"), ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=webhooks.retry_delay(attempt, base))
            except Exception:  # the queue's own visibility timeout applies instead
                logger.exception("could not set the retry delay")
    return {"batchItemFailures": failures}
