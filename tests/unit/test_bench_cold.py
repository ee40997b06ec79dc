"""The fairness of ``python -m tests.bench cold`` (floor in turn with each row, Lambda's variables for the
functions only, a write made new in every run), not its measured figures."""

from __future__ import annotations

import json

import pytest

from tests import bench
from tests.support import api_event
from treue.logic.models import Enrollment, OrderRequest, Purchase


def _body(event: dict) -> dict:
    return json.loads(event["body"])


def test_a_write_is_made_new_in_every_run_and_stays_valid():
    purchase = api_event("accrual/post_purchase.json")
    first, second = bench.fresh(purchase, 1), bench.fresh(purchase, 2)
    assert _body(first)["transaction_id"] != _body(second)["transaction_id"]
    assert {k: v for k, v in _body(first).items() if k != "transaction_id"} == {
        k: v for k, v in _body(purchase).items() if k != "transaction_id"}
    Purchase.model_validate_json(first["body"])
    assert _body(purchase)["transaction_id"] == "pos-4711-0001"  # the sample itself is left alone

    enroll = api_event("enrollment/post_member.json")
    runs = [bench.fresh(enroll, n) for n in (1, 2)]
    for field in ("email", "phone"):  # each identifier is unique within a program
        assert _body(runs[0])[field] != _body(runs[1])[field]
    for event in runs:
        Enrollment.model_validate_json(event["body"])
        assert event["headers"]["Idempotency-Key"] == event["multiValueHeaders"]["Idempotency-Key"][0]
    assert runs[0]["headers"]["Idempotency-Key"] != runs[1]["headers"]["Idempotency-Key"]

    order = bench.fresh(api_event("orders/post_order.json"), 3)
    assert order["headers"]["Idempotency-Key"] == "pos-4711-order-1-run3"
    OrderRequest.model_validate_json(order["body"])


def test_a_read_is_the_same_in_every_run():
    for sample in ("enrollment/get_member.json", "vouchers/validate.json"):
        event = api_event(sample)
        assert bench.fresh(event, 1) == bench.fresh(event, 2) == event


def test_the_functions_get_the_variables_lambda_sets_and_the_floor_none(tmp_path):
    template = {"Resources": {"OrdersFunctionAB12": {"Type": "AWS::Lambda::Function", "Properties": {
        "Handler": "treue.handlers.orders.handler", "Runtime": "python3.13", "MemorySize": 1024,
        "TracingConfig": {"Mode": "PassThrough"}}}}}
    (tmp_path / "Treue.template.json").write_text(json.dumps(template))
    env = bench.lambda_environment("treue.handlers.orders.handler", tmp_path / "task", tmp_path)
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "Treue-OrdersFunctionAB12"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1024"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path / "task")
    assert env["_HANDLER"] == "treue.handlers.orders.handler"
    assert "_X_AMZN_TRACE_ID" not in env  # tracing not active: Lambda sets no daemon address

    by_module = bench.lambda_environment("treue.handlers.orders", tmp_path, tmp_path)
    assert by_module["_HANDLER"] == "treue.handlers.orders.handler"

    traced = bench.lambda_environment("treue.handlers.docs.handler", tmp_path, tmp_path / "none")
    assert traced["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert traced["_HANDLER"] == "treue.handlers.docs.handler"
    assert "AWS_XRAY_DAEMON_ADDRESS" in traced
    assert not set(bench.ENV) & (set(env) | set(traced))  # the floor's environment


def test_the_floor_runs_in_every_round_in_turn_with_the_sides(monkeypatch):
    calls: list[str] = []
    times = {"floor": iter([100.0, 200.0, 100.0, 100.0]), "f": iter([130.0, 220.0, 150.0, 110.0])}

    def measure(code, env=None):
        calls.append(code)
        wall = next(times[code])
        return wall, wall / 2, "HTTP 201" if len(calls) < 7 else "HTTP 200 (replayed)"  # CPU: half the wall time

    monkeypatch.setattr(bench, "measure", measure)
    row = bench.alternate(("floor", {}), {"pyc": lambda n: ("f", {"N": str(n)})}, runs=4)
    assert calls == ["floor", "f", "f", "floor", "floor", "f", "f", "floor"]
    assert row.floor == [100.0, 200.0, 100.0, 100.0]
    assert row.floor_ms() == 100.0 and row.ms("pyc") == 140.0
    assert row.ratio("pyc") == pytest.approx(1.4)
    assert row.floor_cpu == [50.0, 100.0, 50.0, 50.0] and row.cpu_ratio("pyc") == pytest.approx(1.4)
    assert row.spread("pyc") == "1.10–1.50"  # paired with the floor of its own round: 1.3, 1.1, 1.5, 1.1
    assert row.answers("pyc") == "HTTP 201 ×3, HTTP 200 (replayed) ×1"


def test_a_fresh_interpreter_reports_its_wall_and_cpu_time_apart():
    wall, cpu, outcome = bench.measure("import time\ntime.sleep(0.2)\nprint('outcome: slept')\n", bench.ENV)
    assert wall >= 200 and cpu < 100  # sleeping (as waiting for a server) is wall time, not CPU time
    assert outcome == "slept"


def test_ids_made_in_a_run_do_not_split_its_answers():
    row = bench.Row(outcomes={"pyc": ['{"delivered": "evt_01m8y3hannms4te5z57cex8skd"}',
                                      '{"delivered": "evt_01m8y3hfmcn74nn0k8dn7cmdvv"}']})
    assert row.answers("pyc") == '{"delivered": "evt_…"}'


def test_every_step_of_the_cold_start_ceiling_runs_and_adds_to_the_paused_floor():
    import subprocess
    import sys

    env = {**bench.ENV, "PYDANTIC_DISABLE_PLUGINS": "__all__"}
    paused = bench.CEILING_STEPS[1][1]
    assert bench.CEILING_STEPS[0][1] == bench.FLOOR and paused.endswith(bench.FLOOR)
    assert all(code.startswith(paused) for _, code in bench.CEILING_STEPS[2:])  # each adds to the paused floor
    for label, code in bench.CEILING_STEPS:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (label, done.stderr[-2000:])
