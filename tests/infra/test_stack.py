"""Template assertions on the synthesized stack (synth itself proves cdk-nag has no open finding)."""

import json

import pytest

from infra.stack import ROUTES
from infra.twin.template import load
from treue.handlers import accrual, enrollment


@pytest.fixture(scope="module")
def template(synthesized):
    return json.loads(synthesized.read_text())


def of_type(template, kind):
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_the_table_has_pitr_deletion_protection_and_kms(template):
    [table] = of_type(template, "AWS::DynamoDB::Table").values()
    p = table["Properties"]
    assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert p["DeletionProtectionEnabled"] is True
    assert p["SSESpecification"]["SSEEnabled"] is True and p["SSESpecification"]["SSEType"] == "KMS"
    assert table["DeletionPolicy"] == "Retain"


def test_the_accrual_queue_has_a_dlq_and_partial_batch_failures(template):
    queues = of_type(template, "AWS::SQS::Queue")
    redriven = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(redriven) == 1 and redriven[0]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    assert all("KmsMasterKeyId" in q["Properties"] for q in queues.values())
    [mapping] = of_type(template, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_function_is_traced_logged_and_has_its_own_role(template):
    functions = of_type(template, "AWS::Lambda::Function")
    assert len(functions) == 5
    roles = {json.dumps(f["Properties"]["Role"]) for f in functions.values()}
    assert len(roles) == 5
    for f in functions.values():
        p = f["Properties"]
        assert p["TracingConfig"] == {"Mode": "Active"}
        assert p["Runtime"].startswith("python3.")
        assert "LoggingConfig" in p
        assert any("AWSLambdaPowertoolsPythonV3" in json.dumps(layer) for layer in p["Layers"])


def test_only_the_queue_consumer_may_send_to_the_dlq(template):
    senders = [k for k, p in of_type(template, "AWS::IAM::Policy").items() if "sqs:SendMessage" in json.dumps(p)]
    assert len(senders) == 1 and senders[0].startswith("AccrualQueueConsumer")


def test_routes_match_the_handlers_and_all_but_docs_need_the_authorizer(synthesized):
    model = load(synthesized)
    declared = {(r.method, r.path) for r in model.routes}
    assert declared == {(m, p) for m, p, _ in ROUTES} | {("GET", "/v1/openapi.json")}
    assert declared - {("GET", "/v1/openapi.json")} == set(enrollment.SCOPES) | set(accrual.SCOPES)
    for r in model.routes:
        assert (r.authorizer is None) == (r.path == "/v1/openapi.json"), r


def test_errors_from_the_gateway_are_problem_json(template):
    responses = {r["Properties"]["ResponseType"]: r["Properties"]
                 for r in of_type(template, "AWS::ApiGateway::GatewayResponse").values()}
    assert {"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(
        responses
    )
    for r in responses.values():
        assert r["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/problem+json'"
        json.loads(r["ResponseTemplates"]["application/json"].replace("$context.", "ctx_"))
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"


def test_alarms_watch_the_dlq_and_every_function(template):
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 7
    assert all(a["Properties"]["AlarmActions"] for a in alarms.values())
    assert any(a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible" for a in alarms.values())


def test_the_stage_has_access_logs_and_tracing(template):
    [stage] = of_type(template, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["TracingEnabled"] is True
    assert "AccessLogSetting" in stage["Properties"]
