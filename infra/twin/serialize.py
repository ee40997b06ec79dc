"""Serialize calls into moto's DynamoDB backend.

Real DynamoDB evaluates conditions atomically; moto's in-memory backend is not thread-safe under
concurrent TransactWriteItems (an internal deepcopy race answers HTTP 500 now and then). The twin
and the concurrency tests run moto with this lock so that they test Treue's code, not moto's.
"""

from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
_patched = False


def serialize_moto_dynamodb() -> None:
    global _patched
    if _patched:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self):
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action
    _patched = True
