"""treue.handlers.logs writes the lines Powertools' Logger and Metrics write (key for key), without importing
Powertools; compared here with Powertools itself, which the API functions still use."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import LambdaContext

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _run(logger_cls, metrics_cls, unit, service: str) -> None:
    logger = logger_cls(service=service)
    metrics = metrics_cls(namespace="Treue", service=service)

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event, context):
        logger.append_keys(program_id="prg_1")
        logger.info("accrued", extra={"points": 49, "none": None})
        logger.warning({"detail": "a dict message"})
        metrics.add_metric(name="PointsEarned", unit=unit.Count, value=49)
        metrics.add_metric(name="PointsEarned", unit=unit.Count, value=2)
        metrics.add_metric(name="Rejected", unit=unit.Count, value=1)
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("failed", extra={"message_id": "m-1"})
        logger.debug("not at INFO")
        return {"ok": True}

    assert handler({}, LambdaContext()) == {"ok": True}


def test_the_lines_match_powertools_key_for_key(capsys, monkeypatch):
    from aws_lambda_powertools import Logger as PowertoolsLogger
    from aws_lambda_powertools import Metrics as PowertoolsMetrics
    from aws_lambda_powertools.metrics import MetricUnit as PowertoolsUnit

    from treue.handlers import logs

    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.setattr(logs, "_cold_start", True)
    _run(logs.Logger, logs.Metrics, logs.MetricUnit, "lean")
    ours = _lines(capsys.readouterr().out)
    _run(PowertoolsLogger, PowertoolsMetrics, PowertoolsUnit, "lean")
    theirs = _lines(capsys.readouterr().out)
    assert len(ours) == len(theirs) == 4  # info, warning, exception, the EMF document

    for a, b in zip(ours, theirs, strict=True):
        assert list(a) == list(b), (a, b)  # the same keys in the same order
        for key in ("timestamp",):
            if key in a:
                assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}[+-]\d{4}", a[key])
                a.pop(key), b.pop(key)
        if "_aws" in a:
            a["_aws"].pop("Timestamp"), b["_aws"].pop("Timestamp")
        if "exception" in a:  # the same traceback, but raised from this file's two call sites
            assert a["exception"].endswith("ValueError: bad") and b["exception"].endswith("ValueError: bad")
            assert a["stack_trace"]["frames"][0]["function"] == b["stack_trace"]["frames"][0]["function"]
            for k in ("exception", "stack_trace", "location"):
                a.pop(k), b.pop(k)
        if a.get("location"):
            assert a.pop("location").split(":")[0] == b.pop("location").split(":")[0] == "handler"
        assert a == b
    assert ours[0]["cold_start"] is True and "none" not in ours[0]
    assert ours[3] == {"_aws": {"CloudWatchMetrics": [{"Namespace": "Treue", "Dimensions": [["service"]], "Metrics": [
        {"Name": "PointsEarned", "Unit": "Count"}, {"Name": "Rejected", "Unit": "Count"}]}]},
        "service": "lean", "PointsEarned": [49.0, 2.0], "Rejected": [1.0]}


def test_only_the_first_invocation_is_a_cold_start_and_clear_state_drops_appended_keys(capsys, monkeypatch):
    from treue.handlers import logs

    monkeypatch.setattr(logs, "_cold_start", True)
    logger = logs.Logger(service="states")

    @logger.inject_lambda_context(clear_state=True)
    def handler(event, context):
        if event.get("append"):
            logger.append_keys(order_id="ord_1")
        logger.info("step")

    handler({"append": True}, LambdaContext())
    handler({}, LambdaContext())
    first, second = _lines(capsys.readouterr().out)
    assert (first["cold_start"], second["cold_start"]) == (True, False)
    assert first["order_id"] == "ord_1" and "order_id" not in second


def test_no_metric_no_document_and_disabled_metrics_print_nothing(capsys, monkeypatch):
    from treue.handlers import logs

    metrics = logs.Metrics(namespace="Treue", service="quiet")
    with pytest.warns(UserWarning, match="No application metrics to publish"):
        metrics.log_metrics(lambda event, context: None)({}, None)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.add_metric(name="X", unit=logs.MetricUnit.Count, value=1)
    metrics.flush_metrics()
    assert _lines(capsys.readouterr().out) == []
    assert logs.Metrics._values == {}


def test_the_handlers_of_the_other_functions_import_no_powertools():
    code = ("import treue.handlers.authorizer, treue.handlers.accrual_queue, treue.handlers.audit, "
            "treue.handlers.sweeper, treue.handlers.payout, treue.handlers.batch_tasks, treue.handlers.webhook_fanout,"
            " treue.handlers.webhook_sender, treue.handlers.report_worker\n"
            "import sys\nprint(sorted(m for m in sys.modules if m.startswith('aws_lambda_powertools')))")
    env = {"PYTHONPATH": str(FUNCTIONS), "AWS_DEFAULT_REGION": "eu-central-1", "TABLE_NAME": "unit"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_correlation_id_of_an_api_request_matches_powertools(capsys, monkeypatch):
    """The API functions log each request's id as ``correlation_id`` (Powertools' API_GATEWAY_REST path), after
    the context keys; an event without one logs none."""
    from aws_lambda_powertools import Logger as PowertoolsLogger
    from aws_lambda_powertools.logging import correlation_paths

    from treue.handlers import logs

    assert logs.API_GATEWAY_REST == correlation_paths.API_GATEWAY_REST
    monkeypatch.setattr(logs, "_cold_start", True)
    for logger_cls in (logs.Logger, PowertoolsLogger):
        logger = logger_cls(service="api")

        @logger.inject_lambda_context(correlation_id_path=logs.API_GATEWAY_REST)
        def handler(event, context, logger=logger):
            logger.info("answered", extra={"status": 200})

        handler({"requestContext": {"requestId": "req-1"}}, LambdaContext())
        handler({"requestContext": None}, LambdaContext())
    ours_with, ours_without, theirs_with, theirs_without = _lines(capsys.readouterr().out)
    for a, b in ((ours_with, theirs_with), (ours_without, theirs_without)):
        assert list(a) == list(b), (a, b)
        for key in ("timestamp", "location", "cold_start"):
            a.pop(key), b.pop(key)
        assert a == b
    assert ours_with["correlation_id"] == "req-1" and "correlation_id" not in ours_without
