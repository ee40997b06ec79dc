"""The committed OpenAPI document and the events/ samples stay in step with the handlers."""

import json
import re
from urllib.parse import urljoin

from tests.support import EVENTS
from treue.handlers import api_routes, payout
from treue.openapi import render

ROOT = EVENTS.parent


def test_the_committed_openapi_document_matches_the_handlers():
    committed = (ROOT / "functions" / "treue" / "openapi.json").read_text()
    assert committed == render(), "run `make openapi` and commit functions/treue/openapi.json"


def test_the_openapi_document_is_a_valid_openapi_3_1_document():
    from openapi_spec_validator import validate

    document = json.loads((ROOT / "functions" / "treue" / "openapi.json").read_text())
    validate(document)  # raises on any fault, e.g. a path parameter that no operation declares
    for path, item in document["paths"].items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path, declared)


def _operations(document):
    return [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_every_operation_documents_its_success_answer():
    """A route whose @responses document only errors still documents the answer of its return annotation (PATCH
    /v1/program, PUT and DELETE of rules and segments documented none: a client, or schemathesis, had no 2xx)."""
    document = json.loads(render())
    missing = [f"{method.upper()} {path}" for path, item in document["paths"].items()
               for method, operation in item.items()
               if not any(code.startswith("2") for code in operation.get("responses", {}))]
    assert missing == []


def test_every_operation_has_a_stable_camel_case_id_declared_with_its_route_and_one_described_tag():
    document = json.loads((ROOT / "functions" / "treue" / "openapi.json").read_text())
    operations = _operations(document)
    ids = [op.get("operationId") for _, _, op in operations]
    # camelCase: Powertools' generated ids (enroll_v1_members_post) fail here, so each route declares its own
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", i or "") for i in ids), ids
    assert len(set(ids)) == len(ids) == len(operations)
    tags = {t["name"]: t.get("description", "") for t in document["tags"]}
    assert all(text.strip() for text in tags.values()), tags
    for method, path, op in operations:
        assert len(op.get("tags", [])) == 1 and op["tags"][0] in tags, (method, path, op.get("tags"))
    assert {op["tags"][0] for _, _, op in operations} == set(tags)  # no tag without an operation
    # the document's description names every area of the API
    for name in set(tags) - {"Documentation"}:
        assert f"**{name}**" in document["info"]["description"], name
    assert {"Rewards", "Batches", "Webhooks", "Events", "Reports", "Queue senders"} <= set(tags)


def test_the_server_url_is_relative_to_where_the_document_is_served():
    """OpenAPI 3.1: a relative server URL is resolved against the URL the document was read from; it must
    reach the API on the twin (/v1/openapi.json at the root) and on API Gateway (under the stage path)."""
    document = json.loads((ROOT / "functions" / "treue" / "openapi.json").read_text())
    (server,) = document["servers"]
    for served_at, api in (
        ("http://127.0.0.1:3000/v1/openapi.json", "http://127.0.0.1:3000"),
        ("http://127.0.0.1:41237/v1/openapi.json", "http://127.0.0.1:41237"),
        ("https://a1b2c3.execute-api.eu-central-1.amazonaws.com/prod/v1/openapi.json",
         "https://a1b2c3.execute-api.eu-central-1.amazonaws.com/prod"),
    ):
        base = urljoin(served_at, server["url"])
        # tools join the server URL and a path with one slash (a trailing slash of the server URL dropped)
        assert base.rstrip("/") + "/v1/members" == api + "/v1/members", (served_at, base)
        assert urljoin(base, "v1/openapi.json") == served_at


def test_every_route_has_a_sample_event():
    samples = [json.loads(p.read_text()) for p in EVENTS.rglob("*.json")]
    covered = {(e.get("httpMethod"), e.get("resource")) for e in samples}
    from treue.routes import ROUTES

    for route in api_routes() | {(r.method, r.path) for r in ROUTES if r.public}:
        assert route in covered, route
    assert any("Records" in e for e in samples) and any(e.get("type") == "REQUEST" for e in samples)
    assert any(e.get("detail-type") == "Scheduled Event" for e in samples)  # the audit sealer


def test_every_payout_task_has_a_sample_state():
    from infra.stack import PAYOUT_TASKS

    for _, handler, _ in PAYOUT_TASKS.values():
        sample = json.loads((EVENTS / "payout" / f"{handler}.json").read_text())
        assert hasattr(payout, handler)
        assert {"program_id", "order_id", "type"} <= set(sample)
