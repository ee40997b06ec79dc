"""The twin's line for an execution that did not succeed, from the synthesized stack's state machines and
functions: the order's failure reason for an expected error, the function's log for any other."""

from pathlib import Path

import pytest

from infra.twin.lambdas import ExecutionEnd
from infra.twin.runner import Twin, log_names
from infra.twin.workers import FunctionPool


@pytest.fixture(scope="module")
def twin(synthesized, tmp_path_factory):
    """A twin of the stack, not started: its functions' pools exist, no worker runs."""
    twin = Twin(synthesized, port=1, aws_port=1, state_dir=tmp_path_factory.mktemp("state"))
    twin._expect_workflow_failures()
    names = log_names(twin.model.functions)
    for lid, spec in twin.model.functions.items():
        twin.pools[lid] = FunctionPool(spec, {}, str(twin.logs_dir / names[lid]))
    return twin


def _names(twin):
    machines = {twin.model.state_machines[lid].name: lid for lid in twin.model.state_machines}
    payout = next(name for name, lid in machines.items() if lid.startswith("Payout"))
    batch = next(name for name, lid in machines.items() if lid.startswith("Batch"))
    issue = next(p.spec.name for lid, p in twin.pools.items() if lid.startswith("PayoutIssueGiftCard"))
    return payout, batch, issue


def test_every_function_of_the_stack_has_a_log_of_its_own(twin):
    names = log_names(twin.model.functions)
    assert len(set(names.values())) == len(names) > 20
    assert {"orders.log", "authorizer.log", "payout-issue-gift-card.log", "batch-issue-line.log"} <= set(
        names.values())


def test_an_expected_failure_is_the_orders_failure_reason_and_the_state(twin):
    payout, _, issue = _names(twin)
    for error, reason in [("OutOfStock", "out_of_stock"), ("ProviderRejected", "provider_rejected"),
                          ("ProviderTimeout", "provider_timeout"), ("InsufficientFunds", "insufficient_funds")]:
        end = ExecutionEnd(payout, "ord_1", "FAILED", "PayoutFailed", "The order failed", "IssueGiftCard", issue,
                           error, "{}")
        assert twin.execution_line(end) == f"payout ord_1 FAILED {reason} (IssueGiftCard)"


def test_an_unexpected_failure_names_the_log_with_its_traceback(twin):
    payout, _, issue = _names(twin)
    end = ExecutionEnd(payout, "ord_2", "FAILED", "PayoutFailed", "x", "IssueGiftCard", issue, "KeyError", "{}")
    log = Path(twin.logs_dir) / "payout-issue-gift-card.log"
    assert twin.execution_line(end) == f"payout ord_2 FAILED KeyError (IssueGiftCard; its log: {log})"


def test_a_batch_run_and_an_execution_without_a_failed_task(twin):
    payout, batch, _ = _names(twin)
    end = ExecutionEnd(batch, "bat_1-run-1", "FAILED", "BatchRunFailed", "BeginRun failed", "BeginRun", None,
                       "LineFailed", None)
    assert twin.execution_line(end) == "batch bat_1-run-1 FAILED LineFailed (BeginRun)"
    assert twin.execution_line(ExecutionEnd(payout, "ord_3", "TIMED_OUT")) == "payout ord_3 TIMED_OUT"
    assert (twin.execution_line(ExecutionEnd(payout, "ord_4", "FAILED", "States.Runtime", "no such path"))
            == "payout ord_4 FAILED States.Runtime: no such path")
