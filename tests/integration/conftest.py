from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import functools
import importlib
import os
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.twin import iam
from infra.twin.lambdas import MOTO_CONFIG, definition, in_process, route_lambda_invocations
from infra.twin.serialize import serialize_moto_dynamodb
from tests.conftest import ENFORCER
from tests.support import LambdaContext, create_table
from treue import runtime
from treue.core import keys
from treue.logic import budget, provisioning
from treue.logic.catalog import load_dir
from treue.store import clients
from treue.store.dynamodb import Store

REGION = "eu-central-1"
SHOP_BUDGET = {"EUR": 5_000_000, "USD": 2_000_000, "GBP": 2_000_000}  # minor units


@pytest.fixture(scope="session")
def role_policies(synthesized) -> dict[str, iam.FunctionPolicy]:
    """Each function's role statements from the synthesized template, by logical id."""
    return iam.load(synthesized)


def _runs_as(policy: iam.FunctionPolicy, handler):
    @functools.wraps(handler)
    def run(event, context):
        # the function's configuration is what the environment says when it is invoked
        token = iam.current.set(dataclasses.replace(policy, actual_env=dict(os.environ)))
        try:
            return handler(event, context)
        finally:
            iam.current.reset(token)

    return run


def _submit_in_context(submit):
    """Threads a handler starts work for the same function, as they would in its Lambda process."""

    @functools.wraps(submit)
    def in_context(self, fn, /, *args, **kwargs):
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    return in_context


@pytest.fixture(autouse=True)
def permissions(role_policies, monkeypatch):
    """Every handler of the template runs as its function: each AWS call it makes is checked against its
    role's policies with AWS's rules (infra/twin/iam.py); a call the role does not allow raises
    AccessDenied where AWS would, and fails the test even if the code swallowed the error."""
    for policy in role_policies.values():
        module_name, _, attr = policy.handler.rpartition(".")
        module = importlib.import_module(module_name)
        monkeypatch.setattr(module, attr, _runs_as(policy, getattr(module, attr)))
    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "submit",
                        _submit_in_context(concurrent.futures.ThreadPoolExecutor.submit))
    ENFORCER.denials.clear()
    yield ENFORCER
    denied = list(ENFORCER.denials)
    ENFORCER.denials.clear()
    assert not denied, "calls the functions' roles do not allow:\n" + "\n".join(map(str, denied))


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Treue")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config=MOTO_CONFIG):
        clients.reset()
        ddb = boto3.client("dynamodb", region_name=REGION)
        table = create_table(ddb)
        monkeypatch.setenv("TABLE_NAME", table)
        runtime.reset()
        yield ddb
        runtime.reset()
        clients.reset()


@pytest.fixture
def store(aws) -> Store:
    return runtime.store()


@pytest.fixture
def program(store):
    """A program with one key per scope, and the authorizer context of each."""
    created = provisioning.create_program(store, "Café Treue", "EUR", runtime.now())
    ctx = {}
    for scope, key in created["api_keys"].items():
        key_id, _ = keys.parse(key)
        ctx[scope] = {"program_id": created["program_id"], "key_id": key_id, "scope": scope}
    return {**created, "auth": ctx}


ROOT = Path(__file__).resolve().parents[2]
TASKS = {
    "VerifyHoldFunction": "verify_hold",
    "IssueVoucherFunction": "issue_voucher",
    "IssueGiftCardFunction": "issue_gift_card",
    "RecordDonationFunction": "record_donation",
    "DeliverFunction": "deliver",
    "CaptureFunction": "capture",
    "ReleaseHoldFunction": "release",
}


@pytest.fixture
def payout(aws, store, monkeypatch):
    """The payout state machine of infra/payout.asl.json, executed by moto, its tasks run in-process."""
    from treue.handlers import payout as tasks
    from treue.store.orders import OrderStore

    serialize_moto_dynamodb()
    kms = boto3.client("kms", region_name=REGION)
    sealing = kms.create_key(Description="codes")["KeyMetadata"]["Arn"]
    lookup = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("CODES_KEY_ID", sealing)
    monkeypatch.setenv("CODES_MAC_KEY_ID", lookup)
    arn = f"arn:aws:lambda:{REGION}:123456789012:function:"
    asl = definition((ROOT / "infra" / "payout.asl.json").read_text(), {k: arn + v for k, v in TASKS.items()})
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name="payout", definition=asl,
                                       roleArn="arn:aws:iam::123456789012:role/payout")["stateMachineArn"]
    monkeypatch.setenv("PAYOUT_STATE_MACHINE_ARN", machine)
    route_lambda_invocations(in_process({v: getattr(tasks, v) for v in TASKS.values()}, LambdaContext))
    version, items = load_dir(ROOT / "catalog")
    OrderStore(store).put_catalog(version, [i.model_dump() for i in items], runtime.now())
    runtime.reset()
    yield {"sfn": sfn, "state_machine": machine, "kms": kms}
    _wait_for_executions(sfn)


def _wait_for_executions(sfn, seconds: float = 30) -> None:
    """A test's executions finish within the test: none runs on into the next test's set-up."""
    deadline = time.monotonic() + seconds
    for machine in sfn.list_state_machines()["stateMachines"]:
        arn = machine["stateMachineArn"]
        while time.monotonic() < deadline:
            if not sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                break
            time.sleep(0.1)


@pytest.fixture
def shop(payout, store):
    """A program in Germany (EUR, 1 point = 1 cent) that also prices USD and GBP items, with its keys
    and a budget in each currency (SHOP_BUDGET)."""
    created = provisioning.create_program(store, "Shop Treue", "EUR", runtime.now(), country="DE",
                                          fx_ppm={"USD": 920_000, "GBP": 1_170_000})
    ctx = {}
    for scope, key in created["api_keys"].items():
        key_id, _ = keys.parse(key)
        ctx[scope] = {"program_id": created["program_id"], "key_id": key_id, "scope": scope}
    for currency, amount in SHOP_BUDGET.items():
        budget.fund(runtime.budgets(), created["program_id"], currency, amount, f"opening-{currency}",
                    f"opening-{currency}", "test", runtime.now())
    return {**created, "auth": ctx}


BATCH_TASKS = {
    "BeginFunction": "begin",
    "IssueLineFunction": "issue_line",
    "FailLineFunction": "fail_line",
    "FinishFunction": "finish",
}


@pytest.fixture
def batch_machine(payout, monkeypatch):
    """The batch state machine of infra/batch.asl.json with its bucket; moto runs it (Distributed Map
    reading the run's items file from S3), the payout and batch tasks run in-process."""
    from treue.handlers import batch_tasks
    from treue.handlers import payout as payout_tasks

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="treue-batches", CreateBucketConfiguration={"LocationConstraint": REGION})
    monkeypatch.setenv("BATCH_BUCKET", "treue-batches")
    arn = f"arn:aws:lambda:{REGION}:123456789012:function:"
    asl = definition((ROOT / "infra" / "batch.asl.json").read_text(),
                     {k: arn + "batch_" + v for k, v in BATCH_TASKS.items()})
    machine = payout["sfn"].create_state_machine(name="batch", definition=asl,
                                                 roleArn="arn:aws:iam::123456789012:role/batch")["stateMachineArn"]
    monkeypatch.setenv("BATCH_STATE_MACHINE_ARN", machine)
    handlers = {v: getattr(payout_tasks, v) for v in TASKS.values()}
    handlers.update({"batch_" + v: getattr(batch_tasks, v) for v in BATCH_TASKS.values()})
    route_lambda_invocations(in_process(handlers, LambdaContext))
    runtime.reset()
    return {**payout, "batch_state_machine": machine, "s3": s3}
