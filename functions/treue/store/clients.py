"""One boto3 client per AWS service and execution environment, created on first use."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError

# what botocore raises when an AWS service does not answer in time (after the client's own retries)
TIMEOUTS = (ReadTimeoutError, ConnectTimeoutError, ConnectionClosedError)

_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 4},
                 tcp_keepalive=True)
_clients: dict[str, object] = {}


def get(service: str) -> Any:
    found = _clients.get(service)
    if found is None:
        found = _clients[service] = boto3.client(service, config=_CONFIG)
    return found


def reset() -> None:
    """Forget every client (tests switch between mocked AWS environments)."""
    _clients.clear()


class BucketFiles:
    """Files of one S3 bucket (batch runs and uploads, report state and results), its client made on first use."""

    def __init__(self, bucket: str, s3: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    @property
    def s3(self) -> Any:
        return self._s3 or get("s3")

    def put_json(self, key: str, data: object) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, ContentType="application/json",
                           Body=json.dumps(data, separators=(",", ":")).encode())

    def get_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
