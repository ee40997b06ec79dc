"""The program's event log: what webhooks deliver and what ``GET /v1/events`` replays.

An event is written in the same transaction as the change it reports (an order completing, points
earned…), so there is never a change without its event nor an event without its change.

    pk                         sk       what
    P#<pid>#EVENT#<event id>   EVENT    the event; gsi1 P#<pid>#EVENTS / <position>#<event id>

Events expire after ``RETENTION_DAYS`` (DynamoDB TTL on ``expires_at``, epoch seconds). The table's
stream carries every new event to the webhook fan-out (``kind = "event"`` is the stream filter).

The log is ordered by write, not by business time. An event keeps its business time as data
(``created_at``, and the ``at`` of what it reports), which may lie long before its write commits: a
batch's ``budget.low`` is stamped when the request began, a release writes after provider calls. Its
log position is the clock reading taken when the transaction that commits it is sent
(``treue.store.positions``), after every other part of the transaction (provider calls, reads,
retries of the caller) is done. Readers list only positions older than ``SETTLE_SECONDS``.

Guarantee, with any number of concurrent writers: a reader paging with ``after`` never steps past an
event that becomes visible later, provided each write reaches the index within ``SETTLE_SECONDS``
of being sent. A write slower than half of that (an SDK retry after a timeout) moves its events to a
fresh position once it has committed, so a reader who passed the first position meets them at the
second; such an event may be listed twice (same id): readers deduplicate by id. What is not covered:
a writer that dies between a slow commit and that move, and clocks of writer and reader apart by
more than the window's margin (Lambda hosts keep them within milliseconds).
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

from treue.core import times
from treue.core.ids import new_id
from treue.core.records import Event
from treue.core.statuses import EventType
from treue.errors import MalformedRequest
from treue.store.items import Table, from_item, item_key, to_item
from treue.store.positions import SETTLE_SECONDS as SETTLE_SECONDS  # read by the webhooks function too
from treue.store.positions import clock
from treue.store.schema import GSI, INDEX_KEYS, TABLE_KEYS, event_pk

EVENT_TYPES = tuple(EventType)
RETENTION_DAYS = 90
_KEYS = (*TABLE_KEYS, *INDEX_KEYS, "kind", "expires_at", "program_id")


def inserted_event(record: dict[str, Any], type_: str | None = None) -> Event | None:
    """The event a table stream record inserts (of ``type_`` when given), None for any other record: what the
    stream's consumers (the webhook fan-out, the Progress function) read; their filters pass only such records,
    and this checks again."""
    if record.get("eventName") != "INSERT":
        return None
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    if image.get("kind", {}).get("S") != "event" or (type_ is not None and image.get("type", {}).get("S") != type_):
        return None
    return Event.from_item(from_item(image))


def new_event(program_id: str, type_: str, data: dict[str, Any], now: str, event_id: str | None = None
              ) -> dict[str, Any]:
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_}")
    eid = event_id or new_id("evt")
    expires = int((times.parse(now) + timedelta(days=RETENTION_DAYS)).timestamp())
    return {
        "pk": event_pk(program_id, eid), "sk": "EVENT", "kind": "event", "id": eid, "type": type_,
        "program_id": program_id, "created_at": now, "data": data, "expires_at": expires,
        # the log position: set again when the write is sent (``treue.store.positions.stamp``)
        "gsi1pk": f"P#{program_id}#EVENTS", "gsi1sk": f"{clock()}#{eid}",
    }


def event_put(table: str, program_id: str, type_: str, data: dict[str, Any], now: str,
              event_id: str | None = None) -> dict[str, Any]:
    """A Put (for a transaction) of a new event; a repeated ``event_id`` fails the transaction."""
    return {"Put": {"TableName": table, "Item": to_item(new_event(program_id, type_, data, now, event_id)),
                    "ConditionExpression": "attribute_not_exists(pk)"}}



def encode_cursor(gsi1sk: str) -> str:
    return base64.urlsafe_b64encode(gsi1sk.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        times.parse(value.split("#", 1)[0])
        if "#evt_" not in value:
            raise ValueError("not an event cursor")
        return value
    except (ValueError, UnicodeDecodeError, binascii.Error) as err:
        raise MalformedRequest("the cursor is not one this API returned", parameter="after") from err


class EventLog:
    def __init__(self, store: Table) -> None:
        self.store = store

    def get(self, program_id: str, event_id: str) -> Event | None:
        out = self.store.ddb.get_item(TableName=self.store.table,
                                      Key=item_key(event_pk(program_id, event_id), "EVENT"))
        return Event.from_item(from_item(out["Item"])) if "Item" in out else None

    def page(self, program_id: str, after: str | None, types: set[str] | None, limit: int, now: str
             ) -> tuple[list[Event], str]:
        """Up to ``limit`` settled events after the cursor, in log order, and the cursor to ask with next.

        The next cursor is always returned (the log has no end): with no new events it is ``after``.
        """
        start = decode_cursor(after) if after else ""
        until = times.iso(times.parse(now) - timedelta(seconds=SETTLE_SECONDS))
        # events at exactly ``until`` are still settling: "<until>" sorts before "<until>#…"
        values = {":pk": {"S": f"P#{program_id}#EVENTS"}, ":until": {"S": until}}
        condition = "gsi1pk = :pk AND gsi1sk < :until"
        if start:
            condition = "gsi1pk = :pk AND gsi1sk BETWEEN :after AND :until"
            values[":after"] = {"S": start + "\x00"}  # strictly after the cursor's event
        params: dict[str, Any] = {"TableName": self.store.table, "IndexName": GSI,
                                  "KeyConditionExpression": condition, "ExpressionAttributeValues": values}
        found: list[Event] = []
        last = start
        while len(found) < limit:
            params["Limit"] = max(limit - len(found), 1) if not types else 200
            out = self.store.ddb.query(**params)
            for raw in out.get("Items", []):
                item = from_item(raw)
                last = item["gsi1sk"]
                if not types or item["type"] in types:
                    found.append(Event.from_item(item))
                    if len(found) == limit:
                        break
            if len(found) == limit or not out.get("LastEvaluatedKey"):
                break
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return found, (encode_cursor(last) if last else "")
