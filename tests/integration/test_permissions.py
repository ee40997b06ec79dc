"""Every function's AWS calls are checked against its own role from the synthesized template
(infra/twin/iam.py, wired in tests/integration/conftest.py): what AWS would refuse is refused here."""

from __future__ import annotations

import dataclasses
import os

import pytest
from botocore.exceptions import ClientError

from infra.twin import iam
from tests.integration.helpers import purchase
from treue import runtime
from treue.logic import budget


def function(role_policies, handler: str) -> iam.FunctionPolicy:
    (found,) = [p for p in role_policies.values() if p.handler == handler]
    return dataclasses.replace(found, actual_env=dict(os.environ))


def test_a_call_the_role_does_not_allow_is_access_denied_where_aws_would_refuse_it(program, role_policies,
                                                                                   permissions):
    # The Vouchers function may read and update items, not put them: a funding transaction (Put items)
    # made with its identity is refused, item by item, as AWS authorizes TransactWriteItems.
    token = iam.current.set(function(role_policies, "treue.handlers.vouchers.handler"))
    try:
        with pytest.raises(ClientError) as raised:
            budget.fund(runtime.budgets(), program["program_id"], "EUR", 1_000, "f-1", "f-1", "test", runtime.now())
    finally:
        iam.current.reset(token)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "VouchersFunction" in str(raised.value) and "dynamodb:PutItem" in str(raised.value)
    assert [d.action for d in permissions.denials] == ["dynamodb:PutItem"]
    permissions.denials.clear()  # the denial was the point of this test
    # the same call with no function identity (test set-up) is not checked, and the books show one funding
    budget.fund(runtime.budgets(), program["program_id"], "EUR", 1_000, "f-1", "f-1", "test", runtime.now())


def test_the_gaps_the_review_found_are_granted(role_policies):
    """Finance funds (Put/Update in a transaction), Webhooks registers (Put/Update), Rewards prices gift
    cards (BatchGetItem): each allowed by its own role now, on the table the run uses."""
    table = f"arn:aws:dynamodb:eu-central-1:{iam.ACCOUNT}:table/treue-x"
    env = {"TABLE_NAME": "treue-x"}
    cases = {
        "treue.handlers.finance.handler": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
        "treue.handlers.webhooks.handler": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
        "treue.handlers.rewards.handler": ["dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    }
    for handler, actions in cases.items():
        policy = dataclasses.replace(function(role_policies, handler), actual_env=env)
        statements = iam.from_environment(policy, "eu-central-1")(policy.statements)
        for action in actions:
            assert iam.evaluate(statements, action, table, {}) == "allow", (handler, action)
        assert iam.evaluate(statements, "dynamodb:Scan", table, {}) == "implicit-deny"  # still least privilege


def test_a_purchase_runs_as_the_accrual_function_and_passes(program, permissions):
    status, _, _ = purchase(program["auth"]["partner"], _member(program), {
        "transaction_id": "perm-1", "amount": {"value": 1000, "currency": "EUR"},
        "occurred_at": "2026-11-01T12:00:00Z"})
    assert status == 200
    assert permissions.checked > 0 and permissions.denials == []


def _member(program) -> str:
    from tests.integration.helpers import enroll

    status, body, _ = enroll(program["auth"]["partner"], {"email": "perm@example.com"})
    assert status == 201
    return body["id"]
