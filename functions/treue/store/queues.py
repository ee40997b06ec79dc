"""SQS: dead-lettering a message with the reason it cannot be processed."""

from __future__ import annotations

from treue.store import clients


def dead_letter(queue_url: str, body: str, reason_type: str, reason: str, source_message_id: str) -> None:
    """Park ``body`` unchanged in the DLQ with why it was rejected (as message attributes)."""
    clients.get("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={
            "treue-error-type": {"DataType": "String", "StringValue": reason_type},
            "treue-error-reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"},
            "treue-source-message-id": {"DataType": "String", "StringValue": source_message_id},
        },
    )


def send_all(queue_url: str, bodies: list[str]) -> None:
    """Send every body (10 per call); raises when SQS refuses one, so the caller's retry sends again."""
    sqs = clients.get("sqs")
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        out = sqs.send_message_batch(QueueUrl=queue_url,
                                     Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)])
        if out.get("Failed"):
            raise RuntimeError(f"SQS refused {len(out['Failed'])} message(s): {out['Failed'][0].get('Message')}")
