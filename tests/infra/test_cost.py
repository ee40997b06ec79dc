"""What the stack pays per request besides the work: the API stage's X-Ray sampling and its execution log."""

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from infra.components import PartnerApi
from infra.stack import TRACE_SAMPLING, TreueStack
from tests.infra.conftest import of_type


def test_the_api_stage_samples_traces_by_its_own_rule_at_the_configured_rate(template):
    [rule] = of_type(template, "AWS::XRay::SamplingRule").values()
    r = rule["Properties"]["SamplingRule"]
    assert (r["FixedRate"], r["ReservoirSize"]) == (0.05, 0) == tuple(TRACE_SAMPLING.values())
    assert r["Priority"] < 10000  # ahead of the account's default rule
    # scoped to this stack's stage: its service name and its ARN, nothing else of the account
    [api_lid] = of_type(template, "AWS::ApiGateway::RestApi")
    [(stage_lid, stage)] = of_type(template, "AWS::ApiGateway::Stage").items()
    assert r["ServiceName"] == "treue/prod" and r["ServiceType"] == "AWS::ApiGateway::Stage"
    arn = json.dumps(r["ResourceARN"])
    assert f'{{"Ref": "{api_lid}"}}' in arn and "/stages/" in arn and stage["Properties"]["StageName"] == "prod"
    assert f'{{"Ref": "{stage_lid}"}}' in arn or '"/stages/prod"' in arn
    assert r["RuleName"] == "Treue-api" and len(r["RuleName"]) <= 32
    assert stage["Properties"]["TracingEnabled"] is True


def test_the_api_stage_logs_errors_only_and_keeps_its_access_log(template):
    [stage] = of_type(template, "AWS::ApiGateway::Stage").values()
    [settings] = stage["Properties"]["MethodSettings"]
    assert (settings["HttpMethod"], settings["ResourcePath"]) == ("*", "/*")
    assert settings["LoggingLevel"] == "ERROR" and settings["DataTraceEnabled"] is False
    assert settings["MetricsEnabled"] is True
    access = stage["Properties"]["AccessLogSetting"]
    assert "DestinationArn" in access and '"status"' in access["Format"] and '"requestId"' in access["Format"]


def _api(sampling):
    stack = cdk.Stack(cdk.App(), "S")
    fn = lambda_.Function(stack, "Auth", runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
                          code=lambda_.Code.from_inline("def handler(event, context): pass"))
    PartnerApi(stack, "Api", authorizer_fn=fn, sampling=sampling).route("GET", "/v1/things", fn)
    return Template.from_stack(stack)


def test_the_sampling_rule_takes_the_rate_and_reservoir_it_is_given():
    [rule] = _api((0.2, 3)).find_resources("AWS::XRay::SamplingRule").values()
    assert (rule["Properties"]["SamplingRule"]["FixedRate"], rule["Properties"]["SamplingRule"]["ReservoirSize"]) == (
        0.2, 3)
    for wrong in ((1.5, 0), (-0.1, 0), (0.05, -1)):
        with pytest.raises(ValueError, match="X-Ray sampling"):
            _api(wrong)


def test_the_sampling_comes_from_the_context_or_the_defaults():
    def sampling(context):
        return TreueStack._trace_sampling(cdk.Stack(cdk.App(context=context), "S"))

    assert sampling({}) == (0.05, 0)
    assert sampling({"xray_sampling_rate": "0", "xray_sampling_reservoir": "2"}) == (0.0, 2)
    assert sampling({"xray_sampling_rate": 0.01}) == (0.01, 0)
