"""Finance report jobs: the report items (DynamoDB), their state and results (S3), the job queue (SQS).

Layout (same table as ``treue.store.schema``):

    pk                        sk        what
    P#<pid>#REPORT#<rid>      REPORT    the report: type, params, format, status, progress, step, result;
                                        indexed by time (gsi1 P#<pid>#REPORTS); expires with ``expires_at``

``step`` counts the worker's continuations: a message of the job queue names the step it continues
from, and a worker's checkpoint is conditioned on the report still being at that step, so a message
delivered twice (or two workers racing) never counts a page twice.

S3 (the batch bucket, prefix ``reports/``): ``reports/<pid>/<rid>/state-<step>-<token>.json``, the
accumulated state between continuations (deleted once the report is built), and
``reports/<pid>/<rid>/<type>-<param>.<json|csv>``, the result.
"""

from __future__ import annotations

import json
from typing import Any

from treue.core.report_records import Report
from treue.core.statuses import ReportStatus
from treue.store import clients
from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import report_pk
from treue.store.table import Replay, newest_first

PREFIX = "reports/"


def _key(program_id: str, report_id: str) -> dict[str, Any]:
    return item_key(report_pk(program_id, report_id), "REPORT")


def _report(data: dict[str, Any]) -> Report:
    """A stored report item as a record (its keys, index keys and expiry left out)."""
    return Report.from_item(strip_keys(data, index=True))


class ReportJobs(OnTable):
    def create(self, report: Report, idempotency: tuple[str, str], answer: dict[str, Any],
               expires_at: int) -> Replay | None:
        """The idempotency guard and the report in one transaction; the first report's Replay when the
        Idempotency-Key was used before."""
        pid, rid = report.program_id, report.id
        key, fingerprint = idempotency
        item = {"pk": report_pk(pid, rid), "sk": "REPORT", **report.item(), "gsi1pk": f"P#{pid}#REPORTS",
                "gsi1sk": f"{report.created_at}#{rid}", "expires_at": expires_at}
        guard = self.store._idem_put(pid, "report", key, fingerprint, answer, report.created_at)
        return self.store.transact_guarded([guard, self.store._put_new(item)], pid, "report", key)

    def get(self, program_id: str, report_id: str) -> Report | None:
        out = self.ddb.get_item(TableName=self.table, Key=_key(program_id, report_id), ConsistentRead=True)
        return _report(from_item(out["Item"])) if "Item" in out else None

    def page(self, program_id: str, after: str | None, limit: int) -> tuple[list[Report], str | None]:
        """The program's reports, newest first; the cursor is the last report's index key."""
        items, cursor = newest_first(self.ddb, self.table, f"P#{program_id}#REPORTS", after, limit)
        return [_report(i) for i in items], cursor

    def checkpoint(self, program_id: str, report_id: str, step: int, fields: dict[str, Any]) -> bool:
        """Move the report from ``step`` to ``step + 1`` with ``fields`` (progress, state key, status…);
        False when it is no longer at ``step`` or no longer queued/running (another worker got there)."""
        names = {"#s": "status", "#step": "step"}
        values: dict[str, Any] = {":step": {"N": str(step)}, ":next": {"N": str(step + 1)},
                                  ":queued": {"S": ReportStatus.QUEUED}, ":running": {"S": ReportStatus.RUNNING}}
        sets = ["#step = :next"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = to_item({"v": value})["v"]
            sets.append(f"#f{i} = :f{i}")
        return self.store.update_if(
            Key=_key(program_id, report_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="#step = :step AND #s IN (:queued, :running)",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values,
        ) is not None

    def start(self, program_id: str, report_id: str, now: str) -> bool:
        """A queued report is running (a worker took its first step); False when it already was."""
        return self.store.update_if(
            Key=_key(program_id, report_id),
            UpdateExpression="SET #s = :running, started_at = :now, updated_at = :now",
            ConditionExpression="#s = :queued",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":running": {"S": ReportStatus.RUNNING}, ":queued": {"S": ReportStatus.QUEUED},
                                       ":now": {"S": now}},
        ) is not None

    def fail(self, program_id: str, report_id: str, reason: str, now: str) -> bool:
        """The report failed with ``reason``; False when it had already completed or failed."""
        return self.store.update_if(
            Key=_key(program_id, report_id),
            UpdateExpression="SET #s = :failed, failure_reason = :reason, updated_at = :now, "
                             "completed_at = :now",
            ConditionExpression="#s IN (:queued, :running)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":failed": {"S": ReportStatus.FAILED},
                                       ":reason": {"S": reason[:500] or "unknown"},
                                       ":now": {"S": now}, ":queued": {"S": ReportStatus.QUEUED},
                                       ":running": {"S": ReportStatus.RUNNING}},
        ) is not None


class ReportFiles(clients.BucketFiles):
    """The S3 side of report jobs: state between continuations and the results (``put_json``/``get_json``)."""

    @staticmethod
    def folder(program_id: str, report_id: str) -> str:
        return f"{PREFIX}{program_id}/{report_id}/"

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def put_result(self, key: str, body: bytes, content_type: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get_result(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def download_url(self, key: str, seconds: int) -> str:
        """A pre-signed GET URL of a result, valid ``seconds``, that downloads it under its own name."""
        name = key.rsplit("/", 1)[-1]
        return self.s3.generate_presigned_url(
            "get_object", ExpiresIn=seconds,
            Params={"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": f'attachment; filename="{name}"'},
        )


class ReportQueue:
    """The report job queue: one message per continuation of a report."""

    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self.queue_url = queue_url
        self._sqs = sqs

    def send(self, program_id: str, report_id: str, step: int) -> None:
        (self._sqs or clients.get("sqs")).send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps({"program_id": program_id, "report_id": report_id, "step": step}),
        )
