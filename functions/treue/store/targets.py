"""Where the operator CLI writes: the local twin's moto endpoint or a deployed stack's table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from treue.store.usage_plans import UsagePlan


def twin(state_file: Path) -> tuple[Any, str]:
    """(DynamoDB client, table name) of the running twin described by ``state_file``."""
    if not state_file.exists():
        raise SystemExit(f"{state_file} not found: start the twin with `make run`, or pass --stack NAME")
    state = json.loads(state_file.read_text())
    client = boto3.client(
        "dynamodb",
        endpoint_url=state["aws_endpoint"],
        region_name=state.get("region", "eu-central-1"),
        aws_access_key_id="twin",
        aws_secret_access_key="twin",
    )
    return client, state["table"]


def stack(name: str) -> tuple[Any, str]:
    """(DynamoDB client, table name) of a deployed stack, with the caller's AWS credentials."""
    outputs = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])
    table = next((o["OutputValue"] for o in outputs if o["OutputKey"] == "TableName"), None)
    if not table:
        raise SystemExit(f"stack {name} has no TableName output")
    return boto3.client("dynamodb"), table


def report_resources(state_file: Path, stack_name: str | None) -> tuple[Any, Any, str, str]:
    """(S3 client, SQS client, bucket, report queue URL) of the twin or a deployed stack, for report jobs."""
    if stack_name:
        outputs = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])
        found = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        if "BatchBucketName" not in found or "ReportQueueUrl" not in found:
            raise SystemExit(f"stack {stack_name} has no report jobs (BatchBucketName, ReportQueueUrl outputs)")
        return boto3.client("s3"), boto3.client("sqs"), found["BatchBucketName"], found["ReportQueueUrl"]
    state = json.loads(state_file.read_text())
    if not state.get("batch_bucket") or "report" not in state.get("queues", {}):
        raise SystemExit("the running twin has no report jobs: restart it (`make run`) from this checkout")
    kw = {"endpoint_url": state["aws_endpoint"], "region_name": state.get("region", "eu-central-1"),
          "aws_access_key_id": "twin", "aws_secret_access_key": "twin"}
    return boto3.client("s3", **kw), boto3.client("sqs", **kw), state["batch_bucket"], state["queues"]["report"]


def usage_plan(state_file: Path | None, stack_name: str | None) -> UsagePlan | None:
    """The API's usage plan (``treue.store.usage_plans.UsagePlan``) of a deployed stack (its UsagePlanId
    output) or of the running twin (its state file); None when the target has none."""
    if stack_name:
        outputs = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])
        plan = next((o["OutputValue"] for o in outputs if o["OutputKey"] == "UsagePlanId"), None)
        return UsagePlan(plan, boto3.client("apigateway")) if plan else None
    state = json.loads(state_file.read_text()) if state_file and state_file.exists() else {}
    if not state.get("usage_plan_id"):
        return None
    client = boto3.client("apigateway", endpoint_url=state["aws_endpoint"],
                          region_name=state.get("region", "eu-central-1"),
                          aws_access_key_id="twin", aws_secret_access_key="twin")
    return UsagePlan(state["usage_plan_id"], client)
