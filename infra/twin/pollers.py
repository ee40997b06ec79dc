"""Queue pollers: deliver SQS batches to their consumer functions as Lambda's event source mapping does.

Messages the function reports in ``batchItemFailures`` (or the whole batch, when the invocation
fails) are not deleted: they reappear after the visibility timeout, and the queue's redrive policy
moves them to the DLQ after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from infra.twin.template import REGION


class QueuePoller:
    def __init__(self, sqs, queue_url: str, queue_arn: str, pool, batch_size: int, partial: bool) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.pool = pool
        self.batch_size = min(batch_size, 10)
        self.partial = partial
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"poller-{queue_arn.rsplit(':', 1)[-1]}")
        self.delivered = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

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


class Scheduler:
    """Invokes a function on a fixed rate with an EventBridge "Scheduled Event", as a schedule rule does."""

    def __init__(self, rule: str, pool, seconds: float) -> None:
        self.rule = rule
        self.pool = pool
        self.seconds = seconds
        self.runs = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"schedule-{rule}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

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
