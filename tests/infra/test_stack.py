"""Template assertions on the synthesized stack (synth itself proves cdk-nag has no open finding)."""

import ast
import json
import re
from pathlib import Path

import pytest

from infra.stack import BATCH_CONCURRENCY, BATCH_TASKS, FUNCTIONS, PAYOUT_TASKS, RUNTIME_ENVIRONMENT
from infra.twin.template import load
from tests.infra.conftest import of_type
from treue.handlers import api_routes
from treue.routes import ROUTES
from treue.store import schema

ROOT = Path(__file__).resolve().parents[2]
SPECS = {spec.id: spec for spec in FUNCTIONS}

ASL = ROOT / "infra" / "payout.asl.json"
BATCH_ASL = ROOT / "infra" / "batch.asl.json"


def test_the_table_has_pitr_deletion_protection_and_kms(template):
    [table] = of_type(template, "AWS::DynamoDB::Table").values()
    p = table["Properties"]
    assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert p["DeletionProtectionEnabled"] is True
    assert p["SSESpecification"]["SSEEnabled"] is True and p["SSESpecification"]["SSEType"] == "KMS"
    assert table["DeletionPolicy"] == "Retain"


def test_the_queues_have_dlqs_and_partial_batch_failures(template):
    queues = of_type(template, "AWS::SQS::Queue")
    receives = {k.split("Queue")[0]: q["Properties"]["RedrivePolicy"]["maxReceiveCount"]
                for k, q in queues.items() if "RedrivePolicy" in q["Properties"]}
    # 16 webhook attempts span more than 24 hours; a report step is tried 3 times, the last marks the report failed
    assert receives == {"Accrual": 5, "WebhookDeliveries": 16, "ReportJobs": 3}
    assert all("KmsMasterKeyId" in q["Properties"] for q in queues.values())
    mappings = of_type(template, "AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == 5  # accrual, webhook deliveries, table stream (fan-out, progress), report jobs
    assert all(m["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)


def test_new_events_reach_the_webhook_fan_out_from_the_table_stream(template):
    [table] = of_type(template, "AWS::DynamoDB::Table").values()
    assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    [stream] = [m["Properties"] for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()
                if m["Properties"]["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
                and m["Properties"]["FunctionName"]["Ref"].startswith("WebhookFanout")]
    [pattern] = [json.loads(f["Pattern"]) for f in stream["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["event"]}}}}
    assert "OnFailure" in stream["DestinationConfig"] and stream["MaximumRetryAttempts"] == 20
    assert stream["BisectBatchOnFunctionError"] is True  # a failing record is split off before it reaches OnFailure
    functions = of_type(template, "AWS::Lambda::Function")
    sender = next(f for k, f in functions.items() if k.startswith("WebhookSender"))
    assert sender["Properties"]["Environment"]["Variables"]["WEBHOOK_RETRY_BASE_SECONDS"] == "30"
    hooks = next(f for k, f in functions.items() if k.startswith("WebhooksFunction"))
    for checks_urls in (hooks, sender):  # registration and every delivery refuse local addresses when deployed
        assert checks_urls["Properties"]["Environment"]["Variables"]["ALLOW_LOCAL_WEBHOOKS"] == "false"


def test_purchases_points_earned_reach_the_progress_function_from_the_table_stream(template):
    """Only new points.earned events: referrals and milestones are paid from them; failures are retried from,
    bisected, and after the last retry described on the progress stream-failure queue."""
    [stream] = [m["Properties"] for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()
                if m["Properties"]["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
                and m["Properties"]["FunctionName"]["Ref"].startswith("Progress")]
    [pattern] = [json.loads(f["Pattern"]) for f in stream["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"],
                       "dynamodb": {"NewImage": {"kind": {"S": ["event"]}, "type": {"S": ["points.earned"]}}}}
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and stream["MaximumRetryAttempts"] == 20
    assert stream["BisectBatchOnFunctionError"] is True
    queue = stream["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert queue.startswith("ProgressStreamStreamFailures")
    lid, _ = _function_of(template, "Progress")
    ddb = {a for a in _role_actions(template, lid) if a.startswith("dynamodb:")}
    assert ddb - {"dynamodb:ListStreams", "dynamodb:DescribeStream", "dynamodb:GetRecords",
                  "dynamodb:GetShardIterator"} == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                                                   "dynamodb:PutItem", "dynamodb:UpdateItem",
                                                   "dynamodb:ConditionCheckItem"}
    [failures] = _alarms_on(template, "ProgressFailures")
    assert failures["Namespace"] == "Treue" and failures["Threshold"] == 1
    [age] = _alarms_on(template, "IteratorAge", {"Ref": lid})
    assert age["Threshold"] == 5 * 60 * 1000


def test_every_function_is_traced_logged_and_has_its_own_role(template):
    functions = of_type(template, "AWS::Lambda::Function")
    # 8 API/queue/docs, finance, audit sealer, rewards, webhooks API, fan-out, sender, batches API,
    # queue senders API, program settings API, rules API, report worker, sweeper, tier review, progress,
    # segments API, segment counts, occasions, points activation, points expiry, memberships API, membership
    # review + payout tasks + batch tasks
    assert len(functions) == 29 + len(PAYOUT_TASKS) + len(BATCH_TASKS)
    roles = {json.dumps(f["Properties"]["Role"]) for f in functions.values()}
    assert len(roles) == len(functions)
    for f in functions.values():
        p = f["Properties"]
        assert p["TracingConfig"] == {"Mode": "Active"}
        assert p["Runtime"].startswith("python3.")
        assert "LoggingConfig" in p
        assert any("AWSLambdaPowertoolsPythonV3" in json.dumps(layer) for layer in p["Layers"])


def test_only_the_functions_that_queue_messages_may_send_them(template):
    senders = {k.split("Function")[0] for k, p in of_type(template, "AWS::IAM::Policy").items()
               if "sqs:SendMessage" in json.dumps(p)}
    # functions invoked asynchronously (schedules) send only to their own dead-letter queue
    dead_letters = {k.split("Function")[0]: f["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
                    for k, f in of_type(template, "AWS::Lambda::Function").items()
                    if "DeadLetterConfig" in f["Properties"]}
    assert "AuditSealer" in dead_letters
    for name, queue in dead_letters.items():
        assert _policy_actions(template, f"{name}Function", "") >= {"sqs:SendMessage"}
        sent_to = {json.dumps(st["Resource"]) for lid, policy in of_type(template, "AWS::IAM::Policy").items()
                   if lid.startswith(f"{name}Function")
                   for st in policy["Properties"]["PolicyDocument"]["Statement"] if "sqs:SendMessage" in st["Action"]}
        assert sent_to == {json.dumps({"Fn::GetAtt": [queue, "Arn"]})}, name
    # the accrual consumer dead-letters; the fan-out and the webhooks API (redelivery) queue deliveries;
    # finance queues report jobs and the report worker continues them through the report queue; the sender
    # re-queues deliveries it defers and dead-letters the ones out of attempts; Lambda describes the stream batches
    # the progress function gave up on to its failure queue with the function's role
    assert senders - set(dead_letters) == {"AccrualQueueConsumer", "WebhookFanout", "Webhooks", "Finance",
                                           "ReportWorker", "WebhookSender", "Progress"}


def test_the_api_is_the_route_table_and_all_but_docs_need_the_authorizer(synthesized):
    model = load(synthesized)
    declared = {(r.method, r.path) for r in model.routes}
    docs = {("GET", "/v1/openapi.json"), ("GET", "/docs"), ("GET", "/docs/{asset}")}
    assert {(r.method, r.path) for r in ROUTES if r.public} == docs
    assert declared == {(r.method, r.path) for r in ROUTES}
    assert len(model.routes) == len(ROUTES)  # each route declared once
    assert declared - docs == api_routes()
    for r in model.routes:
        assert (r.authorizer is None) == ((r.method, r.path) in docs), r
    assert len({r.function for r in model.routes if (r.method, r.path) in docs}) == 1  # the Docs function
    # each route goes to the function the table names
    served = {(r.method, r.path): model.functions[r.function].handler for r in model.routes}
    for route in ROUTES:
        assert served[(route.method, route.path)] == SPECS[route.function].handler, route


def _function_of(template, spec_id):
    [(lid, fn)] = [(lid, f) for lid, f in of_type(template, "AWS::Lambda::Function").items()
                   if re.fullmatch(rf"{spec_id}Function[0-9A-F]{{8}}", lid)]
    return lid, fn["Properties"]


def test_every_function_is_built_from_its_spec(template):
    """The loop over FUNCTIONS: one function per spec with its handler, sizing, reserved concurrency, table
    access (name, actions, data key) and code keys, and no other function."""
    assert len(of_type(template, "AWS::Lambda::Function")) == len(FUNCTIONS) == len(SPECS)
    [data_key] = [lid for lid in of_type(template, "AWS::KMS::Key") if lid.startswith("StorageDataKey")]
    for spec in FUNCTIONS:
        lid, p = _function_of(template, spec.id)
        assert (p["Handler"], p["MemorySize"], p["Timeout"]) == (spec.handler, spec.memory, spec.timeout), spec.id
        concurrency = BATCH_CONCURRENCY.get(spec.concurrency) if spec.concurrency else None
        assert p.get("ReservedConcurrentExecutions") == concurrency, spec.id
        env = p["Environment"]["Variables"]
        assert ("TABLE_NAME" in env) == bool(spec.table) and ("CODES_KEY_ID" in env) == bool(spec.codes), spec.id
        for k, v in [*RUNTIME_ENVIRONMENT.items(), *spec.environment]:
            assert env[k] == v, spec.id
        actions = _role_actions(template, lid)
        stream = {"dynamodb:ListStreams", "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
        assert {a for a in actions if a.startswith("dynamodb:")} - stream == set(spec.table), spec.id  # the fan-out's
        uses_data_key = any(data_key in json.dumps(st["Resource"]) and "kms:Decrypt" in st["Action"]
                            for policy in of_type(template, "AWS::IAM::Policy").values()
                            if _attached_to(policy, template, lid)
                            for st in policy["Properties"]["PolicyDocument"]["Statement"])
        assert uses_data_key == bool(spec.table), spec.id


def _attached_to(policy, template, function_lid):
    role = template["Resources"][function_lid]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role in {r["Ref"] for r in policy["Properties"]["Roles"]}


def _defined_in(module: str) -> set[str]:
    """The functions a handler module defines (def, or a module-level name bound to one)."""
    tree = ast.parse((ROOT / "functions" / (module.replace(".", "/") + ".py")).read_text())
    bound = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    return bound | {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_spec_and_route_names_a_handler_that_exists():
    for spec in FUNCTIONS:
        module, name = spec.handler.rsplit(".", 1)
        assert name in _defined_in(module), spec.handler
    for route in ROUTES:  # the handler of a route is a function of its function's handler module
        module = SPECS[route.function].handler.rsplit(".", 1)[0]
        assert route.handler in _defined_in(module), route


@pytest.mark.parametrize("path", ["infra/stack.py", "infra/components.py"])
def test_no_method_of_the_stack_is_over_50_lines(path):
    tree = ast.parse((ROOT / path).read_text())
    long = {n.name: n.end_lineno - n.lineno + 1 for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno + 1 > 50}
    assert long == {}


def test_only_the_docs_function_carries_swagger_ui_and_its_asset_has_it(synthesized, template):
    """make copies Swagger UI into functions/treue/static; the Docs function's code asset holds it (the page loads
    nothing from elsewhere), the other functions' asset leaves its ~2 MB out."""
    functions = of_type(template, "AWS::Lambda::Function")
    keys = {k: f["Properties"]["Code"]["S3Key"].removesuffix(".zip") for k, f in functions.items()
            if "S3Key" in f["Properties"]["Code"]}
    [docs] = [k for k, f in functions.items() if f["Properties"]["Handler"] == "treue.handlers.docs.handler"]
    bundle = Path("treue") / "static" / "swagger-ui-bundle.js"
    assert (synthesized.parent / f"asset.{keys[docs]}" / bundle).stat().st_size > 100_000
    assert (synthesized.parent / f"asset.{keys[docs]}" / "treue" / "static" / "swagger-ui.css").exists()
    others = {h for k, h in keys.items() if k != docs}
    assert others and keys[docs] not in others
    for h in others:
        assert (synthesized.parent / f"asset.{h}" / "treue" / "handlers").is_dir()
        assert not (synthesized.parent / f"asset.{h}" / bundle).exists()


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


def _alarms_on(template, metric, dimension=None):
    """The alarms on one metric (and one dimension value, compared as JSON)."""
    return [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("MetricName") == metric
            and (dimension is None or any(json.dumps(d["Value"]) == json.dumps(dimension)
                                          for d in a["Properties"].get("Dimensions", [])))]


def test_every_alarm_notifies_the_one_alarm_topic(template):
    [topic] = of_type(template, "AWS::SNS::Topic")
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) > 40
    for lid, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}], lid
        assert alarm["Properties"]["AlarmDescription"], lid


def test_cloudwatch_alarms_of_this_account_may_publish_to_the_encrypted_alarm_topic(template):
    [(lid, topic)] = of_type(template, "AWS::SNS::Topic").items()
    key_lid = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_lid]["Properties"]
    from_alarms = {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:",
                                                        {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
                                                        ":alarm:*"]]}},
    }
    # SNS encrypts each message with the publisher's access to the key: CloudWatch needs it, conditioned
    [grant] = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert grant["Effect"] == "Allow" and sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert grant["Condition"] == from_alarms
    # the key protects the alarm topic alone: no other resource or function uses it
    users = [other for other, r in template["Resources"].items() if other not in (lid, key_lid)
             and key_lid in json.dumps(r.get("Properties", {}))]
    assert users == []
    [policy] = [p["Properties"] for p in of_type(template, "AWS::SNS::TopicPolicy").values()
                if p["Properties"]["Topics"] == [{"Ref": lid}]]
    [publish] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and publish["Action"] == "sns:Publish"
    assert publish["Resource"] == {"Ref": lid} and publish["Condition"] == from_alarms
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s)
               for s in policy["PolicyDocument"]["Statement"])


def test_alarms_watch_every_function_queue_of_failures_workflow_and_the_stream(template):
    resources = template["Resources"]
    functions = of_type(template, "AWS::Lambda::Function")
    for lid in functions:
        assert _alarms_on(template, "Errors", {"Ref": lid}), f"no Errors alarm on {lid}"
    # every queue that holds failures: SQS dead-letter targets, functions' DLQs, the stream's on-failure queue
    failure_queues = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                      for q in of_type(template, "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"]}
    failure_queues |= {f["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
                       for f in functions.values() if "DeadLetterConfig" in f["Properties"]}
    failure_queues |= {m["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
                       for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()
                       if "DestinationConfig" in m["Properties"]}
    assert any(lid.startswith("WebhookDeliveriesStreamFailures") for lid in failure_queues)
    assert any(lid.startswith("AuditSealerDeadLetters") for lid in failure_queues)
    for queue in failure_queues:
        assert resources[queue]["Type"] == "AWS::SQS::Queue"
        [depth] = _alarms_on(template, "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [queue, "QueueName"]})
        assert depth["Threshold"] == 1 and depth["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # failed, timed-out and aborted executions of both workflows
    for machine in of_type(template, "AWS::StepFunctions::StateMachine"):
        for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
            [alarm] = _alarms_on(template, metric, {"Ref": machine})
            assert alarm["Namespace"] == "AWS/States" and alarm["Threshold"] == 1, (machine, metric)
    # the fan-out: how old the stream's records are, and the failures it reports (not function errors)
    [fanout] = [lid for lid, f in functions.items()
                if f["Properties"]["Handler"] == "treue.handlers.webhook_fanout.handler"]
    [age] = _alarms_on(template, "IteratorAge", {"Ref": fanout})
    assert age["Statistic"] == "Maximum" and age["Threshold"] == 5 * 60 * 1000
    service = functions[fanout]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    [failures] = _alarms_on(template, "WebhookFanoutFailures")
    assert failures["Namespace"] == "Treue" and failures["Dimensions"] == [{"Name": "service", "Value": service}]
    # orders left open: counted by the sweeper with Powertools (its service name is the dimension)
    [stuck] = _alarms_on(template, "StuckOrdersFound")
    assert stuck["Namespace"] == "Treue" and stuck["Statistic"] == "Sum" and stuck["Threshold"] == 1
    sweepers = [f for f in functions.values() if f["Properties"]["Handler"] == "treue.handlers.sweeper.handler"]
    for sweeper in sweepers:
        service = sweeper["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        assert stuck["Dimensions"] == [{"Name": "service", "Value": service}]


def test_every_log_group_is_encrypted_with_the_logs_key_that_only_cloudwatch_logs_of_this_account_uses(template):
    groups = of_type(template, "AWS::Logs::LogGroup")
    keys = {g["Properties"]["KmsKeyId"]["Fn::GetAtt"][0] for g in groups.values()}
    assert len(keys) == 1 and len(groups) == len(of_type(template, "AWS::Lambda::Function")) + 2 + 1
    [key] = keys
    policy = template["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
    [logs] = [s for s in policy if s["Principal"] != {"AWS": {"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}}]
    assert logs["Principal"] == {"Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}
    assert json.dumps(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]).endswith(
        '":log-group:*"]]}')
    # no function or workflow role may use the logs key
    assert not any(key in json.dumps(p) for p in of_type(template, "AWS::IAM::Policy").values())


def test_the_stage_has_access_logs_and_tracing(template):
    [stage] = of_type(template, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["TracingEnabled"] is True
    assert "AccessLogSetting" in stage["Properties"]


def _machine(template, prefix):
    machines = of_type(template, "AWS::StepFunctions::StateMachine")
    [machine] = [m for lid, m in machines.items() if lid.startswith(prefix)]
    return machine


def test_the_payout_workflow_is_standard_logged_traced_and_from_the_asl_file(template):
    p = _machine(template, "Payout")["Properties"]
    assert p["StateMachineType"] == "STANDARD"
    assert p["LoggingConfiguration"]["Level"] == "ALL" and p["TracingConfiguration"] == {"Enabled": True}
    assert "DefinitionS3Location" in p  # DefinitionBody.from_file: the file is the asset
    wanted = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    assert wanted == set(p["DefinitionSubstitutions"]) == set(PAYOUT_TASKS)
    functions = of_type(template, "AWS::Lambda::Function")
    for name, ref in p["DefinitionSubstitutions"].items():
        handler = functions[ref["Fn::GetAtt"][0]]["Properties"]["Handler"]
        assert handler == f"treue.handlers.payout.{PAYOUT_TASKS[name][1]}"


def test_failures_before_issuance_release_the_hold_and_after_it_are_only_retried():
    states = json.loads(ASL.read_text())["States"]
    for name in ("VerifyHold", "IssueVoucher", "IssueGiftCard", "RecordDonation"):
        assert states[name]["Catch"][0]["Next"] == "ReleaseHold"
    for name in ("Deliver", "Capture"):
        assert "Catch" not in states[name] and states[name]["Retry"]
    retry = states["IssueGiftCard"]["Retry"][0]
    assert set(retry["ErrorEquals"]) == {"ProviderTimeout", "ProviderUnavailable"}
    assert retry["JitterStrategy"] == "FULL" and retry["BackoffRate"] > 1
    assert states["ReleaseHold"]["Next"] == "Failed"


def _policy_actions(template, function_prefix, resource=""):
    actions = set()
    for lid, policy in of_type(template, "AWS::IAM::Policy").items():
        if lid.startswith(function_prefix):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if resource not in json.dumps(statement["Resource"]):
                    continue
                a = statement["Action"]
                actions |= set(a if isinstance(a, list) else [a])
    return actions


def test_codes_keys_are_used_least_privilege(template):
    keys = of_type(template, "AWS::KMS::Key")
    assert any(k["Properties"].get("KeySpec") == "HMAC_256" for k in keys.values())
    assert "kms:GenerateMac" in _policy_actions(template, "Vouchers")
    assert "states:StartExecution" in _policy_actions(template, "Orders")
    assert "states:StartExecution" not in _policy_actions(template, "Vouchers")
    assert _policy_actions(template, "Vouchers", "CodeKeysSealingKey") == set()  # the till never sees codes
    assert _policy_actions(template, "Orders", "CodeKeysSealingKey") == {"kms:Decrypt"}
    assert _policy_actions(template, "PayoutIssueVoucher", "CodeKeysSealingKey") == {"kms:Encrypt"}
    assert _policy_actions(template, "PayoutCapture", "CodeKeys") == set()


def test_the_table_has_the_program_wide_index(template):
    (table,) = of_type(template, "AWS::DynamoDB::Table").values()
    (index,) = table["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "gsi1" and index["Projection"]["ProjectionType"] == "ALL"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["gsi1pk", "gsi1sk"]


def test_the_table_is_the_one_the_stores_and_tests_use(template):
    """The construct is built from treue.store.schema, as the tests' table is (tests/support.py)."""
    (table,) = of_type(template, "AWS::DynamoDB::Table").values()
    p = table["Properties"]
    assert p["KeySchema"] == schema.TABLE["KeySchema"]
    assert sorted(p["AttributeDefinitions"], key=str) == sorted(schema.TABLE["AttributeDefinitions"], key=str)
    assert p["GlobalSecondaryIndexes"] == schema.TABLE["GlobalSecondaryIndexes"]


def _role_actions(template, function_lid: str) -> set[str]:
    role = template["Resources"][function_lid]["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if role in {r["Ref"] for r in policy["Properties"]["Roles"]}:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                a = statement["Action"]
                actions |= set(a if isinstance(a, list) else [a])
    return actions


def test_the_audit_sealer_runs_every_minute_and_may_not_delete(synthesized, template):
    model = load(synthesized)
    (schedule,) = [s for s in model.schedules if model.functions[s.function].handler == "treue.handlers.audit.handler"]
    assert schedule.seconds == 60
    ddb = {a for a in _role_actions(template, schedule.function) if a.startswith("dynamodb:")}
    assert ddb == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                   "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}


def test_the_sweeper_runs_every_five_minutes_and_may_start_and_read_both_workflows(synthesized, template):
    model = load(synthesized)
    (schedule,) = [s for s in model.schedules
                   if model.functions[s.function].handler == "treue.handlers.sweeper.handler"]
    assert schedule.seconds == 300
    actions = _role_actions(template, schedule.function)
    assert {"states:StartExecution", "states:DescribeExecution", "dynamodb:DeleteItem"} <= actions
    assert not {a for a in actions if a.startswith("states:") and a not in
                ("states:StartExecution", "states:DescribeExecution")}


def test_the_tier_review_runs_daily_and_may_read_put_and_update_only(synthesized, template):
    """Due tier states and months are queries, the program a read; a change is a transaction of the TIER item's
    update (which keeps a paid membership's grant on it) and Put items."""
    model = load(synthesized)
    (schedule,) = [s for s in model.schedules
                   if model.functions[s.function].handler == "treue.handlers.tier_review.handler"]
    assert schedule.seconds == 86_400
    ddb = {a for a in _role_actions(template, schedule.function) if a.startswith("dynamodb:")}
    assert ddb == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert not {a for a in _role_actions(template, schedule.function) if a.startswith("states:")}


def test_the_membership_review_runs_daily_and_may_read_put_and_update_only(synthesized, template):
    """Due memberships are a query, the membership, the TIER item and the program reads; an end is a transaction
    of the membership's Put, the grant's removal (an Update), the event and the audit record."""
    model = load(synthesized)
    (schedule,) = [s for s in model.schedules
                   if model.functions[s.function].handler == "treue.handlers.membership_review.handler"]
    assert schedule.seconds == 86_400
    actions = _role_actions(template, schedule.function)
    assert {a for a in actions if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:Query",
                                                                 "dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert not {a for a in actions if a.startswith(("states:", "s3:"))}


def test_the_segment_count_runs_every_five_minutes_and_may_read_and_update_only(synthesized, template):
    """The snapshots, events, balances and members' months are queries; the walk's checkpoints and the snapshot are
    updates of one item; nothing is put, deleted or transacted."""
    model = load(synthesized)
    (schedule,) = [s for s in model.schedules
                   if model.functions[s.function].handler == "treue.handlers.segment_counts.handler"]
    assert schedule.seconds == 300
    actions = _role_actions(template, schedule.function)
    assert {a for a in actions if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:Query",
                                                                 "dynamodb:UpdateItem"}
    assert not {a for a in actions if a.startswith(("states:", "s3:", "kms:Sign"))}
    segments = {r.function for r in model.routes if "segments" in r.path or r.path.endswith("/offers")}
    assert len(segments) == 1
    (api,) = segments
    assert {a for a in _role_actions(template, api) if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}


def test_no_role_is_granted_transact_write_items_in_place_of_the_item_actions(template):
    """AWS authorizes every item of a TransactWriteItems as PutItem/UpdateItem/DeleteItem/ConditionCheckItem."""
    for lid, policy in of_type(template, "AWS::IAM::Policy").items():
        assert "dynamodb:TransactWriteItems" not in json.dumps(policy), lid


def test_finance_routes_go_to_the_finance_function(synthesized):
    model = load(synthesized)
    finance = {r.function for r in model.routes if r.path.startswith("/v1/finance/")}
    assert len(finance) == 1
    (fn,) = finance
    assert model.functions[fn].handler == "treue.handlers.finance.handler"


def test_the_batch_workflow_is_a_distributed_map_over_the_batch_bucket(template):
    p = _machine(template, "Batch")["Properties"]
    assert p["StateMachineType"] == "STANDARD" and p["LoggingConfiguration"]["Level"] == "ALL"
    assert p["LoggingConfiguration"]["IncludeExecutionData"] is False  # lines carry recipients' addresses
    wanted = set(re.findall(r"\$\{(\w+)\}", BATCH_ASL.read_text()))
    assert wanted == set(p["DefinitionSubstitutions"]) == set(BATCH_TASKS)
    functions = of_type(template, "AWS::Lambda::Function")
    for name, ref in p["DefinitionSubstitutions"].items():
        handler = functions[ref["Fn::GetAtt"][0]]["Properties"]["Handler"]
        assert handler == f"treue.handlers.batch_tasks.{BATCH_TASKS[name][1]}"
    states = json.loads(BATCH_ASL.read_text())["States"]
    mapped = states["IssueLines"]
    assert mapped["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert mapped["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert 1 <= mapped["MaxConcurrency"] <= 100 and mapped["ToleratedFailurePercentagePath"]
    assert mapped["Catch"][0]["Next"] == "FinishRun" and mapped["Next"] == "FinishRun"
    line = mapped["ItemProcessor"]["States"]["IssueLine"]
    assert line["OutputPath"] is None  # the Map's results stay tiny however many lines
    assert [c["ErrorEquals"] for c in line["Catch"]] == [["LineFailed"], ["States.ALL"]]
    assert all("LineFailed" not in r["ErrorEquals"] for r in line["Retry"])
    # the machine may start its own child executions and read the items files, nothing more
    role_actions = _policy_actions(template, "BatchStateMachineRole")
    assert {"states:StartExecution", "states:DescribeExecution", "states:StopExecution"} <= role_actions
    assert not any(a.startswith("s3:Put") or a.startswith("s3:Delete") for a in role_actions)


def test_the_batch_bucket_is_private_encrypted_tls_only_and_expires_files(template):
    [bucket] = of_type(template, "AWS::S3::Bucket").values()
    p = bucket["Properties"]
    assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "aws:kms"
    assert all(p["PublicAccessBlockConfiguration"].values())
    assert p["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90
    [policy] = of_type(template, "AWS::S3::BucketPolicy").values()
    assert "aws:SecureTransport" in json.dumps(policy)
    assert bucket["DeletionPolicy"] == "Retain"


def test_only_the_batches_api_starts_batches_and_only_line_tasks_seal_codes(template):
    assert "states:StartExecution" in _policy_actions(template, "BatchesFunction")
    assert "states:StartExecution" not in _policy_actions(template, "RewardsFunction", "Batch")
    assert _policy_actions(template, "BatchIssueLine", "CodeKeysSealingKey") == {"kms:Encrypt"}
    assert _policy_actions(template, "BatchFinish", "CodeKeys") == set()
    assert "dynamodb:BatchWriteItem" in _policy_actions(template, "BatchesFunction")


def test_batch_routes_go_to_the_batches_function_and_the_twin_makes_its_bucket(synthesized):
    model = load(synthesized)
    routed = {r.function for r in model.routes if r.path.startswith("/v1/batches")}
    assert len(routed) == 1 and model.functions[routed.pop()].handler == "treue.handlers.batches.handler"
    assert len(model.buckets) == 1


def test_points_activation_and_expiry_run_hourly_with_the_deletes_they_need(synthesized, template):
    """Activation deletes the activated pending item in its transaction; expiry drops the buckets whose date has
    passed (BatchWriteItem); neither starts or reads a workflow."""
    model = load(synthesized)
    runs = {model.functions[s.function].handler: s for s in model.schedules}
    activation, expiry = (runs[f"treue.handlers.points_lifecycle.{name}"] for name in ("activate", "expire"))
    assert (activation.seconds, expiry.seconds) == (3_600, 3_600)
    common = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem",
              "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem"}
    for schedule, extra in ((activation, set()), (expiry, {"dynamodb:BatchWriteItem"})):
        actions = _role_actions(template, schedule.function)
        assert {a for a in actions if a.startswith("dynamodb:")} == common | extra
        assert not {a for a in actions if a.startswith("states:")}
