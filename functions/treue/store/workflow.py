"""Starting payout executions (Step Functions): one execution per order, named after the order id."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from treue.errors import Contention
from treue.store import clients


class PayoutStarter:
    def __init__(self, state_machine_arn: str, sfn=None) -> None:
        self.arn = state_machine_arn
        self._sfn = sfn

    def start(self, order: dict[str, Any]) -> None:
        """Start the order's execution; one that already exists counts as started (a name is unique for 90 days)."""
        payload = {"program_id": order["program_id"], "order_id": order["id"], "type": order["type"]}
        try:
            (self._sfn or clients.get("stepfunctions")).start_execution(stateMachineArn=self.arn, name=order["id"],
                                                    input=json.dumps(payload))
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ExecutionAlreadyExists":
                return
            if code in ("ThrottlingException", "ServiceUnavailable", "InternalServerError"):
                raise Contention("the payout workflow is busy; retry with the same Idempotency-Key") from err
            raise
