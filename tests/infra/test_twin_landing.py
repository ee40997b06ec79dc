"""The twin's landing page at /: links, the program, where its keys are, the logs; in the access log."""

import json
import time
import urllib.request
from html.parser import HTMLParser

import pytest

from infra.twin.gateway import Gateway
from infra.twin.template import Route

STATE = {
    "url": "http://127.0.0.1:3000",
    "aws_endpoint": "http://127.0.0.1:4566",
    "program_id": "prg_landing1",
    "api_keys": {"partner": "trk_partner_<b>", "finance": "trk_finance_x", "admin": "trk_admin_x"},
}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs)["href"])


@pytest.fixture
def served(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "local.json").write_text(json.dumps(STATE))
    gateway = Gateway([Route("GET", "/v1/openapi.json", "DocsFunction", None)], {}, {},
                      access_log=tmp_path / "logs" / "access.log", echo=None)
    server = gateway.serve("127.0.0.1", 0)
    yield gateway, f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()


def _get(url: str, host: str | None = None):
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, dict(r.headers), r.read().decode()


def test_the_landing_page_links_the_docs_and_the_document_and_shows_program_keys_and_logs(served):
    _, url, state_dir = served
    status, headers, page = _get(url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    links = _Links()
    links.feed(page)
    assert links.links == ["docs", "v1/openapi.json"]  # relative; no link to a page that does not exist
    assert "prg_landing1" in page and str(state_dir / "local.json") in page and str(state_dir / "logs") in page
    assert "trk_finance_x" in page and "trk_partner_&lt;b&gt;" in page and "<b>" not in page  # escaped
    assert "Member portal" in page and "not built yet" in page
    assert "script-src" not in headers["Content-Security-Policy"] and "<script" not in page
    access = state_dir / "logs" / "access.log"
    deadline = time.monotonic() + 10  # the line is written just after the answer is sent
    while not (access.exists() and access.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.05)
    log = access.read_text().splitlines()
    assert len(log) == 1 and " GET / 200 " in log[0]


def test_keys_are_shown_only_to_a_request_addressed_to_a_loopback_name(served):
    _, url, _ = served
    port = url.rsplit(":", 1)[1]
    assert "trk_admin_x" in _get(url + "/", f"localhost:{port}")[2]
    page = _get(url + "/", f"rebound.example:{port}")[2]  # a page of another site that rebinds its name
    assert "trk_admin_x" not in page and "api_keys" in page and "prg_landing1" in page


def test_a_page_that_exists_is_linked(served):
    gateway, url, _ = served
    gateway.routes.append(Route("GET", "/portal", "PortalFunction", None))
    links = _Links()
    links.feed(_get(url + "/")[2])
    assert "portal" in links.links and "console" not in links.links


def test_other_methods_and_paths_are_still_the_gateways(served):
    gateway, _, _ = served
    assert gateway.handle("POST", "/", {}, b"", "127.0.0.1").status == 403  # as API Gateway: no such route
    assert gateway.handle("GET", "/nope", {}, b"", "127.0.0.1").status == 403
