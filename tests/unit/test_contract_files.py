"""The committed OpenAPI document and the events/ samples stay in step with the handlers."""

import json

from tests.support import EVENTS
from treue.handlers import api_routes, payout
from treue.openapi import render

ROOT = EVENTS.parent


def test_the_committed_openapi_document_matches_the_handlers():
    committed = (ROOT / "functions" / "treue" / "openapi.json").read_text()
    assert committed == render(), "run `make openapi` and commit functions/treue/openapi.json"


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
