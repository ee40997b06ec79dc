from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tests.support import create_table
from treue import runtime
from treue.logic import keys, provisioning
from treue.store.dynamodb import Store

REGION = "eu-central-1"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Treue")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import treue.store.dynamodb as ddbmod
        import treue.store.queues as qmod

        ddbmod._client = None
        qmod._client = None
        ddb = boto3.client("dynamodb", region_name=REGION)
        table = create_table(ddb)
        monkeypatch.setenv("TABLE_NAME", table)
        runtime.reset()
        yield ddb
        runtime.reset()
        ddbmod._client = None
        qmod._client = None


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
