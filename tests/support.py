"""Test helpers shared by the suites: the table, programs with keys, and events from events/."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from treue.store import schema

EVENTS = Path(__file__).resolve().parent.parent / "events"


def create_table(ddb, name: str = "treue-test") -> str:
    """The program table as the stack defines it (``treue.store.schema``), named ``name``."""
    ddb.create_table(**schema.create_table_args(name))
    return name


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def api_event(
    sample: str,
    *,
    path: str | None = None,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    auth: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway proxy event from a sample in events/, with parts replaced."""
    event = copy.deepcopy(load_event(sample))
    if path is not None:
        event["path"] = path
        event["requestContext"]["path"] = "/prod" + path
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if headers:
        event["headers"].update(headers)
        event["multiValueHeaders"].update({k: [v] for k, v in headers.items()})
    if auth is not None:
        event["requestContext"]["authorizer"] = dict(auth, principalId=auth["key_id"], integrationLatency=0)
    return event


class LambdaContext:
    function_name = "treue-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:treue-test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None
