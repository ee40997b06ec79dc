"""Webhooks: endpoints, signatures, the retry schedule, and what a receiver runs to verify a delivery.

A delivery is an HTTP POST of the event (``{"id", "type", "created_at", "data"}``) with

    Treue-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

and one more ``v1=`` per secret still valid during a rotation. Receivers recompute the HMAC over the
raw body, compare in constant time, and reject a ``t`` older than five minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Collection
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from treue.core import times
from treue.core.ids import new_id
from treue.core.records import ALL_EVENTS, Event, WebhookEndpoint, WebhookSecret
from treue.core.statuses import EndpointStatus
from treue.errors import MalformedRequest, TooManyEndpoints

if TYPE_CHECKING:
    from treue.logic.models import WebhookRequest
    from treue.logic.ports import VaultPort, WebhooksPort

SIGNATURE_HEADER = "Treue-Signature"
TOLERANCE_SECONDS = 300
MAX_ENDPOINTS = 16
# A failed delivery is tried again after base × 2^(attempt-1) seconds, at most MAX_DELAY apart; with
# the default base of 30 s the 16th and last attempt comes more than 24 hours after the first.
MAX_DELAY_SECONDS = 4 * 3600
MAX_ATTEMPTS = 16


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets_: list[str], body: bytes, timestamp: int) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, body, timestamp)}" for s in secrets_)])


def verify(header: str, body: bytes, secret: str, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver runs: True when one ``v1`` matches ``secret`` and ``t`` is recent enough."""
    parts = [p.split("=", 1) for p in (header or "").split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp)
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")


def retry_delay(attempt: int, base: int) -> int:
    """Seconds until attempt ``attempt + 1`` after attempt ``attempt`` failed (attempts count from 1)."""
    return int(min(base * 2 ** (attempt - 1), MAX_DELAY_SECONDS))


def circuit_open_seconds(endpoint: WebhookEndpoint, now: float, base: int, threshold: int) -> int:
    """Seconds until an endpoint that failed ``threshold`` or more times in a row may be tried again
    (its backoff after the last attempt, as for one delivery); 0 when it may be tried now."""
    failures = endpoint.consecutive_failures
    last = endpoint.last_attempt_at
    if failures < threshold or not last:
        return 0
    last_epoch = times.parse(last).timestamp()
    return max(0, int(last_epoch + retry_delay(failures, base) - now))


def check_url(url: str, allow_local: bool, reserved_local_ports: Collection[int] = ()) -> str:
    """Endpoints are public HTTPS URLs; plain HTTP to 127.0.0.1/localhost only where allowed (the twin),
    and there not to ``reserved_local_ports`` (the service's own API and cloud endpoint)."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise MalformedRequest("the webhook url may not contain spaces or control characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number from 0 to 65535
    except ValueError as err:
        raise MalformedRequest(f"the webhook url cannot be read ({err}); a port is a number from 1 to 65535",
                               field="url") from err
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        raise MalformedRequest("the webhook url needs a host and no credentials", field="url")
    if port == 0:
        raise MalformedRequest("the webhook url's port must be a number from 1 to 65535", field="url")
    local = host == "localhost" or _is_loopback(host)
    if local and allow_local and parts.scheme in ("http", "https"):
        if (port or _DEFAULT_PORTS[parts.scheme]) in reserved_local_ports:
            raise MalformedRequest(_reserved_port_reason(port or _DEFAULT_PORTS[parts.scheme]), field="url")
        return url
    if parts.scheme != "https":
        raise MalformedRequest("webhook urls must use https", field="url")
    if local or _is_private(host) or host.endswith((".local", ".internal")):
        raise MalformedRequest("webhook urls must point to a public host", field="url")
    return url


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _reserved_port_reason(port: int) -> str:
    return (f"port {port} of this host serves this API or its cloud endpoint and takes no webhooks; "
            "point the webhook at a receiver on another port")


def refuse_reserved_local(addresses: list[str], port: int, reserved_local_ports: Collection[int]) -> None:
    """ValueError when a webhook host resolves to this machine on a reserved port: a delivery there
    would be the service posting to its own API or cloud endpoint (checked at every delivery, as a
    host name can resolve to a loopback address)."""
    if port in reserved_local_ports and any(
        ipaddress.ip_address(raw.split("%", 1)[0]).is_loopback for raw in addresses
    ):
        raise ValueError(_reserved_port_reason(port))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_private(host: str) -> bool:
    """A literal IP address that is not public (a host name is checked at each delivery)."""
    try:
        return not _public(ipaddress.ip_address(host))
    except ValueError:
        return False


# IPv6 ranges that carry an IPv4 address: judged by the IPv4 address they lead to, or never public
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # RFC 3056: the IPv4 address in bits 16-47
_NEVER_PUBLIC = (
    ipaddress.ip_network("64:ff9b:1::/48"),  # RFC 8215 local-use NAT64: the operator's own translator
    ipaddress.ip_network("::/96"),  # IPv4-compatible ::a.b.c.d (deprecated), also :: and ::1
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated ::ffff:0:a.b.c.d (RFC 2765)
    ipaddress.ip_network("2001::/32"),  # Teredo: a tunnel to an obfuscated IPv4 client
)


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The one rule for a public address, at registration (literal IPs) and at delivery (resolved).

    IPv6 forms that embed an IPv4 address are public only when that IPv4 address is (IPv4-mapped,
    NAT64 well-known prefix, 6to4); the forms that reach an address we cannot judge are never public.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return _public(address.ipv4_mapped)
        if address in _NAT64_WELL_KNOWN:
            return _public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _SIX_TO_FOUR and address.sixtofour is not None:
            return _public(address.sixtofour)
        if any(address in network for network in _NEVER_PUBLIC):
            return False
    return address.is_global and not address.is_multicast


def deliverable_address(addresses: list[str], allow_local: bool) -> str:
    """The address to connect to among those a webhook host resolves to, or ValueError with the reason.

    Checked at every delivery, not only at registration: a public name can later resolve to a private
    address (DNS rebinding), and the sender must not become a way into the operator's network. Every
    address must be public (loopback too where local webhooks are allowed); the sender then connects
    to the address checked here, never resolving again.
    """
    if not addresses:
        raise ValueError("the webhook host does not resolve")
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if not _public(address) and not (allow_local and address.is_loopback):
            raise ValueError(f"the webhook host resolves to a non-public address ({address})")
    return addresses[0]


# ---------------------------------------------------------------- endpoints and deliveries


def view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the API shows it: never its secrets."""
    out = {
        "id": endpoint.id, "url": endpoint.url, "event_types": list(endpoint.event_types),
        "description": endpoint.description, "status": endpoint.status, "created_at": endpoint.created_at,
        "consecutive_failures": endpoint.consecutive_failures, "deliveries": endpoint.deliveries,
        "last_attempt_at": endpoint.last_attempt_at, "last_success_at": endpoint.last_success_at,
        "last_failure": endpoint.last_failure,
        "secrets": [{"created_at": s.created_at, "expires_at": s.expires_at} for s in endpoint.secrets],
    }
    return {k: v for k, v in out.items() if v is not None}


def create(webhooks: WebhooksPort, vault: VaultPort, program_id: str, request: WebhookRequest, allow_local: bool,
           actor: str, now: str, reserved_local_ports: Collection[int] = ()) -> dict[str, Any]:
    url = check_url(request.url, allow_local, reserved_local_ports)
    if len(webhooks.list(program_id)) >= MAX_ENDPOINTS:
        raise TooManyEndpoints(f"a program has at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
    endpoint_id = new_id("whk")
    secret = new_secret()
    types = sorted(set(request.event_types))
    endpoint = WebhookEndpoint(
        id=endpoint_id, program_id=program_id, url=url,
        event_types=(ALL_EVENTS,) if ALL_EVENTS in types else tuple(types), description=request.description,
        status=EndpointStatus.ACTIVE, secrets=(WebhookSecret(vault.seal(secret, program_id, endpoint_id), now),),
        created_at=now, created_by=actor,
    )
    webhooks.create(endpoint)
    return {**view(endpoint), "secret": secret}


def rotate(webhooks: WebhooksPort, vault: VaultPort, program_id: str, endpoint_id: str, keep_hours: int, now: str
           ) -> dict[str, Any]:
    endpoint = webhooks.require(program_id, endpoint_id)
    secret = new_secret()
    kept: tuple[WebhookSecret, ...] = ()
    if keep_hours:
        until_s = times.iso(times.parse(now) + timedelta(hours=keep_hours), "seconds")
        newest = max(endpoint.secrets, key=lambda s: s.created_at, default=None)
        if newest:
            kept = (replace(newest, expires_at=until_s),)
    sealed = (WebhookSecret(vault.seal(secret, program_id, endpoint_id), now), *kept)
    webhooks.set_secrets(program_id, endpoint_id, sealed, now)
    return {**view(endpoint.with_secrets(sealed)), "secret": secret}


def delivery_message(program_id: str, endpoint_id: str, event_id: str, redelivery: bool = False) -> str:
    import json

    body: dict[str, Any] = {"program_id": program_id, "endpoint_id": endpoint_id, "event_id": event_id}
    if redelivery:
        body["redelivery"] = True
    return json.dumps(body, separators=(",", ":"))


def fan_out(endpoints: list[WebhookEndpoint], event: Event) -> list[str]:
    """One delivery message per endpoint subscribed to the event's type."""
    return [delivery_message(event.program_id, e.id, event.id) for e in endpoints if e.subscribes(event.type)]
