"""Tracing without the X-Ray SDK at init: no handler imports it, and the subsegments still reach the daemon."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from treue.handlers import tracing

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
HANDLERS = sorted(p.stem for p in (FUNCTIONS / "treue" / "handlers").glob("*.py")
                  if p.stem not in ("__init__", "tracing", "http"))


def test_no_handler_imports_the_xray_sdk():
    code = (
        "import sys, importlib\n"
        f"for name in {HANDLERS!r}:\n"
        "    importlib.import_module('treue.handlers.' + name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('aws_xray_sdk'))))\n"
    )
    env = {"PYTHONPATH": str(FUNCTIONS), "AWS_DEFAULT_REGION": "eu-central-1", "TABLE_NAME": "unit",
           "AWS_ACCESS_KEY_ID": "unit", "AWS_SECRET_ACCESS_KEY": "unit"}
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], env=env, capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.fixture()
def daemon(monkeypatch):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{sock.getsockname()[1]}")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    monkeypatch.setattr(tracing, "_cold", True)

    def received(count: int) -> list[dict]:
        documents = []
        for _ in range(count):
            header, body = sock.recv(65536).split(b"\n", 1)
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))
        return documents

    yield received
    sock.close()


def test_handler_and_method_subsegments_reach_the_daemon_under_the_invocation(daemon):
    tracer = tracing.Tracer(service="accrual")

    @tracer.capture_method
    def work(x):
        tracing.put_annotation("member", "m-1")
        return x + 1

    @tracer.capture_lambda_handler
    def handler(event, context):
        return work(event["x"])

    assert handler({"x": 1}, None) == 2
    inner, outer = daemon(2)
    assert outer["name"] == "## handler" and inner["name"].endswith("work")
    assert outer["trace_id"] == inner["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert outer["parent_id"] == "53995c3f42cd8ad8" and inner["parent_id"] == outer["id"]
    assert outer["annotations"] == {"ColdStart": True, "Service": "accrual"}
    assert inner["annotations"] == {"member": "m-1"}
    assert outer["type"] == inner["type"] == "subsegment"
    assert outer["start_time"] <= inner["start_time"] <= inner["end_time"] <= outer["end_time"]

    handler({"x": 2}, None)
    assert daemon(2)[1]["annotations"]["ColdStart"] is False


def test_an_exception_is_the_subsegments_fault_and_still_raised(daemon):
    tracer = tracing.Tracer(service="orders")

    @tracer.capture_lambda_handler
    def handler(event, context):
        raise KeyError("boom")

    with pytest.raises(KeyError):
        handler({}, None)
    (document,) = daemon(1)
    assert document["fault"] is True
    assert document["cause"]["exceptions"][0]["type"] == "KeyError"


@pytest.mark.parametrize("header", ["", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"])
def test_nothing_is_sent_when_the_invocation_is_not_traced(daemon, monkeypatch, header):
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    tracer = tracing.Tracer()

    @tracer.capture_lambda_handler
    def handler(event, context):
        tracing.put_annotation("ignored", 1)
        return "ok"

    assert handler({}, None) == "ok"
    with pytest.raises(TimeoutError):
        daemon(1)
