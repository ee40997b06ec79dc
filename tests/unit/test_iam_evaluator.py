"""The permission evaluator (infra/twin/iam.py) authorizes calls the way AWS does."""

from __future__ import annotations

import pytest

from infra.twin import iam

REGION = "eu-central-1"
TABLE = f"arn:aws:dynamodb:{REGION}:123456789012:table/t"
KEY = f"arn:aws:kms:{REGION}:123456789012:key/0b6f1f9e-1111-2222-3333-444455556666"


def allow(actions, resources, **extra):
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def verdicts(statements, service, operation, params):
    return [iam.evaluate(statements, r.action, r.resource, {"aws:SecureTransport": "true"})
            for r in iam.requests_of(service, operation, params, REGION)]


def transact(*kinds):
    return {"TransactItems": [{k: {"TableName": "t", "Key": {}}} for k in kinds]}


def test_a_transaction_is_authorized_item_by_item_not_as_transact_write_items():
    only_transact = [allow("dynamodb:TransactWriteItems", TABLE)]
    assert verdicts(only_transact, "dynamodb", "TransactWriteItems", transact("Put")) == ["implicit-deny"]
    items = [allow(["dynamodb:PutItem", "dynamodb:UpdateItem"], TABLE)]
    assert verdicts(items, "dynamodb", "TransactWriteItems", transact("Put", "Update")) == ["allow", "allow"]
    assert verdicts(items, "dynamodb", "TransactWriteItems", transact("Put", "ConditionCheck", "Delete")) == [
        "allow", "implicit-deny", "implicit-deny"]


def test_batch_reads_need_their_own_action_and_index_queries_the_index_arn():
    reads = [allow(["dynamodb:GetItem", "dynamodb:Query"], TABLE)]
    assert verdicts(reads, "dynamodb", "BatchGetItem", {"RequestItems": {"t": {"Keys": []}}}) == ["implicit-deny"]
    assert verdicts(reads, "dynamodb", "Query", {"TableName": "t"}) == ["allow"]
    assert verdicts(reads, "dynamodb", "Query", {"TableName": "t", "IndexName": "gsi1"}) == ["implicit-deny"]
    with_index = [allow("dynamodb:Query", [TABLE, TABLE + "/index/*"])]
    assert verdicts(with_index, "dynamodb", "Query", {"TableName": "t", "IndexName": "gsi1"}) == ["allow"]


def test_an_explicit_deny_wins_and_wildcards_follow_aws_rules():
    statements = [allow("DynamoDB:*Item", "arn:aws:dynamodb:*:*:table/*"),
                  {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"}]
    assert verdicts(statements, "dynamodb", "GetItem", {"TableName": "t"}) == ["allow"]  # actions: any case
    assert verdicts(statements, "dynamodb", "DeleteItem", {"TableName": "t"}) == ["deny"]
    upper = [allow("dynamodb:GetItem", TABLE.replace("table/t", "table/T"))]
    assert verdicts(upper, "dynamodb", "GetItem", {"TableName": "t"}) == ["implicit-deny"]  # resources: exact case
    not_action = [{"Effect": "Allow", "NotAction": "dynamodb:DeleteItem", "Resource": "*"}]
    assert verdicts(not_action, "dynamodb", "PutItem", {"TableName": "t"}) == ["allow"]
    assert verdicts(not_action, "dynamodb", "DeleteItem", {"TableName": "t"}) == ["implicit-deny"]


def test_conditions_are_evaluated_and_unknown_operators_refused():
    tls_only = [allow("s3:GetObject", "*", Condition={"Bool": {"aws:SecureTransport": "true"}})]
    assert iam.evaluate(tls_only, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "true"}) == "allow"
    assert iam.evaluate(tls_only, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "false"}) \
        == "implicit-deny"
    odd = [allow("s3:GetObject", "*", Condition={"NumericLessThan": {"s3:max-keys": "10"}})]
    with pytest.raises(iam.UnsupportedCondition):
        iam.evaluate(odd, "s3:GetObject", "arn:aws:s3:::b/k", {"s3:max-keys": "5"})


def test_requests_name_the_resource_aws_authorizes():
    s3 = iam.requests_of("s3", "HeadObject", {"Bucket": "b", "Key": "runs/1.json"}, REGION)
    assert s3 == [iam.Request("s3:GetObject", "arn:aws:s3:::b/runs/1.json")]
    sqs = iam.requests_of("sqs", "SendMessageBatch", {"QueueUrl": "http://127.0.0.1:5000/123456789012/q"}, REGION)
    assert sqs == [iam.Request("sqs:SendMessage", f"arn:aws:sqs:{REGION}:123456789012:q")]
    blob = b"0b6f1f9e-1111-2222-3333-444455556666" + b"\x00" * 40
    kms = iam.requests_of("kms", "Decrypt", {"CiphertextBlob": blob}, REGION)
    assert kms == [iam.Request("kms:Decrypt", KEY, KEY)]


def policy(statements, key_statements=None):
    keys = [(KEY, key_statements)] if key_statements is not None else []
    return iam.FunctionPolicy("Fn", "m.handler", "FnRole", statements, {}, keys)


def test_kms_needs_the_key_policy_to_allow_the_role_or_delegate_to_iam():
    identity = [allow("kms:Decrypt", KEY)]
    params = {"KeyId": KEY, "CiphertextBlob": b"x"}
    delegating = [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
                   "Resource": "*"}]
    enforcer = iam.Enforcer(iam.already_resolved, function=policy(identity, delegating))
    assert enforcer.check("kms", "Decrypt", params, REGION) is None
    closed = [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "kms:*", "Resource": "*"}]
    enforcer = iam.Enforcer(iam.already_resolved, function=policy(identity, closed))
    denial = enforcer.check("kms", "Decrypt", params, REGION)
    assert denial is not None and "key policy" in denial.reason
    assert enforcer.denials == [denial]


def test_the_environment_resolver_maps_template_resources_to_the_run():
    template_env = {"TABLE_NAME": {"Ref": "Table"}, "QUEUE_URL": {"Ref": "Queue"}, "KEY": {"Fn::GetAtt": ["K", "Arn"]}}
    actual = {"TABLE_NAME": "t", "QUEUE_URL": "http://h/123456789012/q", "KEY": KEY}
    types = {"Table": "AWS::DynamoDB::Table", "Queue": "AWS::SQS::Queue", "K": "AWS::KMS::Key"}
    r = iam.EnvironmentResolver(template_env, actual, REGION, types)
    assert r.resolve({"Fn::Join": ["", [{"Fn::GetAtt": ["Table", "Arn"]}, "/index/*"]]}) == TABLE + "/index/*"
    assert r.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == f"arn:aws:sqs:{REGION}:123456789012:q"
    assert r.resolve({"Fn::GetAtt": ["K", "Arn"]}) == KEY
    unknown = r.resolve({"Fn::GetAtt": ["Other", "Arn"]})
    assert unknown.startswith(iam.UNRESOLVED)
    assert iam.evaluate([allow("dynamodb:GetItem", unknown)], "dynamodb:GetItem", unknown, {}) == "implicit-deny"
