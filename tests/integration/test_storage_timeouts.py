"""An AWS call that does not answer in time is a 503 problem the client may retry, never a 500."""

import pytest
from botocore.exceptions import ReadTimeoutError

from tests.support import LambdaContext, api_event, body_of
from treue import runtime
from treue.handlers import finance


@pytest.mark.parametrize("sample", ["finance/get_trial_balance.json", "finance/get_liability.json",
                                    "finance/get_budget.json", "finance/get_audit.json"])
def test_a_dynamodb_timeout_is_a_retryable_503_problem(program, monkeypatch, sample):
    def no_answer(operation, params):
        raise ReadTimeoutError(endpoint_url="https://dynamodb.eu-central-1.amazonaws.com")

    monkeypatch.setattr(runtime.store().ddb, "_make_api_call", no_answer)  # every DynamoDB call times out
    response = finance.handler(api_event(sample, auth=program["auth"]["finance"]), LambdaContext())
    assert response["statusCode"] == 503, response["body"]
    headers = {**{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
               **(response.get("headers") or {})}
    assert headers["Retry-After"] == "1" and headers["Content-Type"] == "application/problem+json"
    problem = body_of(response)
    assert problem["type"].endswith("storage-timeout") and problem["status"] == 503 and problem["detail"]
