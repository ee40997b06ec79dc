"""Fair share between programs: each program's requests are throttled on their own.

The authorizer names the program as the usage identifier; provisioning gives each program its key in the
API's usage plan; the twin's gateway enforces the synthesized usage plan per identifier, as API Gateway."""

import copy
import json
from types import SimpleNamespace

import boto3
import pytest

from infra.twin.gateway import Gateway, UsageLimits
from infra.twin.template import load
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.handlers import authorizer
from treue.logic import provisioning
from treue.store.usage_plans import UsagePlan

REGION = "eu-central-1"


def test_the_authorizer_names_the_program_as_the_usage_identifier(program):
    event = copy.deepcopy(load_event("authorizer/request.json"))
    for scope in ("partner", "finance"):
        event["headers"] = {"authorization": f"Bearer {program['api_keys'][scope]}"}
        assert authorizer.handler(event, LambdaContext())["usageIdentifierKey"] == program["program_id"]


def test_provisioning_puts_each_program_once_in_the_usage_plan(store):
    apigw = boto3.client("apigateway", region_name=REGION)
    plan = UsagePlan(apigw.create_usage_plan(name="treue-programs")["id"], apigw)
    created = provisioning.create_program(store, "P", "EUR", runtime.now(), usage_plan=plan)
    other = provisioning.create_program(store, "Q", "EUR", runtime.now())  # made before rate limits
    assert plan.enrolled() == {created["program_id"]}
    assert provisioning.enable_api(store, plan, other["program_id"]) == provisioning.enable_api(
        store, plan, other["program_id"])  # the same key again: idempotent
    assert plan.enrolled() == {created["program_id"], other["program_id"]}
    with pytest.raises(LookupError):
        provisioning.enable_api(store, plan, "prg_00000000000000000000000000")


class FakePool:
    def __init__(self, name, answer):
        self.spec = SimpleNamespace(name=name)
        self.answer = answer

    def invoke(self, event):
        return SimpleNamespace(ok=True, result=self.answer(event), error_message=None, error_type=None)


def authorize(event):
    program_id = event["headers"]["Authorization"].removeprefix("Bearer ")
    return {"principalId": program_id, "usageIdentifierKey": program_id,
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "execute-api:Invoke",
                 "Resource": event["methodArn"].split("/")[0] + "/*"}]},
            "context": {"program_id": program_id}}


@pytest.fixture(scope="module")
def model(synthesized):
    return load(synthesized)


def gateway(model, enrolled):
    pools = {}
    for route in model.routes:
        if route.authorizer:
            pools[route.authorizer] = FakePool("authorizer", authorize)
        pools[route.function] = FakePool(route.function, lambda e: {"statusCode": 200, "body": "{}"})
    gw = Gateway(model.routes, pools, model.gateway_responses)
    gw.echo = None
    plan = model.usage_plan
    gw.usage = UsageLimits(plan["rate"], plan["burst"], lambda: enrolled)
    return gw


def get(gw, program_id):
    answer = gw.handle("GET", "/v1/catalog", {"Authorization": f"Bearer {program_id}"}, b"", "203.0.113.9")
    if hasattr(answer, "status"):
        return answer.status, answer.headers, answer.body
    return answer


def test_on_the_twin_one_program_over_its_limit_is_throttled_while_another_is_not(model):
    plan = model.usage_plan
    assert (plan["rate"], plan["burst"]) == (50, 100)  # the stack's defaults (context: program_rate_limit, …)
    gw = gateway(model, {"prg_busy", "prg_quiet"})
    statuses = [get(gw, "prg_busy")[0] for _ in range(plan["burst"] + 40)]  # well within a second
    assert statuses[: plan["burst"]] == [200] * plan["burst"] and statuses.count(429) >= 30
    status, headers, body = get(gw, "prg_busy")
    assert status == 429
    problem = json.loads(body)
    assert problem["status"] == 429 and problem["type"].endswith("/throttled") and problem["instance"] == "/v1/catalog"
    assert headers["Content-Type"] == "application/problem+json" and headers["Retry-After"] == "1"
    assert headers["RateLimit-Policy"] == '"program";q=50;w=1' and headers["RateLimit"] == '"program";r=0;t=1'
    assert [get(gw, "prg_quiet")[0] for _ in range(20)] == [200] * 20  # the other program is not affected


def test_on_the_twin_a_program_without_a_usage_plan_key_is_refused_with_a_reason(model):
    gw = gateway(model, {"prg_enabled"})
    status, headers, body = get(gw, "prg_unknown")
    assert status == 403 and json.loads(body)["type"].endswith("/program-not-enabled")
    assert get(gw, "prg_enabled")[0] == 200
    public = gw.handle("GET", "/v1/openapi.json", {}, b"", "203.0.113.9")
    assert (public.status if hasattr(public, "status") else public[0]) == 200  # no key needed
