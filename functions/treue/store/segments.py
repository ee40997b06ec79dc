"""Member segments: custom definitions and their versions, the members' facts, the program's member counts.

    pk                    sk                      what
    P#<pid>#SEGMENTS      S#<sid>#C               a custom segment as it stands: its definition, ``id``, ``version``,
                                                  ``status`` (active, retired), who and when
    P#<pid>#SEGMENTS      S#<sid>#V#<version>     one version (immutable)
    P#<pid>#SEGMENTS      SNAPSHOT                member counts per segment and per tier with ``computed_at``, and the
                                                  walk in progress (``walk_*``); listed on gsi1 SEGMENTS#SNAPSHOTS, so
                                                  the scheduled job finds the programs to count

A member's facts are their ``BALANCE`` item (``enrolled_at``, ``updated_at``, ``available``, ``purchases``,
``lifetime_spend``), the ``MONTH#<YYYY-MM>`` items and the ``TIER`` item, all in the member's partition and
written by accrual and the tier review (read here by their item shapes): :meth:`SegmentStore.facts` reads them
in two requests, a GetItem of the balance and one Query of the sort keys from ``MONTH#<oldest month>`` to
``TIER`` (the months and the tier, a few hundred bytes: half a read unit).

Each change of a definition is one transaction: the current item (conditioned on the version and status read),
the version item, the audit record (``segment.created``, ``segment.updated``, ``segment.retired``) vouching for
it by its hash, and ``definitions_changed_at`` on the snapshot item (so the next scheduled run counts again).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from treue.core import audit
from treue.core.statuses import SegmentStatus
from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import (
    GSI,
    GSI_PK,
    GSI_SK,
    SEGMENT_SNAPSHOT_SK,
    SEGMENT_SNAPSHOTS,
    balances_keys,
    member_pk,
    month_sk,
    segment_sk,
    segment_version_sk,
    segments_pk,
)
from treue.store.table import audit_put

VERSION_FIELDS = ("id", "version", "created_at", "created_by")
STATE_FIELDS = ("id", "version", "status", "created_at", "created_by", "updated_at", "updated_by", "retired_at",
                "retired_by")
WALK_FIELDS = ("walk_id", "walk_started_at", "walk_after", "walk_counts", "walk_position", "walk_definitions")


def version_of(current: dict[str, Any]) -> dict[str, Any]:
    """The version item's data of a segment as it stands."""
    data = {k: v for k, v in current.items() if k not in STATE_FIELDS}
    data.update(id=current["id"], version=current["version"],
                created_at=current.get("updated_at") or current["created_at"],
                created_by=current.get("updated_by") or current["created_by"])
    return data


class SegmentStore(OnTable):

    # ------------------------------------------------------------ definitions

    def create(self, program_id: str, current: dict[str, Any]) -> bool:
        """Store a new custom segment (version 1, active); False when the id is taken (nothing written)."""
        sid = current["id"]
        data = version_of(current)
        record = audit.new_record(program_id, "segment.created", "segment", sid, current["created_at"],
                                  {"version": 1, "name": current["name"]}, subject_hash=audit.content_hash(data))
        items = [self._put(program_id, segment_sk(sid), current, "attribute_not_exists(pk)"),
                 self._put(program_id, segment_version_sk(sid, 1), data, "attribute_not_exists(pk)"),
                 audit_put(self.table, record, (segments_pk(program_id), segment_version_sk(sid, 1))),
                 self._changed(program_id, current["created_at"])]
        return self.store.transact_first(items)

    def write_version(self, program_id: str, read_version: int, new: dict[str, Any]) -> bool:
        """Make ``new`` (version ``read_version + 1``) the segment as it stands; False when it is no longer
        active at ``read_version``."""
        sid, version = new["id"], new["version"]
        if version != read_version + 1:
            raise ValueError("a change writes the version after the one it read")
        data = version_of(new)
        record = audit.new_record(program_id, "segment.updated", "segment", sid, new["updated_at"],
                                  {"version": version, "name": new["name"]}, subject_hash=audit.content_hash(data))
        items = [self._conditioned(program_id, segment_sk(sid), new, read_version),
                 self._put(program_id, segment_version_sk(sid, version), data, "attribute_not_exists(pk)"),
                 audit_put(self.table, record, (segments_pk(program_id), segment_version_sk(sid, version))),
                 self._changed(program_id, new["updated_at"])]
        return self.store.transact_first(items)

    def retire(self, program_id: str, read: dict[str, Any], at: str, actor: str) -> bool:
        """Retire the segment ``read`` (kept with its versions); False when it changed since it was read."""
        sid = read["id"]
        retired = {**read, "status": SegmentStatus.RETIRED, "retired_at": at, "retired_by": actor}
        record = audit.new_record(program_id, "segment.retired", "segment", sid, at, {"version": read["version"]},
                                  subject_hash=audit.content_hash(retired))
        items = [self._conditioned(program_id, segment_sk(sid), retired, read["version"]),
                 audit_put(self.table, record, (segments_pk(program_id), segment_sk(sid))),
                 self._changed(program_id, at)]
        return self.store.transact_first(items)

    def _put(self, program_id: str, sk: str, data: dict[str, Any], condition: str | None = None
             ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table,
                               "Item": {**item_key(segments_pk(program_id), sk), **to_item(data)}}
        if condition:
            put["ConditionExpression"] = condition
        return {"Put": put}

    def _conditioned(self, program_id: str, sk: str, data: dict[str, Any], read_version: int) -> dict[str, Any]:
        put = self._put(program_id, sk, data)
        put["Put"].update(ConditionExpression="#v = :read AND #s = :active",
                          ExpressionAttributeNames={"#v": "version", "#s": "status"},
                          ExpressionAttributeValues={":read": {"N": str(read_version)},
                                                     ":active": {"S": SegmentStatus.ACTIVE}})
        return put

    def _changed(self, program_id: str, at: str) -> dict[str, Any]:
        """The snapshot item notes that the definitions changed (and is listed for the scheduled job)."""
        return {"Update": {
            "TableName": self.table, "Key": item_key(segments_pk(program_id), SEGMENT_SNAPSHOT_SK),
            "UpdateExpression": "SET definitions_changed_at = :at, #gpk = :gpk, #gsk = :gsk, program_id = :pid",
            "ExpressionAttributeNames": {"#gpk": GSI_PK, "#gsk": GSI_SK},
            "ExpressionAttributeValues": {":at": {"S": at}, ":gpk": {"S": SEGMENT_SNAPSHOTS},
                                          ":gsk": {"S": program_id}, ":pid": {"S": program_id}}}}

    def current(self, program_id: str, segment_id: str) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(segments_pk(program_id), segment_sk(segment_id)),
                                ConsistentRead=True)
        return strip_keys(from_item(out["Item"])) if "Item" in out else None

    def version(self, program_id: str, segment_id: str, version: int) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table,
                                Key=item_key(segments_pk(program_id), segment_version_sk(segment_id, version)))
        return strip_keys(from_item(out["Item"])) if "Item" in out else None

    def history(self, program_id: str, segment_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The segment as it stands and its versions, oldest first (one query)."""
        items = self.query_prefix(segments_pk(program_id), f"S#{segment_id}#")
        current = next((i for i in items if i["sk"] == segment_sk(segment_id)), None)
        return (strip_keys(current) if current else None), [strip_keys(i) for i in items if i is not current]

    def definitions(self, program_id: str) -> list[dict[str, Any]]:
        """Every custom segment as it stands (active and retired), in id order: one query of the partition's
        ``S#`` items (their versions come along and are left out)."""
        return [strip_keys(i) for i in self.query_prefix(segments_pk(program_id), "S#") if i["sk"].endswith("#C")]


    # ------------------------------------------------------------ a member's facts

    def balance(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(member_pk(program_id, member_id), "BALANCE"))
        return strip_keys(from_item(out["Item"]), index=True) if "Item" in out else None

    def months_and_tier(self, program_id: str, member_id: str, oldest_month: str
                        ) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
        """The member's MONTH items from ``oldest_month`` on (by ``YYYY-MM``) and their TIER item: one Query of
        the sort keys ``MONTH#<oldest_month>`` to ``TIER`` (other items between them are left out)."""
        params: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":pk": {"S": member_pk(program_id, member_id)},
                                          ":a": {"S": month_sk(oldest_month)}, ":b": {"S": "TIER"}}}
        months: dict[str, dict[str, Any]] = {}
        tier: dict[str, Any] | None = None
        prefix = month_sk("")
        while True:
            out = self.ddb.query(**params)
            for raw in out.get("Items", []):
                raw = dict(raw)
                categories = raw.pop("categories", None)  # a string set, which the item codec does not read
                item = from_item(raw)
                item["categories"] = sorted(categories.get("SS", [])) if categories else []
                if item["sk"] == "TIER":
                    tier = strip_keys(item, index=True)
                elif item["sk"].startswith(prefix):
                    months[item["sk"][len(prefix):]] = strip_keys(item, index=True)
            if "LastEvaluatedKey" not in out:
                return months, tier
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def facts(self, program_id: str, member_id: str, oldest_month: str
              ) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]], dict[str, Any] | None]:
        """(BALANCE, MONTH items by month, TIER) of a member: a GetItem and a Query. BALANCE None: no member."""
        balance = self.balance(program_id, member_id)
        if balance is None:
            return None, {}, None
        months, tier = self.months_and_tier(program_id, member_id, oldest_month)
        return balance, months, tier

    # ------------------------------------------------------------ the snapshot

    def snapshot(self, program_id: str) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(segments_pk(program_id), SEGMENT_SNAPSHOT_SK),
                                ConsistentRead=True)
        return strip_keys(from_item(out["Item"]), index=True) if "Item" in out else None

    def request(self, program_id: str, at: str) -> None:
        """List the program for the scheduled job (its snapshot item, ``requested_at`` the first time)."""
        self.ddb.update_item(
            TableName=self.table, Key=item_key(segments_pk(program_id), SEGMENT_SNAPSHOT_SK),
            UpdateExpression="SET requested_at = if_not_exists(requested_at, :at), #gpk = :gpk, #gsk = :gsk, "
                             "program_id = :pid",
            ExpressionAttributeNames={"#gpk": GSI_PK, "#gsk": GSI_SK},
            ExpressionAttributeValues={":at": {"S": at}, ":gpk": {"S": SEGMENT_SNAPSHOTS}, ":gsk": {"S": program_id},
                                       ":pid": {"S": program_id}})

    def snapshots(self) -> Iterator[dict[str, Any]]:
        """Every program's snapshot item (the programs the job counts), in program id order."""
        params: dict[str, Any] = {"TableName": self.table, "IndexName": GSI,
                                  "KeyConditionExpression": f"{GSI_PK} = :pk",
                                  "ExpressionAttributeValues": {":pk": {"S": SEGMENT_SNAPSHOTS}}}
        while True:
            out = self.ddb.query(**params)
            for raw in out.get("Items", []):
                yield strip_keys(from_item(raw), index=True)
            if "LastEvaluatedKey" not in out:
                return
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def latest_event(self, program_id: str) -> str | None:
        """The log position of the program's newest event (one item read from the end of its index list):
        anything that changes a member (enrollment, points, orders, tiers) writes an event."""
        out = self.ddb.query(TableName=self.table, IndexName=GSI, KeyConditionExpression=f"{GSI_PK} = :pk",
                             ExpressionAttributeValues={":pk": {"S": f"P#{program_id}#EVENTS"}},
                             ScanIndexForward=False, Limit=1, ProjectionExpression=GSI_SK)
        items = out.get("Items", [])
        return str(items[0][GSI_SK]["S"]) if items else None

    def balances_page(self, program_id: str, after: str | None, limit: int
                      ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the program's BALANCE items in member id order, and the member id to continue after."""
        list_pk = balances_keys(program_id, "")[GSI_PK]
        params: dict[str, Any] = {"TableName": self.table, "IndexName": GSI, "Limit": limit,
                                  "KeyConditionExpression": f"{GSI_PK} = :pk",
                                  "ExpressionAttributeValues": {":pk": {"S": list_pk}}}
        if after:
            params["ExclusiveStartKey"] = {**item_key(member_pk(program_id, after), "BALANCE"),
                                           GSI_PK: {"S": list_pk}, GSI_SK: {"S": after}}
        out = self.ddb.query(**params)
        items = [strip_keys(from_item(i), index=True) for i in out.get("Items", [])]
        last = out.get("LastEvaluatedKey")
        return items, (last[GSI_SK]["S"] if last else None)

    def begin_walk(self, program_id: str, walk: dict[str, Any]) -> bool:
        """Start counting (``walk``: walk_id, walk_started_at, walk_position, walk_definitions, walk_counts) unless
        another run started first (a walk is in progress): False then."""
        names = {f"#{k}": k for k in walk}
        try:
            self.ddb.update_item(
                TableName=self.table, Key=item_key(segments_pk(program_id), SEGMENT_SNAPSHOT_SK),
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in walk) + " REMOVE walk_after",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(walk_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":{k}": v for k, v in to_item(walk).items()})
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def save_walk(self, program_id: str, walk_id: str, previous: str | None, after: str, counts: dict[str, Any]
                  ) -> bool:
        """Checkpoint the walk ``walk_id`` that continued after ``previous`` (None: from the start): the member to
        continue after and the counts so far. False when another run moved this walk on first, or it ended."""
        values = to_item({"id": walk_id, "counts": counts, "after": after})
        condition = "walk_id = :id AND " + ("walk_after = :prev" if previous else "attribute_not_exists(walk_after)")
        if previous:
            values[":prev"] = {"S": previous}
        return self._update_walk(program_id, "SET walk_counts = :counts, walk_after = :after", condition,
                                 {(k if k.startswith(":") else f":{k}"): v for k, v in values.items()})

    def finish_walk(self, program_id: str, walk_id: str, previous: str | None, result: dict[str, Any]) -> bool:
        """Make the walk's counts the snapshot (``result``: counts, computed_at, started_at, position,
        definitions_seen) and end the walk; False when another run moved this walk on first, or it ended."""
        names = {f"#{k}": k for k in result}
        values = {f":{k}": v for k, v in to_item(result).items()}
        values[":id"] = {"S": walk_id}
        condition = "walk_id = :id AND " + ("walk_after = :prev" if previous else "attribute_not_exists(walk_after)")
        if previous:
            values[":prev"] = {"S": previous}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in result) + " REMOVE " + ", ".join(WALK_FIELDS)
        return self._update_walk(program_id, expression, condition, values, names)

    def _update_walk(self, program_id: str, expression: str, condition: str, values: dict[str, Any],
                     names: dict[str, str] | None = None) -> bool:
        params: dict[str, Any] = {"TableName": self.table,
                                  "Key": item_key(segments_pk(program_id), SEGMENT_SNAPSHOT_SK),
                                  "UpdateExpression": expression, "ConditionExpression": condition,
                                  "ExpressionAttributeValues": values}
        if names:
            params["ExpressionAttributeNames"] = names
        try:
            self.ddb.update_item(**params)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True
