"""The garbage collector's pause during a Lambda cold start (treue/__init__.py): on in Lambda from the first
import of the package until the first invocation has been answered, frozen init objects afterwards, never
outside Lambda. Each case runs in a fresh interpreter: the pause is decided when the package is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

PROBE = """
import gc, json
import treue.handlers.logs as logs
paused_at_import = not gc.isenabled()

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "probe", 128, "probe"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:probe"

seen = []

@logs.Logger(service="probe").inject_lambda_context
def handler(event, context):
    seen.append(not gc.isenabled())
    if event.get("fail"):
        raise RuntimeError("the first invocation fails")
    return {}

try:
    handler({"fail": FAIL}, Context())
except RuntimeError:
    pass
after_first = gc.isenabled()
frozen = gc.get_freeze_count()
handler({}, Context())
print(json.dumps({"paused_at_import": paused_at_import, "paused_during_first": seen[0],
                  "enabled_after_first": after_first, "frozen": frozen, "enabled_later": gc.isenabled()}))
"""


def probe(execution_env: str | None, fail: bool = False, code: str = PROBE) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "AWS_EXECUTION_ENV"}
    env["PYTHONPATH"] = str(FUNCTIONS)
    if execution_env:
        env["AWS_EXECUTION_ENV"] = execution_env
    out = subprocess.run([sys.executable, "-c", code.replace("FAIL", str(fail))], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_lambda_pauses_the_collector_until_the_first_invocation_is_answered():
    seen = probe("AWS_Lambda_python3.13")
    assert seen["paused_at_import"] and seen["paused_during_first"]
    assert seen["enabled_after_first"] and seen["enabled_later"]
    assert seen["frozen"] > 10_000  # what init made (the handler's imports) is in the permanent generation


def test_a_failing_first_invocation_also_ends_the_pause():
    seen = probe("AWS_Lambda_python3.13", fail=True)
    assert seen["paused_during_first"] and seen["enabled_after_first"]


def test_outside_lambda_the_collector_is_never_paused_or_frozen():
    for execution_env in (None, "AWS_ECS_FARGATE"):
        seen = probe(execution_env)
        assert not seen["paused_at_import"] and not seen["paused_during_first"]
        assert seen["enabled_after_first"] and seen["frozen"] == 0


def test_the_docs_function_ends_the_pause_too():
    code = (
        "import gc, json\nimport treue.handlers.docs as docs\npaused = not gc.isenabled()\n"
        "answer = docs.handler({'resource': '/v1/openapi.json', 'path': '/v1/openapi.json'}, None)\n"
        "print(json.dumps({'paused': paused, 'enabled': gc.isenabled(), 'status': answer['statusCode']}))\n"
    )
    seen = probe("AWS_Lambda_python3.13", code=code)
    assert seen == {"paused": True, "enabled": True, "status": 200}
