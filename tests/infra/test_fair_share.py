"""Fair share between programs in the template: per-program rate limits, reserved concurrency for the
batch functions, the webhook sender's deferrals."""

import json
from pathlib import Path

from infra.stack import BATCH_CONCURRENCY
from tests.infra.conftest import of_type

BATCH_ASL = Path(__file__).resolve().parents[2] / "infra" / "batch.asl.json"


def test_each_program_is_throttled_by_the_usage_plan_keyed_by_the_authorizer(template):
    [api] = of_type(template, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    [plan] = of_type(template, "AWS::ApiGateway::UsagePlan").values()
    assert plan["Properties"]["Throttle"] == {"RateLimit": 50, "BurstLimit": 100}
    [stage] = plan["Properties"]["ApiStages"]
    assert stage["ApiId"] == {"Ref": next(iter(of_type(template, "AWS::ApiGateway::RestApi")))}
    methods = [m["Properties"] for m in of_type(template, "AWS::ApiGateway::Method").values()]
    authorized = [m for m in methods if m.get("AuthorizationType") == "CUSTOM"]
    assert authorized and all(m.get("ApiKeyRequired") is True for m in authorized)
    assert all(not m.get("ApiKeyRequired") for m in methods if m.get("AuthorizationType") == "NONE")
    assert "UsagePlanId" in template["Outputs"]


def test_throttled_and_keyless_requests_get_problem_json_with_rate_limit_headers(template):
    responses = {r["Properties"]["ResponseType"]: r["Properties"]
                 for r in of_type(template, "AWS::ApiGateway::GatewayResponse").values()}
    throttled = responses["THROTTLED"]
    assert throttled["StatusCode"] == "429"
    headers = {k.split(".", 2)[2]: v for k, v in throttled["ResponseParameters"].items()}
    assert headers == {"Content-Type": "'application/problem+json'", "Retry-After": "'1'",
                       "RateLimit-Policy": "'\"program\";q=50;w=1'", "RateLimit": "'\"program\";r=0;t=1'"}
    assert json.loads(throttled["ResponseTemplates"]["application/json"])["status"] == 429
    assert responses["INVALID_API_KEY"]["StatusCode"] == "403"


def test_the_batch_functions_have_reserved_concurrency_well_under_the_account_limit(template):
    functions = of_type(template, "AWS::Lambda::Function")
    reserved = {lid: f["Properties"]["ReservedConcurrentExecutions"] for lid, f in functions.items()
                if "ReservedConcurrentExecutions" in f["Properties"]}
    by_name = {next(lid for lid in reserved if lid.startswith(prefix)): value for prefix, value in (
        ("BatchesFunction", BATCH_CONCURRENCY["batches_api_concurrency"]),
        ("BatchIssueLineFunction", BATCH_CONCURRENCY["batch_line_concurrency"]),
        ("BatchBeginFunction", BATCH_CONCURRENCY["batch_step_concurrency"]),
        ("BatchFailLineFunction", BATCH_CONCURRENCY["batch_step_concurrency"]),
        ("BatchFinishFunction", BATCH_CONCURRENCY["batch_step_concurrency"]))}
    assert reserved == by_name
    assert sum(reserved.values()) <= 300  # of the default 1,000; unreserved stays far above AWS's floor of 100
    issue_line = json.loads(BATCH_ASL.read_text())["States"]
    processor = next(s for s in issue_line.values() if s.get("Type") == "Map")["ItemProcessor"]["States"]["IssueLine"]
    throttled = next(r for r in processor["Retry"] if r["ErrorEquals"] == ["Lambda.TooManyRequestsException"])
    assert throttled["MaxAttempts"] >= 10  # a line throttled by the reserved concurrency waits, it does not fail


def test_the_webhook_sender_may_defer_to_its_queue_and_dead_letter(template):
    queues = of_type(template, "AWS::SQS::Queue")
    main = next(lid for lid in queues if lid.startswith("WebhookDeliveriesQueue"))
    dlq = next(lid for lid in queues if lid.startswith("WebhookDeliveriesDeadLetters"))
    policies = [p for lid, p in of_type(template, "AWS::IAM::Policy").items() if lid.startswith("WebhookSender")]
    sends = {json.dumps(s["Resource"]) for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]
             if "sqs:SendMessage" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert any(main in r for r in sends) and any(dlq in r for r in sends)
    [sender] = [f for lid, f in of_type(template, "AWS::Lambda::Function").items() if lid.startswith("WebhookSender")]
    assert "WEBHOOK_DLQ_URL" in sender["Properties"]["Environment"]["Variables"]
