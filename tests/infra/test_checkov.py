"""checkov's CloudFormation checks on the synthesized template: every finding is fixed, or skipped on its
resource (Metadata.checkov.skip, set with infra.components.checkov_skip) with a written reason."""

import json

import pytest

from infra import checkov


@pytest.fixture(scope="module")
def report(synthesized):
    return checkov.run(synthesized)


def test_checkov_finds_nothing_that_is_neither_fixed_nor_skipped_with_a_reason(report):
    assert report["summary"]["checkov_version"] == checkov.CHECKOV_VERSION
    assert report["summary"]["resource_count"] > 100  # it read the whole stack
    assert checkov.failures(report) == []
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment") or "") >= 40, skipped["check_id"]


def test_only_functions_nothing_invokes_asynchronously_go_without_a_dead_letter_queue(synthesized, report):
    template = json.loads(synthesized.read_text())
    resources = template["Resources"]
    skipped = {(c["check_id"], c["resource"].split(".")[-1]) for c in report["results"]["skipped_checks"]}
    invoked_by_events = {p["Properties"]["FunctionName"]["Fn::GetAtt"][0] for p in resources.values()
                         if p["Type"] == "AWS::Lambda::Permission"
                         and p["Properties"]["Principal"] == "events.amazonaws.com"}
    assert invoked_by_events  # the audit sealer's schedule at least
    for lid in invoked_by_events:
        assert "DeadLetterConfig" in resources[lid]["Properties"], lid
        assert ("CKV_AWS_116", lid) not in skipped
    functions = [lid for lid, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    for lid in functions:
        if lid not in invoked_by_events:
            assert ("CKV_AWS_116", lid) in skipped, lid
        # reserved concurrency (issue 13, item 8) is skipped exactly where it is not set
        has_reserved = "ReservedConcurrentExecutions" in resources[lid]["Properties"]
        assert (("CKV_AWS_115", lid) in skipped) != has_reserved, lid


def test_a_scheduled_function_without_a_dead_letter_queue_keeps_the_finding():
    from aws_cdk import App, Aspects, Duration, Stack
    from aws_cdk import aws_events as events
    from aws_cdk import aws_events_targets as targets
    from aws_cdk import aws_lambda as lambda_

    from infra.components import CheckovFunctionFindings, Function

    stack = Stack(App(), "Probe", env={"account": "123456789012", "region": "eu-central-1"})
    layer = lambda_.LayerVersion.from_layer_version_arn(
        stack, "Layer", "arn:aws:lambda:eu-central-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:1")
    code = {"code": lambda_.Code.from_inline("def handler(event, context): pass"),
            "runtime": lambda_.Runtime.PYTHON_3_13}
    scheduled = Function(stack, "Scheduled", handler="treue.handlers.audit.handler", description="s",
                         environment={}, layer=layer, **code)
    called = Function(stack, "Called", handler="treue.handlers.docs.handler", description="c",
                      environment={}, layer=layer, **code)
    events.Rule(stack, "Every", schedule=events.Schedule.rate(Duration.minutes(1)),
                targets=[targets.LambdaFunction(scheduled.function)])
    Aspects.of(stack).add(CheckovFunctionFindings())
    resources = stack.node.root.synth().get_stack_by_name("Probe").template["Resources"]

    def skipped(fn):
        lid = stack.get_logical_id(fn.function.node.default_child)
        return {s["id"] for s in resources[lid]["Metadata"]["checkov"]["skip"]}

    assert "CKV_AWS_116" not in skipped(scheduled)  # the schedule invokes it asynchronously: it needs a DLQ
    assert "CKV_AWS_116" in skipped(called)
    assert {"CKV_AWS_115", "CKV_AWS_117", "CKV_AWS_173"} <= skipped(scheduled)
