"""A fixture with everything the API handlers are wired to, for the tests that call every route."""

from __future__ import annotations

import boto3
import pytest

from tests.integration.conftest import REGION
from treue import runtime


@pytest.fixture
def wired(shop, batch_machine, monkeypatch):
    """The shop program (keys of every scope, budgets, catalog), the payout and batch workflows with their
    bucket, and the report and webhook queues."""
    sqs = boto3.client("sqs", region_name=REGION)
    monkeypatch.setenv("REPORT_QUEUE_URL", sqs.create_queue(QueueName="treue-reports")["QueueUrl"])
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", sqs.create_queue(QueueName="treue-webhooks")["QueueUrl"])
    runtime.reset()
    return shop
