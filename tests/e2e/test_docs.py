"""The API as a tool reads it, on the twin: the reference page at /docs, the landing page at /, the OpenAPI
document's relative server URL, and a client generated from the document by openapi-python-client."""

import importlib
import json
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

pytestmark = pytest.mark.e2e
DOCUMENT = Path(__file__).resolve().parents[2] / "functions" / "treue" / "openapi.json"


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [a[k] for k in ("src", "href", "data-spec") if a.get(k)]


def _fetch(url: str) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, dict(r.headers), r.read()


def test_docs_serves_the_api_reference_page_and_its_files_without_a_key(twin):
    status, headers, body = _fetch(twin.url + "/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert "<title>Treue API</title>" in page
    refs = _Refs()
    refs.feed(page)
    scripts = [u for u in refs.urls if u.endswith(".js")]
    assert "docs/swagger-ui-bundle.js" in scripts
    for url in refs.urls:  # every file of the page comes from the twin itself
        status, headers, body = _fetch(urljoin(twin.url + "/docs", url))
        assert status == 200, url
        if url.endswith(".js"):
            assert headers["Content-Type"].startswith("text/javascript") and body, url
    bundle = _fetch(twin.url + "/docs/swagger-ui-bundle.js")[2]
    assert len(bundle) > 100_000 and b"SwaggerUIBundle" in bundle
    assert _fetch(twin.url + "/docs/swagger-ui.css")[1]["Content-Type"].startswith("text/css")


def test_the_landing_page_links_the_docs_and_the_document_and_is_in_the_access_log(twin):
    status, headers, body = _fetch(twin.url + "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    refs = _Refs()
    refs.feed(page)
    assert {"docs", "v1/openapi.json"} <= set(refs.urls)
    assert twin.state["program_id"] in page and twin.key("partner") in page  # asked for on 127.0.0.1
    assert str(twin.state_file) in page and "logs" in page
    access_log = twin.state_file.parent / "logs" / "access.log"
    deadline = time.monotonic() + 5
    while not re.search(r" GET / 200 ", access_log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert re.search(r" GET / 200 ", access_log.read_text())


def test_the_documents_relative_server_url_reaches_the_api_it_was_served_from(twin):
    served_at = twin.url + "/v1/openapi.json"
    document = json.loads(_fetch(served_at)[2])
    base = urljoin(served_at, document["servers"][0]["url"]).rstrip("/")
    assert base == twin.url
    status, _, catalog = twin.request("GET", base.removeprefix(twin.url) + "/v1/catalog")
    assert status == 200 and catalog["items"]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower().replace(" ", "_")


def test_a_client_generated_by_openapi_python_client_covers_every_operation_and_works(twin, tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("package_name_override: treue_client\npost_hooks: []\n")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(DOCUMENT), "--meta", "none",
         "--config", str(tmp_path / "config.yaml"), "--output-path", str(tmp_path / "treue_client"),
         "--fail-on-warning"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0 and "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert seconds < 60, seconds
    # one module per operation, named after its operationId, in a package per tag
    document = json.loads(DOCUMENT.read_text())
    expected = {(_snake(op["tags"][0]), _snake(op["operationId"]))
                for item in document["paths"].values() for op in item.values()}
    generated = {(p.parent.name, p.stem) for p in (tmp_path / "treue_client" / "api").glob("*/*.py")
                 if p.stem != "__init__"}
    assert generated == expected and len(generated) == sum(len(item) for item in document["paths"].values())

    monkeypatch.syspath_prepend(str(tmp_path))
    client_module = importlib.import_module("treue_client")
    from treue_client.api.members import enroll_member, get_member
    from treue_client.api.points import accrue_purchase, get_member_balance
    from treue_client.models import Enrollment, Money, Problem, Purchase

    client = client_module.AuthenticatedClient(base_url=twin.url, token=twin.key("partner"))
    email = f"generated.{uuid.uuid4().hex[:10]}@example.com"
    enrolled = enroll_member.sync_detailed(client=client, body=Enrollment(email=email, name="Grace Hopper"))
    assert enrolled.status_code == 201 and enrolled.parsed.email == email
    member_id = enrolled.parsed.id
    purchase = Purchase(transaction_id=f"gen-{uuid.uuid4().hex[:10]}", amount=Money(value=4999, currency="EUR"),
                        occurred_at=datetime(2026, 11, 20, 10, tzinfo=UTC))
    accrued = accrue_purchase.sync(member_id, client=client, body=purchase)
    assert accrued.points_earned == 49 and accrued.replayed is False and accrued.balance.available == 49
    assert accrue_purchase.sync(member_id, client=client, body=purchase).replayed is True
    balance = get_member_balance.sync(member_id, client=client)
    assert (balance.available, balance.held, balance.lifetime_earned) == (49, 0, 49)
    missing = get_member.sync_detailed("mem_doesnotexist", client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, Problem)
    assert missing.parsed.type_.endswith("/member-not-found")
