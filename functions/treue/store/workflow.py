"""Starting Step Functions executions: one payout execution per order (named after the order id) and
one batch execution per run of a batch (named after the batch id and run)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from treue.errors import Contention
from treue.store import clients


class Starter:
    def __init__(self, state_machine_arn: str, sfn=None) -> None:
        self.arn = state_machine_arn
        self._sfn = sfn

    def start_named(self, name: str, payload: dict[str, Any], what: str) -> None:
        """Start execution ``name``; one that already exists counts as started (a name is unique for 90 days)."""
        try:
            (self._sfn or clients.get("stepfunctions")).start_execution(stateMachineArn=self.arn, name=name,
                                                                        input=json.dumps(payload))
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ExecutionAlreadyExists":
                return
            if code in ("ThrottlingException", "ServiceUnavailable", "InternalServerError"):
                raise Contention(f"the {what} workflow is busy; retry with the same Idempotency-Key") from err
            raise


class PayoutStarter(Starter):
    def start(self, order: dict[str, Any]) -> None:
        self.start_named(order["id"], {"program_id": order["program_id"], "order_id": order["id"],
                                       "type": order["type"]}, "payout")
