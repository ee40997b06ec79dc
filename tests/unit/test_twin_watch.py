"""What the twin shows: log files named after the functions, and an execution's end summed up from its
history (which task failed, with which error) instead of moto's dump."""

from enum import Enum
from pathlib import Path

import pytest

from infra.twin.lambdas import _ExpectedFailures, error_names, execution_end
from infra.twin.runner import OWN_LOGS, log_names, readable_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("logical_id", "kind", "name"),
    [
        ("OrdersFunction520DBA95", "Function", "orders"),
        ("AuthorizerFunctionEB19F618", "Function", "authorizer"),
        ("PayoutIssueGiftCardFunction16EEB7D5", "Function", "payout-issue-gift-card"),
        ("AccrualQueueConsumerFunction663081DC", "Function", "accrual-queue-consumer"),
        ("BatchIssueLineFunction6AC2440A", "Function", "batch-issue-line"),
        ("DocsFunctionEF7D3BFA", "Function", "docs"),
        ("PayoutStateMachine904F7AFA", "StateMachine", "payout"),
        ("BatchStateMachineA1FF2995", "StateMachine", "batch"),
        ("Function", "Function", "function"),  # nothing but the kind: kept
        ("KMSKeyHandler1A2B3C4D", "Function", "kms-key-handler"),  # an acronym stays one word
        ("Orders", "Function", "orders"),  # no hash
    ],
)
def test_a_logical_id_reads_as_a_short_name(logical_id, kind, name):
    assert readable_name(logical_id, kind) == name


def test_every_function_of_the_stack_gets_its_own_log_named_after_it():
    lids = ["AuthorizerFunctionEB19F618", "EnrollmentFunction9964906C", "AccrualFunction0A6B3C9E",
            "AccrualQueueConsumerFunction663081DC", "OrdersFunction520DBA95", "PayoutVerifyHoldFunctionEDC165F1",
            "PayoutIssueGiftCardFunction16EEB7D5", "PayoutReleaseHoldFunctionC721FBA0", "WebhookSenderFunction25551EA0"]
    names = log_names(lids)
    assert names["OrdersFunction520DBA95"] == "orders.log"
    assert names["PayoutReleaseHoldFunctionC721FBA0"] == "payout-release-hold.log"
    assert names["AccrualQueueConsumerFunction663081DC"] == "accrual-queue-consumer.log"
    assert len(set(names.values())) == len(lids)


def test_names_two_functions_would_share_or_the_twins_own_logs_are_made_unique():
    names = log_names(["OrdersFunction520DBA95", "OrdersFunctionABCDEF12", "Orders", "AccessFunction11111111",
                       "IamDeniedFunction22222222", "WorkflowsFunction33333333"])
    assert sorted(names.values()) == sorted(["orders.log", "orders-2.log", "orders-3.log", "access-2.log",
                                             "iam-denied-2.log", "workflows-2.log"])
    assert not set(names.values()) & set(OWN_LOGS)
    assert names == log_names(list(reversed(list(names))))  # the same whatever the order they come in


def test_the_error_names_the_workflows_expect_come_from_their_definitions():
    handled, failed = error_names((ROOT / "infra" / "payout.asl.json").read_text())
    assert {"ProviderTimeout", "ProviderUnavailable", "Contention"} <= handled
    assert not {n for n in handled if n.startswith(("States.", "Lambda."))}
    assert failed == {"PayoutFailed"}
    handled, failed = error_names((ROOT / "infra" / "batch.asl.json").read_text())
    assert "LineFailed" in handled and failed == {"LineFailed", "BatchRunFailed"}


class _Type(str, Enum):  # noqa: UP042 (as moto's HistoryEventType: str() is "_Type.X", not the value)
    TaskStateEntered = "TaskStateEntered"
    LambdaFunctionScheduled = "LambdaFunctionScheduled"
    LambdaFunctionFailed = "LambdaFunctionFailed"
    LambdaFunctionSucceeded = "LambdaFunctionSucceeded"
    FailStateEntered = "FailStateEntered"


def _task(state, function, error=None):
    events = [{"type": _Type.TaskStateEntered, "stateEnteredEventDetails": {"name": state}},
              {"type": _Type.LambdaFunctionScheduled, "lambdaFunctionScheduledEventDetails": {
                  "resource": f"arn:aws:lambda:eu-central-1:123456789012:function:{function}"}}]
    if error:
        events.append({"type": _Type.LambdaFunctionFailed, "lambdaFunctionFailedEventDetails": {
            "error": error, "cause": f'{{"errorType": "{error}"}}'}})
    else:
        events.append({"type": _Type.LambdaFunctionSucceeded, "lambdaFunctionSucceededEventDetails": {}})
    return events


def test_an_executions_end_names_the_last_task_that_failed_and_its_error():
    history = [*_task("VerifyHold", "treue-verify"), *_task("IssueGiftCard", "treue-issue", "ProviderTimeout"),
               *_task("IssueGiftCard", "treue-issue", "OutOfStock"), *_task("ReleaseHold", "treue-release"),
               {"type": _Type.FailStateEntered, "stateEnteredEventDetails": {"name": "Failed"}}]
    end = execution_end("treue-payout", "ord_1", "FAILED", history, "PayoutFailed", "The order failed")
    assert (end.failed_state, end.failed_function, end.failed_error) == ("IssueGiftCard", "treue-issue", "OutOfStock")
    assert (end.state_machine, end.name, end.status, end.error) == ("treue-payout", "ord_1", "FAILED", "PayoutFailed")
    clean = execution_end("treue-payout", "ord_2", "SUCCEEDED", _task("VerifyHold", "treue-verify"))
    assert clean.failed_state is None and clean.failed_error is None


def test_moto_dumps_only_failures_not_expected():
    quiet = _ExpectedFailures({"PayoutFailed", "OutOfStock"})

    def record(text):
        import logging

        return logging.LogRecord("moto", logging.ERROR, __file__, 1, "%s at '%s'", (text, "(StateFail| …)"), None)

    assert not quiet.filter(record('Exception=FailureEventException, Error=PayoutFailed, Details={"cause": "x"}'))
    assert quiet.filter(record("Exception=FailureEventException, Error=KeyError, Details={}"))
    assert quiet.filter(record("Exception=ValueError, Details=['boom']"))
