"""Starting payout executions (Step Functions): one execution per order, named after the order id."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from treue.errors import Contention

_client = None


def client():
    global _client
    if _client is None:
        _client = boto3.client("stepfunctions", config=Config(connect_timeout=2, read_timeout=5,
                                                              retries={"mode": "standard", "max_attempts": 4}))
    return _client


class PayoutStarter:
    def __init__(self, state_machine_arn: str, sfn=None) -> None:
        self.arn = state_machine_arn
        self._sfn = sfn

    def start(self, order: dict[str, Any]) -> None:
        """Start the order's execution; one that already exists counts as started (a name is unique for 90 days)."""
        payload = {"program_id": order["program_id"], "order_id": order["id"], "type": order["type"]}
        try:
            (self._sfn or client()).start_execution(stateMachineArn=self.arn, name=order["id"],
                                                    input=json.dumps(payload))
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ExecutionAlreadyExists":
                return
            if code in ("ThrottlingException", "ServiceUnavailable", "InternalServerError"):
                raise Contention("the payout workflow is busy; retry with the same Idempotency-Key") from err
            raise
