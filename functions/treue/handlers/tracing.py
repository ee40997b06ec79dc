"""X-Ray subsegments for the functions, without the X-Ray SDK at init.

Lambda's active tracing (on for every function of the stack) records each invocation's segment; this
module adds what operators read under it, as Powertools Tracer did: a ``## <handler>`` subsegment per
invocation annotated ``ColdStart`` and ``Service``, a ``## <function>`` subsegment per traced method
nested in it, and an exception as the subsegment's fault with its cause. The X-Ray SDK's recorder
creates two botocore X-Ray clients when it is imported (about 150 ms of a cold start, for centralized
sampling that Lambda decides itself), so the subsegments are sent here as the SDK sends them: JSON
over UDP to the daemon at ``AWS_XRAY_DAEMON_ADDRESS``, under the trace and parent of the invocation's
``_X_AMZN_TRACE_ID``. Nothing is sent when that header is absent or not sampled, or when
``POWERTOOLS_TRACE_DISABLED`` is true (tests, the twin). AWS calls are not patched into subsegments.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for the annotations only
    from typing import Concatenate, ParamSpec, TypeVar

    _P = ParamSpec("_P")
    _R = TypeVar("_R")
    _E = TypeVar("_E")
    _C = TypeVar("_C")

HEADER = b'{"format": "json", "version": 1}\n'
_open: contextvars.ContextVar[tuple[dict[str, Any], ...]] = contextvars.ContextVar("treue_subsegments", default=())
_socket: socket.socket | None = None
_cold = True


def _trace() -> tuple[str, str] | None:
    """(trace id, parent segment id) of the current invocation when it is traced and sampled."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return None
    parts = dict(p.split("=", 1) for p in os.environ.get("_X_AMZN_TRACE_ID", "").split(";") if "=" in p)
    if parts.get("Sampled") != "1" or not parts.get("Root") or not parts.get("Parent"):
        return None
    return parts["Root"], parts["Parent"]


def _daemon() -> tuple[str, int]:
    address = os.environ.get("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000").split()[0]
    address = address.removeprefix("udp:")
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _send(document: dict[str, Any]) -> None:
    global _socket
    try:
        if _socket is None:
            _socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            _socket.setblocking(False)
        _socket.sendto(HEADER + json.dumps(document, default=str).encode(), _daemon())
    except (OSError, ValueError):
        pass  # tracing never fails a request


@contextmanager
def subsegment(name: str, annotations: dict[str, Any] | None = None) -> Iterator[dict[str, Any] | None]:
    """A subsegment of the invocation (or of the enclosing one) while the block runs; a no-op untraced."""
    trace = _trace()
    if trace is None:
        yield None
        return
    stack = _open.get()
    document: dict[str, Any] = {
        "id": os.urandom(8).hex(),
        "name": name[:200],
        "trace_id": trace[0],
        "parent_id": stack[-1]["id"] if stack else trace[1],
        "type": "subsegment",
        "start_time": time.time(),
        "in_progress": False,
    }
    if annotations:
        document["annotations"] = dict(annotations)
    token = _open.set((*stack, document))
    try:
        yield document
    except BaseException as exc:
        document["fault"] = True
        document["cause"] = {"exceptions": [{"id": os.urandom(8).hex(), "type": type(exc).__name__,
                                             "message": str(exc)[:1000]}]}
        raise
    finally:
        _open.reset(token)
        document["end_time"] = time.time()
        _send(document)


def put_annotation(key: str, value: str | int | float | bool) -> None:
    """Annotate the innermost open subsegment (searchable in X-Ray); nothing when untraced."""
    stack = _open.get()
    if stack:
        stack[-1].setdefault("annotations", {})[key] = value


class Tracer:
    """The two decorators the handlers use, with Powertools Tracer's names and subsegment names."""

    def __init__(self, service: str | None = None) -> None:
        self.service = service or os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")

    def capture_lambda_handler(self, handler: Callable[Concatenate[_E, _C, _P], _R]) -> Callable[..., _R]:
        @functools.wraps(handler)
        def traced(event: _E, context: _C, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            global _cold
            cold, _cold = _cold, False
            with subsegment(f"## {handler.__name__}", {"ColdStart": cold, "Service": self.service}):
                return handler(event, context, *args, **kwargs)

        return traced

    def capture_method(self, method: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(method)
        def traced(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with subsegment(f"## {method.__qualname__}"):
                return method(*args, **kwargs)

        return traced

    put_annotation = staticmethod(put_annotation)
