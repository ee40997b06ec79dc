"""Structured logs and CloudWatch metrics for the handlers, without loading Powertools at init.

Powertools' Logger imports its JMESPath utilities (and with them ``typing_extensions``) for correlation-id
paths these functions never use, and its Metrics a schema-validation layer; together a fifth of the
authorizer's whole cold start. The lines written here are the ones Powertools writes, key for key, so log
queries, metric filters and the EMF metrics stay as they were:

- ``Logger``: one JSON line per record on stdout (``level``, ``location``, ``message``, ``timestamp``,
  ``service``, the Lambda context keys set by ``inject_lambda_context``, keys added with ``append_keys``
  and ``extra=``, ``exception``/``exception_name``/``stack_trace`` for an exception, ``xray_trace_id``;
  keys whose value is None are left out). Records go through the standard ``logging`` logger named after
  the service (``treue.<service>``), so the level (``POWERTOOLS_LOG_LEVEL``, ``LOG_LEVEL``, or Lambda's
  ``AWS_LAMBDA_LOG_LEVEL``) and test log capture work as before.
- ``Metrics``: ``add_metric`` collects, ``log_metrics`` prints one Embedded Metric Format document after
  each invocation (namespace, the ``service`` dimension, values per metric), nothing but a warning when
  no metric was added; ``POWERTOOLS_METRICS_DISABLED`` (or ``POWERTOOLS_DEV``) turns printing off.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from treue import end_init_pause

if TYPE_CHECKING:  # for the annotations only
    from typing import Concatenate, ParamSpec, TypeVar

    _P = ParamSpec("_P")
    _R = TypeVar("_R")
    _E = TypeVar("_E")
    _C = TypeVar("_C")
    LambdaHandler = Callable[Concatenate[_E, _C, _P], _R]  # (event, context, ...) → answer
    Wrapped = Callable[..., _R]  # what the decorators return: a handler of the same answer

_cold_start = True
_LEVELS = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "WARNING": "WARNING",
           "ERROR": "ERROR", "FATAL": "CRITICAL", "CRITICAL": "CRITICAL"}
# attributes every LogRecord has; the others on a record came from ``extra=``
_RECORD_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


# Powertools' correlation_paths.API_GATEWAY_REST: the request id of an API Gateway REST proxy event
API_GATEWAY_REST = "requestContext.requestId"


def _lookup(event: Any, path: str) -> Any:
    """The value at a dotted path of keys in the event (Powertools takes a JMESPath; these paths are plain keys),
    or None."""
    for key in path.split("."):
        event = event.get(key) if isinstance(event, dict) else None
    return event


def _service() -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or "service_undefined"


def _is_cold_start() -> bool:
    """True for the environment's first invocation (never under provisioned concurrency)."""
    global _cold_start
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "provisioned-concurrency":
        _cold_start = False
    cold, _cold_start = _cold_start, False
    return cold


def _truthy(name: str) -> bool:
    return os.environ.get(name, "false").strip().lower() in ("1", "true", "yes", "on", "y", "t")


class _Formatter(logging.Formatter):
    """Powertools' JSON layout; ``keys`` (the Lambda context and appended keys) are shared by every
    Logger of the service, as Powertools shares them."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self.keys: dict[str, Any] = {}

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        local = time.localtime(record.created)
        return f"{time.strftime('%Y-%m-%d %H:%M:%S', local)},{int(record.msecs):03d}{time.strftime('%z', local)}"

    def format(self, record: logging.LogRecord) -> str:
        message = record.msg if isinstance(record.msg, dict) else record.getMessage()
        out: dict[str, Any] = {"level": record.levelname, "location": f"{record.funcName}:{record.lineno}",
                               "message": message, "timestamp": self.formatTime(record), "service": self.service}
        out.update(self.keys)
        out.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_KEYS})
        if record.exc_info and record.exc_info[0] is not None:
            kind, value, tb = record.exc_info
            out["exception"] = "".join(traceback.format_exception(kind, value, tb)).rstrip("\n")
            out["exception_name"] = kind.__name__
            out["stack_trace"] = {
                "type": kind.__name__, "value": str(value), "module": kind.__module__,
                "frames": [{"file": f.filename, "line": f.lineno, "function": f.name, "statement": f.line or ""}
                           for f in traceback.extract_tb(tb)],
            }
        trace = os.environ.get("_X_AMZN_TRACE_ID", "")
        if trace:
            out["xray_trace_id"] = trace.split(";", 1)[0].removeprefix("Root=")
        return json.dumps({k: v for k, v in out.items() if v is not None}, separators=(",", ":"), default=str)


class Logger:
    """The Powertools Logger calls the handlers make: ``info`` … ``exception`` with ``extra=``,
    ``append_keys`` and the ``inject_lambda_context`` decorator (with or without ``clear_state``)."""

    def __init__(self, service: str | None = None, level: str | None = None) -> None:
        self.service = service or _service()
        # not the service's own name, which Powertools' Logger would configure (tests compare the two)
        self._logger = logging.getLogger(f"treue.{self.service}")
        formatter = next((h.formatter for h in self._logger.handlers if isinstance(h.formatter, _Formatter)), None)
        if formatter is None:  # the service's first Logger: its handler and level
            formatter = _Formatter(self.service)
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(formatter)
            self._logger.addHandler(handler)
            named = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or level or os.environ.get("POWERTOOLS_LOG_LEVEL")
                     or os.environ.get("LOG_LEVEL") or "INFO")
            self._logger.setLevel(_LEVELS.get(str(named).upper(), "INFO"))
        self._formatter = formatter

    def _log(self, level: int, msg: Any, args: tuple[Any, ...], extra: dict[str, Any] | None,
             exc_info: Any = None) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, msg, *args, extra=extra, exc_info=exc_info, stacklevel=3)

    def debug(self, msg: Any, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.DEBUG, msg, args, extra)

    def info(self, msg: Any, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.INFO, msg, args, extra)

    def warning(self, msg: Any, *args: Any, extra: dict[str, Any] | None = None, exc_info: Any = None) -> None:
        self._log(logging.WARNING, msg, args, extra, exc_info)

    def error(self, msg: Any, *args: Any, extra: dict[str, Any] | None = None, exc_info: Any = None) -> None:
        self._log(logging.ERROR, msg, args, extra, exc_info)

    def exception(self, msg: Any, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.ERROR, msg, args, extra, True)

    def append_keys(self, **keys: Any) -> None:
        self._formatter.keys.update(keys)

    def remove_keys(self, names: list[str]) -> None:
        for name in names:
            self._formatter.keys.pop(name, None)

    @overload
    def inject_lambda_context(self, handler: LambdaHandler[_E, _C, _P, _R], *, clear_state: bool = False,
                              correlation_id_path: str | None = None) -> Wrapped[_R]: ...

    @overload
    def inject_lambda_context(self, handler: None = None, *, clear_state: bool = False,
                              correlation_id_path: str | None = None
                              ) -> Callable[[LambdaHandler[_E, _C, _P, _R]], Wrapped[_R]]: ...

    def inject_lambda_context(self, handler: LambdaHandler[_E, _C, _P, _R] | None = None, *,
                              clear_state: bool = False, correlation_id_path: str | None = None
                              ) -> Any:
        """Adds the invocation's context keys (and ``cold_start``) to every record it logs; ``clear_state``
        drops the keys the previous invocation appended first; ``correlation_id_path`` (dotted keys of the
        event, as ``API_GATEWAY_REST``) adds the event's value there as ``correlation_id``."""
        if handler is None:
            return functools.partial(self.inject_lambda_context, clear_state=clear_state,
                                     correlation_id_path=correlation_id_path)

        @functools.wraps(handler)
        def decorate(event: _E, context: _C, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            if clear_state:
                self._formatter.keys.clear()
            self._formatter.keys.update({
                "cold_start": _is_cold_start(),
                "function_name": getattr(context, "function_name", None),
                "function_memory_size": getattr(context, "memory_limit_in_mb", None),
                "function_arn": getattr(context, "invoked_function_arn", None),
                "function_request_id": getattr(context, "aws_request_id", None),
            })
            if correlation_id_path:
                self._formatter.keys["correlation_id"] = _lookup(event, correlation_id_path)
            try:
                return handler(event, context, *args, **kwargs)
            finally:
                end_init_pause()  # the collector runs again once the first invocation is answered

        return decorate


class MetricUnit:
    """The CloudWatch units the handlers count in (the names Powertools' ``MetricUnit`` gives them)."""

    Count = "Count"
    Milliseconds = "Milliseconds"
    Seconds = "Seconds"
    Bytes = "Bytes"


class Metrics:
    """Powertools' CloudWatch EMF metrics: metrics added during an invocation are printed as one EMF
    document when ``log_metrics`` ends it. Every instance shares the collected metrics, as Powertools'."""

    _values: dict[str, tuple[str, list[float]]] = {}  # name → (unit, values)

    def __init__(self, namespace: str | None = None, service: str | None = None) -> None:
        self.namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE")
        self.service = service or os.environ.get("POWERTOOLS_SERVICE_NAME")

    def add_metric(self, name: str, unit: str, value: float) -> None:
        metric_unit, values = self._values.setdefault(name, (unit, []))
        if metric_unit != unit:
            raise ValueError(f"metric {name} is counted in {metric_unit}, not {unit}")
        values.append(float(value))
        if len(values) == 1 and len(self._values) == 100:  # the most metrics one document takes
            self.flush_metrics()

    def flush_metrics(self) -> None:
        if not self._values:
            warnings.warn("No application metrics to publish. The cold-start metric may be published if enabled. "
                          "If application metrics should never be empty, consider using 'raise_on_empty_metrics'",
                          stacklevel=2)
            return
        if not self.namespace:
            raise ValueError("metrics need a namespace (POWERTOOLS_METRICS_NAMESPACE)")
        disabled = _truthy("POWERTOOLS_METRICS_DISABLED") or (
            _truthy("POWERTOOLS_DEV") and "POWERTOOLS_METRICS_DISABLED" not in os.environ)
        if not disabled:
            names = list(self._values)
            for start in range(0, len(names), 100):  # at most 100 metrics per document
                chunk = names[start:start + 100]
                dimensions = {"service": self.service} if self.service else {}
                document: dict[str, Any] = {
                    "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                        "Namespace": self.namespace, "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": n, "Unit": self._values[n][0]} for n in chunk]}]},
                    **dimensions,
                    **{n: self._values[n][1] for n in chunk},
                }
                print(json.dumps(document, separators=(",", ":")))
        self._values.clear()

    def log_metrics(self, handler: LambdaHandler[_E, _C, _P, _R]) -> Wrapped[_R]:
        @functools.wraps(handler)
        def decorate(event: _E, context: _C, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return handler(event, context, *args, **kwargs)
            finally:
                self.flush_metrics()

        return decorate
