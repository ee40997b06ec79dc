"""Log positions of events (``treue.store.events`` explains the guarantee they give readers).

An event's place in the log (its ``gsi1sk``, ``<position>#<event id>``) is not its business time:
it is the clock reading taken when the write that commits the event is sent, by the code that sends
it (``Store.transact``, ``Store.post``, ``Store.enroll``), after everything else in the transaction
was prepared. When the write took so long that a reader may have paged past that position before the
event became visible, the event is moved to a fresh position after the commit.

No imports from the rest of the store: ``treue.store.table`` calls this module around each write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from treue.core import times

SETTLE_SECONDS = 2  # readers list positions older than this (``EventLog.page``)
LATE_SECONDS = SETTLE_SECONDS / 2  # a write slower than this moves its events once it has committed
MAX_MOVES = 3


def clock() -> str:
    """The position of a write sent now: UTC with milliseconds, as every time in the table (events of
    one millisecond sort by their id)."""
    return times.now()


def _event_puts(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i["Put"]["Item"] for i in items if "Put" in i and i["Put"]["Item"].get("kind") == {"S": "event"}]


def stamp(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every event put among the transaction ``items`` the position of now; the event items."""
    events = _event_puts(items)
    if events:
        position = clock()
        for item in events:
            item["gsi1sk"] = {"S": f"{position}#{item['id']['S']}"}
    return events


def write(send: Callable[[], Any], items: list[dict[str, Any]], ddb: Any, table: str) -> Any:
    """Send the write of ``items`` (``send()``) with its events positioned now; when it took longer
    than ``LATE_SECONDS``, move them to a fresh position once it has committed (see :func:`move_late`)."""
    events = stamp(items)
    started = time.monotonic()
    out = send()
    if events and time.monotonic() - started > LATE_SECONDS:
        move_late(ddb, table, events)
    return out


def move_late(ddb: Any, table: str, events: list[dict[str, Any]]) -> None:
    """Put each committed event again at a fresh position (same content), until one put of it is
    quick. A reader who already passed the old position meets the event at the new one (a reader who
    had listed it meets it twice, with the same id: delivery is at least once in this rare case)."""
    for item in events:
        for _ in range(MAX_MOVES):
            item["gsi1sk"] = {"S": f"{clock()}#{item['id']['S']}"}
            started = time.monotonic()
            ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_exists(pk)")
            if time.monotonic() - started <= LATE_SECONDS:
                break
