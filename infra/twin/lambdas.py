"""Route moto's Lambda invocations (what Step Functions Lambda tasks call) to Treue's handlers.

moto's Lambda backend without Docker (``{"lambda": {"use_docker": False}}``) answers every Invoke
itself. The twin and the integration tests replace that answer: ``invoke(name, payload)`` runs the
function (a worker process in the twin, in-process in tests) and returns ``(ok, result)``; a failure
is reported the way Lambda does (``X-Amz-Function-Error`` and ``{"errorType", "errorMessage"}``), so
the state machine's Retry/Catch match the error by its name.

moto's ASL interpreter logs every failure that ends an execution as a multi-line dump of its parse
tree. An execution ending in a failure the workflow expects (a Fail state's error after an order
failed out of stock) is one line instead: :func:`quiet_expected_failures` drops moto's dump for those
error names, and :func:`report_execution_ends` hands each ended execution, summarized as an
:class:`ExecutionEnd` (which task failed, with which error), to the twin to print.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


def error_names(asl_text: str) -> tuple[set[str], set[str]]:
    """The error names a state machine definition expects: those its Retry and Catch name (not the
    service's own ``States.*`` and ``Lambda.*``), and those its Fail states end an execution with."""
    handled: set[str] = set()
    failed: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Type") == "Fail" and isinstance(node.get("Error"), str):
                failed.add(node["Error"])
            for key, value in node.items():
                if key == "ErrorEquals":
                    handled.update(n for n in value if not n.startswith(("States.", "Lambda.")))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(asl_text))
    return handled, failed


_FAILURE_DUMP = re.compile(r"^Exception=FailureEventException, Error=([^,\s]+)")
_ASL_LOGGER = "moto.stepfunctions.parser.asl.component.eval_component"
_PARSE_LOGGER = "moto.stepfunctions.parser.asl.parse.preprocessor"
# documented in the README (moto runs every item; a batch run on the twin never halts)
_KNOWN_WARNINGS = ("ToleratedFailurePercentagePath declarations currently have no effect",)


class _ExpectedFailures(logging.Filter):
    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self.names = frozenset(names)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.args[0] if isinstance(record.args, tuple) and record.args else record.getMessage()
        found = _FAILURE_DUMP.match(str(text))
        return not (found and found.group(1) in self.names)


class _KnownWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_KNOWN_WARNINGS)


def quiet_expected_failures(names: Iterable[str]) -> None:
    """moto logs no dump for a failure named in ``names``; other failures it still logs in full. Its
    known warning about ToleratedFailurePercentagePath (see the README) is dropped too."""
    asl = logging.getLogger(_ASL_LOGGER)
    for old in [f for f in asl.filters if isinstance(f, _ExpectedFailures)]:
        asl.removeFilter(old)
    asl.addFilter(_ExpectedFailures(names))
    parse = logging.getLogger(_PARSE_LOGGER)
    if not any(isinstance(f, _KnownWarnings) for f in parse.filters):
        parse.addFilter(_KnownWarnings())


@dataclass(frozen=True)
class ExecutionEnd:
    """How an execution ended: its state machine and name, status (SUCCEEDED, FAILED, TIMED_OUT,
    ABORTED), the execution's error, and the last task that failed in it (state, function, error)."""

    state_machine: str
    name: str
    status: str
    error: str | None = None
    cause: str | None = None
    failed_state: str | None = None
    failed_function: str | None = None
    failed_error: str | None = None
    failed_cause: str | None = None


def _details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def execution_end(state_machine: str, name: str, status: str, events: Iterable[dict[str, Any]],
                  error: str | None = None, cause: str | None = None) -> ExecutionEnd:
    """An :class:`ExecutionEnd` from an execution's history events (``GetExecutionHistory``'s)."""
    state = function = None
    failed: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None)
    for event in events:
        kind = event.get("type", "")
        kind, details = str(getattr(kind, "value", kind)), _details(event)  # moto's types are an Enum
        if kind.endswith("StateEntered"):
            state, function = details.get("name"), None
        elif kind in ("LambdaFunctionScheduled", "TaskScheduled"):
            function = str(details.get("resource", "")).rsplit(":", 1)[-1] or None
        elif kind.startswith(("LambdaFunction", "Task")) and kind.endswith(("Failed", "TimedOut")):
            failed = (state, function, details.get("error") or kind, details.get("cause"))
    return ExecutionEnd(state_machine, name, status, error, cause, *failed)


def report_execution_ends(report: Callable[[ExecutionEnd], None]) -> None:
    """Call ``report`` with every execution of moto's ASL interpreter (in this process) that ends."""
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    cls = BaseExecutionWorkerCommunication
    original = cls.__dict__.get("_treue_terminated", cls.terminated)

    def terminated(self) -> None:
        original(self)
        execution = self.execution
        try:
            env = execution.exec_worker.env
            events = env.event_manager.get_event_history() if env is not None else []
            status = getattr(execution.exec_status, "value", execution.exec_status)
            report(execution_end(execution.state_machine.name, execution.name, str(status), events,
                                 execution.error, execution.cause))
        except Exception:  # a report must never break the execution's end
            logging.getLogger(__name__).exception("reporting the end of execution %s", execution.exec_arn)

    cls._treue_terminated = original
    cls.terminated = terminated
