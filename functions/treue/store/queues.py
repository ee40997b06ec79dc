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
