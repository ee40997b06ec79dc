"""The committed OpenAPI document and the events/ samples stay in step with the handlers."""

import json

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


def test_every_route_has_a_sample_event():
    samples = [json.loads(p.read_text()) for p in EVENTS.rglob("*.json")]
    covered = {(e.get("httpMethod"), e.get("resource")) for e in samples}
    for route in api_routes() | {("GET", "/v1/openapi.json")}:
        assert route in covered, route
    assert any("Records" in e for e in samples) and any(e.get("type") == "REQUEST" for e in samples)
    assert any(e.get("detail-type") == "Scheduled Event" for e in samples)  # the audit sealer


def test_every_payout_task_has_a_sample_state():
    from infra.stack import PAYOUT_TASKS

    for _, handler, _ in PAYOUT_TASKS.values():
        sample = json.loads((EVENTS / "payout" / f"{handler}.json").read_text())
        assert hasattr(payout, handler)
        assert {"program_id", "order_id", "type"} <= set(sample)
