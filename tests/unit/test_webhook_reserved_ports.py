"""Where local webhooks are allowed (the twin), the service's own local ports never receive one."""

import socket

import pytest

from treue.errors import MalformedRequest
from treue.handlers import webhook_sender
from treue.logic import webhooks

GATEWAY, AWS = 3000, 45123
RESERVED = frozenset({GATEWAY, AWS})


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:{GATEWAY}/v1/members",
    f"http://localhost:{AWS}/treue-batches/upload?X-Amz-Signature=abc",  # a pre-signed upload url
    f"https://127.0.0.1:{AWS}/",
    f"http://[::1]:{GATEWAY}/hook",
    f"http://127.0.0.2:{GATEWAY}/hook",
])
def test_registration_refuses_the_reserved_local_ports(url):
    with pytest.raises(MalformedRequest) as refused:
        webhooks.check_url(url, True, RESERVED)
    assert refused.value.extra == {"field": "url"} and "takes no webhooks" in refused.value.detail


def test_the_default_port_of_the_scheme_counts():
    with pytest.raises(MalformedRequest):
        webhooks.check_url("http://localhost/hook", True, frozenset({80}))
    assert webhooks.check_url("https://localhost/hook", True, frozenset({80})) == "https://localhost/hook"


def test_other_local_ports_and_public_hosts_stay_allowed():
    assert webhooks.check_url("http://127.0.0.1:8765/hook", True, RESERVED) == "http://127.0.0.1:8765/hook"
    assert webhooks.check_url(f"https://crm.example.com:{GATEWAY}/hook", True, RESERVED)
    assert webhooks.check_url(f"https://crm.example.com:{GATEWAY}/hook", False, RESERVED)


def test_a_host_resolving_to_loopback_on_a_reserved_port_is_refused():
    with pytest.raises(ValueError, match="takes no webhooks"):
        webhooks.refuse_reserved_local(["93.184.216.34", "127.0.0.1"], AWS, RESERVED)
    webhooks.refuse_reserved_local(["127.0.0.1"], 8765, RESERVED)  # another port
    webhooks.refuse_reserved_local(["93.184.216.34"], AWS, RESERVED)  # not this machine


@pytest.fixture
def listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.5)
        yield server


def _accepted(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return True
    except TimeoutError:
        return False


def test_the_sender_never_connects_to_a_reserved_local_port(listener):
    port = listener.getsockname()[1]
    status, error = webhook_sender.post(f"http://127.0.0.1:{port}/hook", b"{}", {}, True, frozenset({port}))
    assert status is None and "takes no webhooks" in error
    assert not _accepted(listener)


def test_the_sender_checks_the_resolved_address_too(listener, monkeypatch):
    """A public-looking name that resolves to this machine at delivery time."""
    port = listener.getsockname()[1]

    def getaddrinfo(host, port_, *args, **kwargs):
        assert host == "hooks.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_))]

    monkeypatch.setattr(webhook_sender.socket, "getaddrinfo", getaddrinfo)
    status, error = webhook_sender.post(f"https://hooks.example.com:{port}/hook", b"{}", {}, True,
                                        frozenset({port}))
    assert status is None and "takes no webhooks" in error
    assert not _accepted(listener)
