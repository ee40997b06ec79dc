"""Route moto's Lambda invocations (what Step Functions Lambda tasks call) to Treue's handlers.

moto's Lambda backend without Docker (``{"lambda": {"use_docker": False}}``) answers every Invoke
itself. The twin and the integration tests replace that answer: ``invoke(name, payload)`` runs the
function (a worker process in the twin, in-process in tests) and returns ``(ok, result)``; a failure
is reported the way Lambda does (``X-Amz-Function-Error`` and ``{"errorType", "errorMessage"}``), so
the state machine's Retry/Catch match the error by its name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

Invoke = Callable[[str, Any], tuple[bool, Any]]


def route_lambda_invocations(invoke: Invoke) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def _invoke(self, function_name, qualifier, body, headers, response_headers):
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        payload = json.loads(body) if body else {}
        ok, result = invoke(name, payload)
        if not ok:
            response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = _invoke


def in_process(handlers: dict[str, Callable[[Any, Any], Any]], context_factory: Callable[[], Any]) -> Invoke:
    """An ``invoke`` that calls handler functions in this process (integration tests)."""

    def invoke(name: str, payload: Any) -> tuple[bool, Any]:
        handler = handlers.get(name)
        if handler is None:
            return False, {"errorType": "ResourceNotFoundException", "errorMessage": f"no function {name}"}
        try:
            return True, handler(payload, context_factory())
        except Exception as err:  # reported to the state machine like Lambda does
            return False, {"errorType": type(err).__name__, "errorMessage": str(err)}

    return invoke


def definition(asl_text: str, substitutions: dict[str, str]) -> str:
    """The ASL with ``${Name}`` substitutions applied (what DefinitionSubstitutions does)."""
    for name, value in substitutions.items():
        asl_text = asl_text.replace("${" + name + "}", value)
    return asl_text
