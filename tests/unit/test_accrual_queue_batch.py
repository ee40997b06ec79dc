"""The accrual queue consumer's partial batch response: a message whose handling raised is reported as a
batch item failure (SQS makes it visible again), and when every message raised the invocation fails."""

from __future__ import annotations

import pytest

from tests.support import LambdaContext, load_event
from treue.handlers import accrual_queue


def _failing(*ids: str):
    seen = []

    def handle(record):
        seen.append((record.message_id, record.body, record.raw_event["attributes"]["SenderId"]))
        if record.message_id in ids:
            raise RuntimeError("transient")

    return handle, seen


def test_a_message_that_raised_is_a_batch_item_failure_the_others_are_done(monkeypatch):
    event = load_event("accrual_queue/batch.json")
    ids = [r["messageId"] for r in event["Records"]]
    handle, seen = _failing(ids[1])
    monkeypatch.setattr(accrual_queue, "record_handler", handle)
    assert accrual_queue.handler(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": ids[1]}]}
    assert [s[0] for s in seen] == ids
    assert seen[0][1] == event["Records"][0]["body"] and seen[0][2].startswith("AROA")


def test_every_message_raised_fails_the_invocation(monkeypatch):
    event = load_event("accrual_queue/batch.json")
    handle, _ = _failing(*(r["messageId"] for r in event["Records"]))
    monkeypatch.setattr(accrual_queue, "record_handler", handle)
    with pytest.raises(Exception, match="All records failed processing"):
        accrual_queue.handler(event, LambdaContext())


def test_an_empty_batch_has_no_failures():
    assert accrual_queue.handler({"Records": []}, LambdaContext()) == {"batchItemFailures": []}
