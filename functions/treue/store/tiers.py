"""A member's purchase counters and tier state (``treue.logic.tiers``), in the member's partition.

    pk                        sk                 what
    P#<pid>#MEMBER#<mid>      BALANCE            also ``purchases`` (accrued) and ``lifetime_spend`` (minor units)
    P#<pid>#MEMBER#<mid>      MONTH#<YYYY-MM>    the month's (UTC, the purchase's occurred_at) ``qualifying_points``,
                                                 ``spend``, ``purchases`` and ``categories`` (string set)
    P#<pid>#MEMBER#<mid>      TIER               ``{tier, since, until, version}``; with ``until``, listed on gsi1 at
                                                 ``TIERS#DUE#<shard>`` / ``<until>#<pid>#<mid>`` for the review;
                                                 ``membership``: a paid membership's grant (``treue.store.memberships``)

Every accrued purchase adds to ``BALANCE`` and its month in the posting's transaction (``treue.store.ledger``
``post`` takes the items built here), so the counters count each purchase exactly once. ``TIER`` is written
only when the level changes (an upgrade in the accrual transaction, a review's downgrade or renewal), each write
conditioned on the ``version`` read. The due index is sparse: a member at the lowest level has no ``until`` and
is not listed, so a review that finds nothing due reads one empty page per shard.

``TierCounters`` is part of ``treue.store.dynamodb.Store``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from treue.core import audit
from treue.core.statuses import EventType
from treue.store.events import event_put
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import GSI_PK, GSI_SK, member_pk, month_sk
from treue.store.table import audited, due_page

TIER_SK = "TIER"
MONTH_PREFIX = month_sk("")
COUNTERS = ("qualifying_points", "spend", "purchases")


def due_keys(program_id: str, member_id: str, until: str) -> dict[str, str]:
    """Index attributes listing a tier state for review at ``until``."""
    from treue.core.tiers import DUE_SHARDS  # written with a tier change only: accrual without tiers never loads it

    shard = zlib.crc32(f"{program_id}#{member_id}".encode()) % DUE_SHARDS
    return {GSI_PK: f"TIERS#DUE#{shard}", GSI_SK: f"{until}#{program_id}#{member_id}"}


class TierCounters:
    """The reads and transaction items of accrual (a mixin of ``Store``: ``ddb`` and ``table`` are its own)."""

    ddb: Any
    table: str

    def tier_state(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        """The member's ``TIER`` item (None: never changed, the lowest level), read consistently."""
        out = self.ddb.get_item(TableName=self.table, Key=item_key(member_pk(program_id, member_id), TIER_SK),
                                ConsistentRead=True)
        return strip_keys(from_item(out["Item"]), index=True) if "Item" in out else None

    def month_counters(self, program_id: str, member_id: str, first: str, last: str) -> dict[str, dict[str, Any]]:
        """The member's MONTH# counters from month ``first`` to ``last`` (``YYYY-MM``, both included), by month;
        one consistent Query (a few hundred bytes a month: a year is one read unit)."""
        found: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {":pk": {"S": member_pk(program_id, member_id)},
                                          ":first": {"S": month_sk(first)}, ":last": {"S": month_sk(last)}},
        }
        while True:
            out = self.ddb.query(**params)
            for raw in out.get("Items", []):
                raw = dict(raw)
                categories = raw.pop("categories", None)  # a string set, which the item codec does not read
                data = from_item(raw)
                data["categories"] = sorted(categories["SS"]) if categories else []
                found[data["sk"][len(MONTH_PREFIX):]] = strip_keys(data)
            if "LastEvaluatedKey" not in out:
                return found
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def month_item(self, program_id: str, member_id: str, month: str, adds: dict[str, int],
                   categories: Sequence[str], room: tuple[str, int] | None = None) -> dict[str, Any]:
        """The transaction item adding a purchase to its month: ``adds`` to the counters, ``categories`` to the
        set. ``room`` ``(counter, most)``: on condition that the counter is at most ``most`` before it (a
        purchase decided "no upgrade" on the value it read: a concurrent one that changed the outcome fails it)."""
        values: dict[str, Any] = {f":{name}": {"N": str(add)} for name, add in adds.items()}
        values[":month"] = {"S": month}
        expression = "SET #month = :month ADD " + ", ".join(f"{name} :{name}" for name in adds)
        if categories:
            expression += ", categories :categories"
            values[":categories"] = {"SS": sorted(set(categories))}
        update: dict[str, Any] = {
            "TableName": self.table, "Key": item_key(member_pk(program_id, member_id), month_sk(month)),
            "UpdateExpression": expression, "ExpressionAttributeNames": {"#month": "month"},
            "ExpressionAttributeValues": values,
        }
        if room is not None:
            counter, most = room
            update["ConditionExpression"] = f"attribute_not_exists({counter}) OR {counter} <= :room"
            values[":room"] = {"N": str(most)}
        return {"Update": update}

    def tier_put(self, program_id: str, member_id: str, read_version: int, state: dict[str, Any]
                 ) -> dict[str, Any]:
        """The ``TIER`` item's new level (``state``: tier, since, until; version ``read_version + 1``), conditioned on
        the version read (0: no item yet, or one a paid membership's grant created); listed for the review while it
        has an ``until``. An update, not a put: the item's ``membership`` grant (``treue.store.memberships``) stays."""
        fields = {"member_id": member_id, "program_id": program_id, **state, "version": read_version + 1}
        if state.get("until"):
            fields.update(due_keys(program_id, member_id, state["until"]))
        encoded = to_item(fields)
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":f{i}": encoded.get(name, {"NULL": True}) for i, name in enumerate(fields)}
        expression = "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        if not state.get("until"):
            names.update({"#gpk": GSI_PK, "#gsk": GSI_SK})
            expression += " REMOVE #gpk, #gsk"
        values[":read"] = {"N": str(read_version)}
        condition = "version = :read" if read_version else "attribute_not_exists(pk) OR version = :read"
        return {"Update": {"TableName": self.table, "Key": item_key(member_pk(program_id, member_id), TIER_SK),
                           "UpdateExpression": expression, "ConditionExpression": condition,
                           "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}

    def tier_change_items(self, program_id: str, member_id: str, read_version: int, state: dict[str, Any],
                          event_type: EventType, event: dict[str, Any], now: str) -> list[dict[str, Any]]:
        """A change of level: the new ``TIER`` item (``tier_put``) with its audit record, and the event."""
        record = audit.new_record(program_id, str(event_type), "member", member_id, now,
                                  {k: event.get(k) for k in ("from", "to", "until", "value")})
        return [audited(self.tier_put(program_id, member_id, read_version, state), self.table, record),
                event_put(self.table, program_id, event_type, event, now)]

    def tiers_due(self, shard: int, now: str, limit: int = 100, after: dict[str, Any] | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the tier states of ``shard`` due at ``now`` (``until`` ≤ now), oldest first, and the key
        to continue after (None: the last page). Read from the index: a state may be stale, the write checks."""
        return due_page(self.ddb, self.table, f"TIERS#DUE#{shard}", now, limit, after)

