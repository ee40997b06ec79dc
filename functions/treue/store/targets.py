"""Where the operator CLI writes: the local twin's moto endpoint or a deployed stack's table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3


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
