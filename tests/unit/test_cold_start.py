"""What a function's cold start imports, and the settings checks that replaced the pydantic model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import api_event
from treue import runtime

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def imported(code: str, prefix: str) -> list[str]:
    env = {"PYTHONPATH": f"{FUNCTIONS}:{FUNCTIONS.parent}", "AWS_DEFAULT_REGION": "eu-central-1", "TABLE_NAME": "unit",
           "AWS_ACCESS_KEY_ID": "unit", "AWS_SECRET_ACCESS_KEY": "unit"}
    code += f"\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith({prefix!r}))))\n"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_authorizer_loads_no_pydantic_up_to_its_first_store_read():
    code = "import treue.handlers.authorizer\nfrom treue import runtime\nruntime.settings()\nruntime.store()"
    assert imported(code, "pydantic") == []


def test_an_api_function_loads_only_its_own_response_models():
    assert imported("import treue.handlers.accrual", "treue.handlers.models") == [
        "treue.handlers.models", "treue.handlers.models.points"]


def test_an_api_function_validates_a_request_without_the_powertools_resolver_and_only_its_route():
    """The first request is validated from the called handler's signature alone: Powertools' event handler
    (its resolver builds the OpenAPI model of every route on the first request) is never loaded, and of the
    function's routes only the called one has its validators built."""
    auth = {"program_id": "prg_unit", "key_id": "key_unit", "scope": "partner"}
    event = api_event("accrual/get_ledger.json", query={"limit": "0", "cursor": "x" * 513}, auth=auth)
    code = (
        "import json\nfrom treue.handlers import accrual\nfrom tests.support import LambdaContext\n"
        f"answer = accrual.handler(json.loads({json.dumps(event)!r}), LambdaContext())\n"
        "problem = json.loads(answer['body'])\n"
        "assert answer['statusCode'] == 422, answer\n"
        "assert [(e['location'], e['field']) for e in problem['errors']] == [('query', 'limit'), ('query', 'cursor')]\n"
        "assert [r.handler for r in accrual.app._calls] == ['ledger'], accrual.app._calls\n"
    )
    assert imported(code, "aws_lambda_powertools.event_handler") == []


def test_an_api_function_imports_no_powertools():
    """The API functions log and count with treue.handlers.logs (Powertools' Logger imports its JMESPath
    utilities and typing_extensions, its Metrics a validation layer) and trace with treue.handlers.tracing."""
    assert imported("from treue import handlers\nhandlers.api_modules()", "aws_lambda_powertools") == []


def test_importing_an_api_function_builds_no_pydantic_validator():
    """Every model an API function imports (its response models, the request models, the catalog models of the
    budget and order logic) builds its validator on first use: importing the handler builds none, so the
    pydantic plugin lookup (every installed package's entry points) does not run at import either."""
    code = (
        "from pydantic import BaseModel\nfrom treue import handlers\nhandlers.api_modules()\n"
        "def models(cls):\n    for sub in cls.__subclasses__():\n        yield sub\n        yield from models(sub)\n"
        "built = sorted(f'{c.__module__}.{c.__qualname__}' for c in models(BaseModel) if c.__pydantic_complete__)\n"
        "assert built == [], built\n"
    )
    assert imported(code, "pydantic.plugin._loader") == []


@pytest.mark.parametrize(("name", "value"), [
    ("TABLE_NAME", "ab"), ("REPORT_PAGE_SIZE", "0"), ("REPORT_PAGE_SIZE", "1001"),
    ("PROGRAM_CACHE_SECONDS", "-1"), ("CATALOG_CACHE_SECONDS", "86401"), ("WEBHOOK_RETRY_BASE_SECONDS", "0"),
    ("GIFT_CARD_PROVIDER", "acme"), ("PROGRAM_CACHE_SECONDS", "soon"), ("WEBHOOK_RESERVED_LOCAL_PORTS", "80,x"),
])
def test_a_bad_setting_is_a_clear_configuration_error(monkeypatch, name, value):
    monkeypatch.setenv("TABLE_NAME", "treue-unit")
    monkeypatch.setenv(name, value)
    runtime.reset()
    try:
        with pytest.raises(RuntimeError, match="invalid function configuration"):
            runtime.settings()
    finally:
        runtime.reset()


def test_settings_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "treue-unit")
    monkeypatch.setenv("REPORT_PAGE_SIZE", "1000")
    monkeypatch.setenv("PROGRAM_CACHE_SECONDS", "0")
    monkeypatch.setenv("WEBHOOK_RESERVED_LOCAL_PORTS", "8080, 9090")
    monkeypatch.setenv("ALLOW_LOCAL_WEBHOOKS", "TRUE")
    monkeypatch.delenv("BATCH_BUCKET", raising=False)
    runtime.reset()
    try:
        s = runtime.settings()
        assert (s.table_name, s.report_page_size, s.program_cache_seconds) == ("treue-unit", 1000, 0)
        assert s.reserved_local_webhook_ports == frozenset({8080, 9090}) and s.allow_local_webhooks is True
        assert s.batch_bucket is None and s.catalog_cache_seconds == 300 and s.gift_card_provider == "simulated"
    finally:
        runtime.reset()
