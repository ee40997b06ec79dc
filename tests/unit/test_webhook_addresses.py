"""The one rule for a public webhook address (registration and delivery), and the URL checks."""

import pytest

from treue.errors import MalformedRequest
from treue.logic import webhooks

PUBLIC_V4 = "93.184.216.34"
EMBEDDING_PRIVATE_V4 = [
    "64:ff9b::7f00:1",  # NAT64 well-known prefix → 127.0.0.1
    "64:ff9b::a00:5",  # → 10.0.0.5
    "64:ff9b::a9fe:a9fe",  # → 169.254.169.254 (instance metadata)
    "64:ff9b::c0a8:101",  # → 192.168.1.1
    "64:ff9b::6440:1",  # → 100.64.0.1 (shared address space)
    "64:ff9b:1::a00:5",  # local-use NAT64 (RFC 8215): the operator's own translator
    "64:ff9b:1:5d:b8d8:2200::",  # local-use NAT64, even with a public IPv4 inside
    "::7f00:1",  # IPv4-compatible ::127.0.0.1
    "::a00:5",  # IPv4-compatible ::10.0.0.5
    "::5db8:d822",  # IPv4-compatible, public IPv4 inside: deprecated, never routed
    "::ffff:0:a00:5",  # IPv4-translated ::ffff:0:10.0.0.5
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:5::1",  # 6to4 of 10.0.0.5
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001::1",  # Teredo
    "::ffff:7f00:1",  # IPv4-mapped ::ffff:127.0.0.1
]
PUBLIC = [PUBLIC_V4, "2606:2800:220:1::1", "64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:5db8:d822"]


@pytest.mark.parametrize("address", EMBEDDING_PRIVATE_V4)
def test_ipv6_forms_embedding_ipv4_are_not_delivered_to(address):
    with pytest.raises(ValueError, match="non-public"):
        webhooks.deliverable_address([address], False)
    with pytest.raises(ValueError, match="non-public"):
        webhooks.deliverable_address([PUBLIC_V4, address], True)


@pytest.mark.parametrize("address", EMBEDDING_PRIVATE_V4)
def test_ipv6_forms_embedding_ipv4_are_refused_at_registration(address):
    with pytest.raises(MalformedRequest, match="public host"):
        webhooks.check_url(f"https://[{address}]/hook", False)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_stay_public(address):
    assert webhooks.deliverable_address([address], False) == address
    host = f"[{address}]" if ":" in address else address
    assert webhooks.check_url(f"https://{host}/hook", False)


@pytest.mark.parametrize("url", [
    "https://example.com:99999/hook", "https://example.com:65536/", "https://example.com:0/",
    "https://example.com:abc/", "https://example.com:-1/", "https://example.com:+443/",
    "https://example.com:4 43/", "https://[2606:2800:220:1::1]:0/", "https://[2606:2800:220:1::1/",
    "https://example.com/a\tb", "https://example.com/\r\nX-Injected: 1", "https://exa mple.com/",
])
def test_urls_with_a_bad_port_or_characters_are_refused(url):
    with pytest.raises(MalformedRequest) as refused:
        webhooks.check_url(url, False)
    assert refused.value.status == 400 and refused.value.extra == {"field": "url"}


def test_urls_with_a_valid_port_are_accepted():
    assert webhooks.check_url("https://example.com:8443/hook", False)
    assert webhooks.check_url("https://example.com:65535/hook", False)
    assert webhooks.check_url("https://example.com:/hook", False)  # empty port: the default (RFC 3986)
