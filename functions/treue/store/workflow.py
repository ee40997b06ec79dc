"""Starting Step Functions executions: one payout execution per order (named after the order id) and
one batch execution per run of a batch (named after the batch id and run)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from treue.core.records import Order
from treue.core.statuses import EXECUTION_CLOSED
from treue.errors import Contention
from treue.store import clients

STARTED = "STARTED"
EXISTS = "EXISTS"  # an execution of that name was started before: running, or closed (see ``status``)
CLOSED = EXECUTION_CLOSED
_BUSY = ("ThrottlingException", "ServiceUnavailable", "InternalServerError")


class Starter:
    def __init__(self, state_machine_arn: str, sfn: Any = None) -> None:
        self.arn = state_machine_arn
        self._sfn = sfn

    @property
    def sfn(self) -> Any:
        return self._sfn or clients.get("stepfunctions")

    def start_named(self, name: str, payload: dict[str, Any], what: str) -> str:
        """Start execution ``name`` (a name is unique for 90 days): STARTED, or EXISTS when one of that
        name was started before — which may still be running or may have ended (``status`` says)."""
        try:
            self.sfn.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ExecutionAlreadyExists":
                return EXISTS
            if code in _BUSY:
                raise Contention(f"the {what} workflow is busy; retry with the same Idempotency-Key") from err
            raise
        return STARTED

    def execution_arn(self, name: str) -> str:
        prefix, sep, machine = self.arn.rpartition(":stateMachine:")
        if not sep:
            raise ValueError(f"not a state machine ARN: {self.arn}")
        return f"{prefix}:execution:{machine}:{name}"

    def status(self, name: str) -> str | None:
        """The status of execution ``name`` (RUNNING, or one of CLOSED), None when there is none."""
        try:
            out = self.sfn.describe_execution(executionArn=self.execution_arn(name))
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ExecutionDoesNotExist":
                return None
            if code in _BUSY:
                raise Contention("the workflow service is busy; retry") from err
            raise
        return out["status"]


class PayoutStarter(Starter):
    def start(self, order: Order) -> str:
        return self.start_named(order.id, payout_input(order), "payout")


def payout_input(order: Order) -> dict[str, Any]:
    return {"program_id": order.program_id, "order_id": order.id, "type": order.type}
