"""The arithmetic of ``python -m tests.bench cost`` (the cost of 1M accruals), not its measured figures."""

from __future__ import annotations

import math

import boto3
import pytest
from moto import mock_aws

from tests import bench
from tests.support import create_table


def test_item_size_counts_names_and_values_as_dynamodb_does():
    assert bench.item_size({"pk": {"S": "abc"}}) == 5
    assert bench.item_size({"ä": {"S": "é"}}) == 4  # UTF-8 bytes, names and strings alike
    assert bench.item_size({"n": {"N": "12345"}}) == 1 + 4  # (5 digits + 1) // 2 + 1
    assert bench.item_size({"n": {"N": "-100"}}) == 1 + 2  # one significant digit: (1 + 1) // 2 + 1
    assert bench.item_size({"b": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert bench.item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + (1 + 2 + 1)
    assert bench.item_size({"l": {"L": [{"S": "x"}, {"S": "yz"}]}}) == 1 + 3 + (1 + 1) + (2 + 1)
    assert bench.item_size({"s": {"SS": ["ab", "c"]}}) == 1 + 3


def test_request_units_round_up_per_4_kb_read_and_per_kb_written():
    assert bench.read_units(0) == 0.5  # a miss still costs the minimum
    assert bench.read_units(4096) == 0.5
    assert bench.read_units(4097) == 1.0
    assert bench.read_units(4097, consistent=True) == 2
    assert bench.read_units(100, transactional=True) == 2
    assert bench.write_units(0) == 1
    assert bench.write_units(1024) == 1
    assert bench.write_units(1025) == 2
    assert bench.write_units(1025, transactional=True) == 4


def test_prices_per_million_accruals():
    # 1M invocations of 10 ms at 512 MB: $0.20 for the requests and 5,000 GB-seconds
    assert bench.lambda_usd(1, 10, 512) == pytest.approx(0.20 + 5000 * bench.LAMBDA_GB_SECOND)
    assert bench.lambda_usd(0.1, 100, 1024) == pytest.approx(0.02 + 10000 * bench.LAMBDA_GB_SECOND)
    assert bench.dynamodb_usd(10, 4) == pytest.approx(10 * 0.7625 + 4 * 0.1525)
    # 10 lines of 1,000 bytes in all: (1,000 + 10 × 26) bytes × 1M = 1.26 GB
    assert bench.logs_usd(10, 1000) == pytest.approx(1.26 * 0.63)
    assert bench.xray_usd(1, 0.5) == pytest.approx(2.5)
    assert bench.sqs_usd(1.2) == pytest.approx(0.48)
    assert bench.billed_ms(12.01) == 13 and bench.billed_ms(0.2) == 1 and bench.billed_ms(7.0) == 7


def test_xray_default_rule_traces_the_first_request_of_each_second_and_5_percent_of_the_rest():
    assert bench.sampled_fraction(1.0) == pytest.approx((1 - math.exp(-1)) + 0.05 * math.exp(-1))
    assert bench.sampled_fraction(0.001) == pytest.approx(1.0, abs=1e-3)  # rare requests: nearly all
    assert bench.sampled_fraction(10_000) == pytest.approx(0.05, abs=1e-3)  # busy: the fixed rate
    assert bench.sampled_fraction(1.0, (0.05, 1)) == bench.sampled_fraction(1.0)


def test_a_rule_without_a_reservoir_traces_its_fixed_rate_at_any_traffic():
    for per_second in (0.001, 0.39, 50):
        assert bench.sampled_fraction(per_second, (0.05, 0)) == pytest.approx(0.05)
        assert bench.sampled_fraction(per_second, (0.0, 0)) == 0
    # a reservoir of 2: E[min(N, 2)] of N ~ Poisson(1) is 2 - 2 P(0) - P(1) = 2 - 3/e
    in_reservoir = 2 - 3 * math.exp(-1)
    assert bench.sampled_fraction(1.0, (0.1, 2)) == pytest.approx(in_reservoir + 0.1 * (1 - in_reservoir))


def _stage(level="ERROR", rule=None):
    resources = {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "treue"}},
        "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {
            "RestApiId": {"Ref": "Api"}, "StageName": "prod",
            "MethodSettings": [{"HttpMethod": "*", "ResourcePath": "/*", "LoggingLevel": level,
                                "DataTraceEnabled": False}]}},
    }
    if rule:
        resources["Rule"] = {"Type": "AWS::XRay::SamplingRule", "Properties": {"SamplingRule": rule}}
    return resources


def test_the_stage_settings_are_read_from_the_template():
    own = {"RuleName": "Treue-api", "ServiceName": "treue/prod", "Priority": 1000, "FixedRate": 0.02,
           "ReservoirSize": 0}
    assert bench.stage_settings(_stage("ERROR", own)) == {
        "logging_level": "ERROR", "data_trace": False, "sampling": (0.02, 0), "rule": "Treue-api"}
    other = dict(own, ServiceName="other/prod")  # another API's rule: the default rule applies
    assert bench.stage_settings(_stage("INFO", other))["sampling"] == bench.DEFAULT_SAMPLING
    assert bench.stage_settings(_stage("INFO"))["logging_level"] == "INFO"
    assert bench.EXECUTION_LOG_BYTES["ERROR"] == 0 < bench.EXECUTION_LOG_BYTES["INFO"]


def test_cost_lines_add_up_per_component():
    usage = bench.PathUsage("path", gateway_requests=1, functions=[("f", 1, 9.2, 512)], sqs_requests=2, wru=10,
                            rru=4, sealing=(4, 1), log_lines=10, log_bytes=1000,
                            traces=[("stage", 1, 0.5), ("sealer", 0.04, 1.0)], bytes_out=1000)
    lines = {component: usd for component, _, usd in bench.cost_lines(usage)}
    assert lines["API Gateway REST"] == pytest.approx(3.70)
    assert lines["Lambda f (512 MB)"] == pytest.approx(bench.lambda_usd(1, 10, 512))  # billed 10 ms
    assert lines["SQS"] == pytest.approx(0.80)
    assert lines["DynamoDB on-demand"] == pytest.approx(8.235)
    assert lines["CloudWatch Logs ingestion"] == pytest.approx(0.7938)
    assert lines["DynamoDB, audit sealing"] == pytest.approx(4 * 0.7625 + 0.1525)
    assert lines["X-Ray traces, stage"] == pytest.approx(2.5)
    assert lines["X-Ray traces, sealer"] == pytest.approx(0.2)
    assert lines["Data transfer out"] == pytest.approx(0.09)
    assert lines["total"] == pytest.approx(sum(v for k, v in lines.items() if k != "total"))
    bare = {c for c, _, _ in bench.cost_lines(bench.PathUsage("queue", wru=1))}
    assert bare == {"DynamoDB on-demand", "CloudWatch Logs ingestion", "total"}


def test_a_stream_consumer_is_invoked_billed_logged_and_traced_once_per_stream_batch():
    rate = 1e6 / bench.MONTH_SECONDS  # 0.39 accruals a second: a batch holds an event and 0.39 more
    share = 1 / (1 + rate)
    lines, message_bytes = bench.platform_log(512)
    fanout = bench.stream_consumer("webhook fan-out", 1.2, 0, 0.5, 0, 0, 512, rate)
    assert fanout["function"] == ("webhook fan-out", pytest.approx(0.7216, abs=1e-4), 1.2, 512)
    assert fanout["rru"] == pytest.approx(0.5 * share)  # the endpoints read once a batch
    assert fanout["log_lines"] == pytest.approx(share * lines)  # START, END and REPORT of each invocation
    assert fanout["log_bytes"] == pytest.approx(share * message_bytes)
    assert fanout["traces"] == ("webhook fan-out", share, pytest.approx(bench.sampled_fraction(rate * share)))
    # Progress reads each purchase's posting, rules and member: its units are every event's, not a batch's
    progress = bench.stream_consumer("progress", 5.2, 0, 2, 1, 120, 512, rate, units_per_event=True)
    assert (progress["wru"], progress["rru"]) == (0, 2)
    assert progress["log_lines"] == pytest.approx(share * (lines + 1))
    assert progress["log_bytes"] == pytest.approx(share * (message_bytes + 120))
    usage = bench.PathUsage("queue", functions=[fanout["function"], progress["function"]],
                            rru=fanout["rru"] + progress["rru"], traces=[fanout["traces"], progress["traces"]])
    costs = {component: usd for component, _, usd in bench.cost_lines(usage)}
    assert costs["Lambda progress (512 MB)"] == pytest.approx(bench.lambda_usd(share, 6, 512))  # billed 6 ms
    assert costs["X-Ray traces, progress"] == pytest.approx(costs["X-Ray traces, webhook fan-out"])
    assert costs["X-Ray traces, progress"] > 3  # 0.72 traces per accrual, 88% of them recorded
    assert costs["DynamoDB on-demand"] == pytest.approx((2 + 0.5 * share) * bench.DYNAMODB_RRU_PER_MILLION)


@pytest.fixture
def ddb(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        yield client, create_table(client, "cost-unit")


def test_the_counter_counts_each_written_item_its_index_copy_and_the_reads(ddb):
    client, table = ddb
    counted = boto3.client("dynamodb")
    counter = bench.UnitCounter(counted, client, table)
    small = {"pk": {"S": "P#1"}, "sk": {"S": "A"}, "v": {"S": "x" * 10}}  # 15 bytes
    big = {"pk": {"S": "P#1"}, "sk": {"S": "B"}, "v": {"S": "x" * 2000}, "gsi1pk": {"S": "G"}, "gsi1sk": {"S": "1"}}
    counted.put_item(TableName=table, Item=small)
    assert (counter.wru, counter.rru) == (1, 0)
    counter.reset()
    counted.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": big}},  # 2 KB, transactional: 4, and its index copy: 2
        {"Update": {"TableName": table, "Key": {"pk": small["pk"], "sk": small["sk"]},
                    "UpdateExpression": "SET w = :w", "ExpressionAttributeValues": {":w": {"N": "1"}}}},  # 2
    ])
    assert counter.wru == 8
    assert [(op, kind, units) for op, kind, _, units in counter.writes] == [
        ("TransactWriteItems", "B", 6), ("TransactWriteItems", "A", 2)]
    counter.reset()
    counted.get_item(TableName=table, Key={"pk": small["pk"], "sk": small["sk"]}, ConsistentRead=True)
    counted.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "P#1"}})
    assert counter.rru == 1 + 0.5  # a consistent read, then one eventually consistent page under 4 KB
    assert counter.calls == ["GetItem", "Query"]
    counter.reset()
    counted.delete_item(TableName=table, Key={"pk": big["pk"], "sk": big["sk"]})
    assert counter.wru == 2 + 2  # the item as it was, and its index copy


def test_a_query_is_billed_for_the_whole_items_it_read_whatever_it_returns(ddb):
    client, table = ddb
    counted = boto3.client("dynamodb")
    counter = bench.UnitCounter(counted, client, table)
    for n in range(3):  # 3 × about 3 KB: 3 read units for the page, consistent
        counted.put_item(TableName=table, Item={"pk": {"S": "P#2"}, "sk": {"S": f"I#{n}"}, "v": {"S": "x" * 3000},
                                                "gsi1pk": {"S": "G#2"}, "gsi1sk": {"S": str(n)}})
    counter.reset()
    out = counted.query(TableName=table, KeyConditionExpression="pk = :p AND begins_with(#s, :i)",
                        ProjectionExpression="#s", FilterExpression="#s <> :one",
                        ExpressionAttributeNames={"#s": "sk"},
                        ExpressionAttributeValues={":p": {"S": "P#2"}, ":i": {"S": "I#"}, ":one": {"S": "I#1"}},
                        ConsistentRead=True)
    assert [i["sk"]["S"] for i in out["Items"]] == ["I#0", "I#2"]  # the caller's answer is untouched
    assert counter.rru == 3
    counter.reset()
    counted.query(TableName=table, IndexName="gsi1", KeyConditionExpression="gsi1pk = :g",
                  ExpressionAttributeValues={":g": {"S": "G#2"}}, ProjectionExpression="gsi1sk", Limit=2)
    assert counter.rru == 1  # two of the index's whole items, 6 KB: 2 units, halved (eventually consistent)
