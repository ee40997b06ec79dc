"""Queue pollers: deliver SQS batches to their consumer functions as Lambda's event source mapping does.

Messages the function reports in ``batchItemFailures`` (or the whole batch, when the invocation
fails) are not deleted: they reappear after the visibility timeout, and the queue's redrive policy
moves them to the DLQ after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from infra.twin.template import REGION, matches


class Background:
    """A daemon thread running ``_run`` until ``stop()`` (pollers and schedules share this lifecycle)."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        raise NotImplementedError


class QueuePoller(Background):
    def __init__(self, sqs, queue_url: str, queue_arn: str, pool, batch_size: int, partial: bool) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.pool = pool
        self.batch_size = min(batch_size, 10)
        self.partial = partial
        super().__init__(f"poller-{queue_arn.rsplit(':', 1)[-1]}")
        self.delivered = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait=1)
            except Exception:  # the endpoint went away while stopping, or a transient error
                if self._stop.is_set():
                    return
                time.sleep(0.5)

    def poll_once(self, wait: int = 0) -> int:
        out = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = out.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        outcome = self.pool.invoke(event)
        failed: set[str] = set()
        if not outcome.ok:
            failed = {m["MessageId"] for m in messages}
        elif self.partial and isinstance(outcome.result, dict):
            failed = {f.get("itemIdentifier") for f in outcome.result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        self.delivered += len(messages)
        return len(messages)

    def _record(self, m: dict[str, Any]) -> dict[str, Any]:
        attributes = {}
        for name, attr in (m.get("MessageAttributes") or {}).items():
            attributes[name] = {
                "stringValue": attr.get("StringValue"),
                "binaryValue": attr.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": attr.get("DataType"),
            }
        return {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": m.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }


class MotoStreamReader:
    """Reads a table's stream records straight from the moto backend running in this process.

    Lambda filters stream records inside the service; reading them through the DynamoDB Streams API
    instead made the twin serialize every record of every write, and botocore parse it, only to drop
    most of them (profiled during a 10,000-line batch: 70% of the twin process's time).
    """

    def __init__(self, table_name: str, account: str, region: str) -> None:
        from moto.dynamodb.models import dynamodb_backends

        self.shard = dynamodb_backends[account][region].tables[table_name].stream_shard
        self.position = 0

    def read(self, limit: int) -> list[dict[str, Any]]:
        records = self.shard.items[self.position : self.position + limit]
        self.position += len(records)
        return [r.record for r in records]


class StreamPoller(Background):
    """Delivers a table stream's records to a function, in order, as Lambda's stream mapping does.

    Only records matching the mapping's filter patterns are delivered. When the function fails (or
    reports a failed record), delivery resumes from that record after a short pause. With a
    ``reader`` (:class:`MotoStreamReader`) records come from the in-process backend, else from the
    DynamoDB Streams API.
    """

    def __init__(self, streams, stream_arn: str, pool, batch_size: int, partial: bool, patterns: list,
                 reader: MotoStreamReader | None = None) -> None:
        self.reader = reader
        self.streams = streams
        self.stream_arn = stream_arn
        self.pool = pool
        self.batch_size = batch_size
        self.partial = partial
        self.patterns = patterns
        self.pending: list[dict[str, Any]] = []
        self.delivered = 0
        self._iterators: dict[str, str] = {}
        super().__init__(f"stream-{stream_arn.rsplit('/', 3)[-3]}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once():
                    self._stop.wait(0.2)
            except Exception:
                if self._stop.is_set():
                    return
                self._stop.wait(0.5)

    def _read(self) -> None:
        if self.reader is not None:
            for record in self.reader.read(1000):
                if not self.patterns or any(matches(p, record) for p in self.patterns):
                    self.pending.append(record)
            return
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            sid = shard["ShardId"]
            if sid not in self._iterators:
                self._iterators[sid] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            out = self.streams.get_records(ShardIterator=self._iterators[sid], Limit=1000)
            self._iterators[sid] = out.get("NextShardIterator") or self._iterators[sid]
            for record in out.get("Records", []):
                if not self.patterns or any(matches(p, record) for p in self.patterns):
                    self.pending.append(record)

    def poll_once(self) -> int:
        if not self.pending:
            self._read()
        if not self.pending:
            return 0
        batch = self.pending[: self.batch_size]
        outcome = self.pool.invoke({"Records": [self._record(r) for r in batch]})
        done = len(batch)
        if not outcome.ok:
            done = 0
        elif self.partial and isinstance(outcome.result, dict):
            failed = [f.get("itemIdentifier") for f in outcome.result.get("batchItemFailures") or []]
            if failed:
                numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
                done = numbers.index(failed[0]) if failed[0] in numbers else 0
        del self.pending[:done]
        self.delivered += done
        if done < len(batch):
            self._stop.wait(1)  # retry from the failed record
        return len(batch)

    def _record(self, r: dict[str, Any]) -> dict[str, Any]:
        dynamodb = dict(r["dynamodb"])
        for name in ("ApproximateCreationDateTime",):
            if name in dynamodb and not isinstance(dynamodb[name], (int, float)):
                dynamodb[name] = dynamodb[name].timestamp()
        return {"eventID": r.get("eventID"), "eventName": r["eventName"], "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": REGION, "dynamodb": dynamodb,
                "eventSourceARN": self.stream_arn}


class Scheduler(Background):
    """Invokes a function on a fixed rate with an EventBridge "Scheduled Event", as a schedule rule does."""

    def __init__(self, rule: str, pool, seconds: float) -> None:
        self.rule = rule
        self.pool = pool
        self.seconds = seconds
        self.runs = 0
        super().__init__(f"schedule-{rule}")

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.run_once()
            except Exception:  # a failed run is retried at the next tick, as EventBridge would
                if self._stop.is_set():
                    return

    def run_once(self) -> Any:
        event = {
            "version": "0", "id": f"twin-{self.rule}-{self.runs}", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "region": REGION,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "resources": [f"arn:aws:events:{REGION}:123456789012:rule/{self.rule}"], "detail": {},
        }
        self.runs += 1
        return self.pool.invoke(event)
