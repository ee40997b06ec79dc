"""The watch list: one marker per order, reward or batch that is not final yet, for the sweeper.

    pk                          sk      gsi1pk          gsi1sk
    P#<pid>#ORDER#<oid>         WATCH   WATCH#<shard>   <pid>#<since>#order#<oid>     order or reward
    P#<pid>#BATCH#<bid>         WATCH   WATCH#<shard>   <pid>#<since>#batch#<bid>     queued or running

A marker is written in the transaction that creates the record (or queues a batch's run) and deleted
in the transaction that makes it final (an order COMPLETED or FAILED, a batch run ended), so the index
holds open work only: the sweeper (``treue.logic.sweeper``) finds what has been open longer than a
grace period with one Query per program and shard, never a scan. The shard is the program's (a few
partitions keep the writes of every order off one index key); within a shard markers sort by
program, then by time, so each program's oldest come first and a program with many open records
cannot hide the others'. Batch line rewards have no marker: their batch's run owns them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key
from treue.store.schema import GSI

WATCH_SHARDS = 4
KINDS = ("order", "batch")
_END = "\uffff"  # sorts after every character of a timestamp or id


def watch_shard(program_id: str) -> int:
    return zlib.crc32(program_id.encode()) % WATCH_SHARDS


def _pk(kind: str, program_id: str, record_id: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"cannot watch a {kind}")
    return f"P#{program_id}#{kind.upper()}#{record_id}"


def _key(kind: str, program_id: str, record_id: str) -> dict[str, Any]:
    return item_key(_pk(kind, program_id, record_id), "WATCH")


@dataclass(frozen=True)
class Watched:
    """An open record as the watch list has it: what it is, whose, and since when it is open."""

    kind: str  # "order" (orders and rewards) or "batch"
    program_id: str
    record_id: str
    since: str


class Watchlist(OnTable):

    def watch_item(self, kind: str, program_id: str, record_id: str, since: str) -> dict[str, Any]:
        """Transaction item: put the marker (again: a retried batch is watched from its retry on)."""
        return {"Put": {"TableName": self.table, "Item": {
            **_key(kind, program_id, record_id),
            "gsi1pk": {"S": f"WATCH#{watch_shard(program_id)}"},
            "gsi1sk": {"S": f"{program_id}#{since}#{kind}#{record_id}"},
            "watched": {"S": kind}, "program_id": {"S": program_id}, "record_id": {"S": record_id},
            "since": {"S": since},
        }}}

    def unwatch_item(self, kind: str, program_id: str, record_id: str) -> dict[str, Any]:
        """Transaction item: delete the marker (nothing happens when there is none)."""
        return {"Delete": {"TableName": self.table, "Key": _key(kind, program_id, record_id)}}

    def unwatch(self, kind: str, program_id: str, record_id: str) -> None:
        """Delete the marker of a record found final (one made final before markers were deleted with it)."""
        self.ddb.delete_item(TableName=self.table, Key=_key(kind, program_id, record_id))

    def open_since(self, kind: str, program_id: str, record_id: str) -> str | None:
        """When the record's marker says it opened; None when it is not watched."""
        out = self.ddb.get_item(TableName=self.table, Key=_key(kind, program_id, record_id), ConsistentRead=True)
        return out["Item"]["since"]["S"] if "Item" in out else None

    def open_before(self, cutoff: str, per_program: int) -> dict[str, list[Watched]]:
        """Per program, its oldest (at most ``per_program``) records open since before ``cutoff``."""
        found: dict[str, list[Watched]] = {}
        for shard in range(WATCH_SHARDS):
            for program_id in self._programs(shard):
                old = list(self._open(shard, program_id, cutoff, per_program))
                if old:
                    found[program_id] = old
        return found

    def _programs(self, shard: int) -> Iterator[str]:
        """The programs with a marker in ``shard``: one Query each, jumping past the program's markers."""
        after = ""
        while True:
            params: dict[str, Any] = {
                "TableName": self.table, "IndexName": GSI, "Limit": 1,
                "KeyConditionExpression": "gsi1pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"WATCH#{shard}"}},
            }
            if after:
                params["KeyConditionExpression"] += " AND gsi1sk > :after"
                params["ExpressionAttributeValues"][":after"] = {"S": after}
            items = self.ddb.query(**params).get("Items", [])
            if not items:
                return
            program_id = items[0]["program_id"]["S"]
            yield program_id
            after = f"{program_id}#{_END}"

    def _open(self, shard: int, program_id: str, cutoff: str, limit: int) -> Iterator[Watched]:
        out = self.ddb.query(
            TableName=self.table, IndexName=GSI, Limit=limit,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to",
            ExpressionAttributeValues={":pk": {"S": f"WATCH#{shard}"}, ":from": {"S": f"{program_id}#"},
                                       ":to": {"S": f"{program_id}#{cutoff}#{_END}"}},
        )
        for raw in out.get("Items", []):
            item = from_item(raw)
            yield Watched(item["watched"], item["program_id"], item["record_id"], item["since"])
