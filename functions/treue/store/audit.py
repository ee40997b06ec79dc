"""Storage of the audit trail: pending records, the sealer that chains them, the chain reader.

    pk                              sk       gsi1pk                    gsi1sk
    P#<pid>#AUDIT#<record id>       AUDIT    AUDIT#PENDING#<shard>     <pid>#<record id>   until sealed
                                             P#<pid>#CHAIN             <seq, 12 digits>    once sealed
    P#<pid>#AUDIT                   HEAD     -                         -                   seq and hash of the last

One partition per record keeps audit writes off any hot key; the index gives both the sealer's
work list (pending records, spread over a few shards) and the chain in ``seq`` order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from treue.core import audit
from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key
from treue.store.schema import GSI, INDEX_KEYS, PENDING_SHARDS, TABLE_KEYS, pending_shard

SEAL_BATCH = 40  # records per transaction (plus the head), under DynamoDB's 100-item limit
_INDEX_FIELDS = (*TABLE_KEYS, *INDEX_KEYS, "subject_pk", "subject_sk")


def content(item: dict[str, Any]) -> dict[str, Any]:
    """An item without its storage keys and index attributes: what hashes are taken over."""
    return {k: v for k, v in item.items() if k not in _INDEX_FIELDS}


class AuditStore(OnTable):

    # ------------------------------------------------------------ sealing

    def seal_pending(self, max_records: int = 5000) -> dict[str, int]:
        """Chain pending records (up to ``max_records``), a turn per program in rotation; the count per program."""
        return audit.seal_round_robin(self, max_records=max_records)

    def programs_with_pending(self) -> list[str]:
        """The programs with unsealed records, in id order: one one-item index query per program and shard
        (each query starts after the last program found), however many records any program has waiting."""
        found: list[str] = []
        for shard in range(PENDING_SHARDS):
            after: str | None = None
            while True:
                params: dict[str, Any] = {
                    "TableName": self.table, "IndexName": GSI, "Limit": 1, "ProjectionExpression": "gsi1sk",
                    "KeyConditionExpression": "gsi1pk = :pk",
                    "ExpressionAttributeValues": {":pk": {"S": f"AUDIT#PENDING#{shard}"}},
                }
                if after:
                    params["KeyConditionExpression"] += " AND gsi1sk > :after"
                    params["ExpressionAttributeValues"][":after"] = {"S": after}
                items = self.ddb.query(**params).get("Items", [])
                if not items:
                    break
                pid = items[0]["gsi1sk"]["S"].rpartition("#")[0]
                found.append(pid)
                after = pid + "$"  # "$" sorts right after "#": past every "<pid>#<record id>"
        return sorted(found)

    def seal_next(self, program_id: str, limit: int) -> int:
        """Chain the program's ``limit`` oldest pending records (fewer when fewer wait); how many were sealed."""
        params: dict[str, Any] = {
            "TableName": self.table, "IndexName": GSI, "Limit": limit, "ProjectionExpression": "gsi1sk",
            "KeyConditionExpression": "gsi1pk = :pk AND begins_with(gsi1sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"AUDIT#PENDING#{pending_shard(program_id)}"},
                                          ":prefix": {"S": f"{program_id}#"}},
        }
        ids = [i["gsi1sk"]["S"].rpartition("#")[2] for i in self.ddb.query(**params).get("Items", [])]
        return self.seal_program(program_id, ids) if ids else 0

    def seal_program(self, program_id: str, record_ids: list[str] | None = None) -> int:
        """Chain the program's pending records in id order; returns how many were sealed.

        Another sealer running at the same time makes the head's condition fail: this one stops
        and the records are sealed by the other one or the next run.
        """
        if record_ids is None:
            shard = f"AUDIT#PENDING#{pending_shard(program_id)}"
            record_ids = [i["gsi1sk"].rpartition("#")[2] for i in self._index(shard, f"{program_id}#")]
        pending = [r for r in self._records(program_id, sorted(set(record_ids))) if "seq" not in r]
        pending.sort(key=lambda r: r["id"])
        head = self.head(program_id)
        sealed = 0
        for start in range(0, len(pending), SEAL_BATCH):
            items, seq, prev = [], head["seq"], head["hash"]
            for record in pending[start : start + SEAL_BATCH]:
                seq += 1
                done = audit.seal(audit_content(record), seq, prev)
                prev = done["hash"]
                items.append({
                    "Update": {
                        "TableName": self.table,
                        "Key": item_key(f"P#{program_id}#AUDIT#{record['id']}", "AUDIT"),
                        "UpdateExpression": "SET seq = :seq, prev_hash = :prev, #h = :hash, gsi1pk = :gpk, "
                        "gsi1sk = :gsk",
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(seq)",
                        "ExpressionAttributeNames": {"#h": "hash"},
                        "ExpressionAttributeValues": {
                            ":seq": {"N": str(seq)}, ":prev": {"S": done["prev_hash"]}, ":hash": {"S": done["hash"]},
                            ":gpk": {"S": f"P#{program_id}#CHAIN"}, ":gsk": {"S": f"{seq:012d}"},
                        },
                    }
                })
            head_update = {
                "Update": {
                    "TableName": self.table,
                    "Key": item_key(f"P#{program_id}#AUDIT", "HEAD"),
                    "UpdateExpression": "SET seq = :seq, #h = :hash",
                    "ConditionExpression": "attribute_not_exists(pk) OR seq = :old",
                    "ExpressionAttributeNames": {"#h": "hash"},
                    "ExpressionAttributeValues": {
                        ":seq": {"N": str(seq)}, ":hash": {"S": prev}, ":old": {"N": str(head["seq"])},
                    },
                }
            }
            try:
                self.ddb.transact_write_items(TransactItems=[*items, head_update])
            except ClientError as err:
                if err.response["Error"]["Code"] in ("TransactionCanceledException", "TransactionConflictException"):
                    return sealed
                raise
            sealed += len(items)
            head = {"seq": seq, "hash": prev}
        return sealed

    def head(self, program_id: str) -> dict[str, Any]:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(f"P#{program_id}#AUDIT", "HEAD"),
                                ConsistentRead=True)
        if "Item" not in out:
            return {"seq": 0, "hash": audit.GENESIS}
        data = from_item(out["Item"])
        return {"seq": data["seq"], "hash": data["hash"]}

    def pending_count(self, program_id: str) -> int:
        shard = f"AUDIT#PENDING#{pending_shard(program_id)}"
        return sum(1 for _ in self._index(shard, f"{program_id}#"))

    # ------------------------------------------------------------ reading

    def chain(self, program_id: str, after_seq: int = 0) -> Iterator[dict[str, Any]]:
        """The sealed records in ``seq`` order."""
        yield from self._index(f"P#{program_id}#CHAIN", after=f"{after_seq:012d}")

    def subject_hashes(self, records: list[dict[str, Any]]) -> dict[str, str | None]:
        """Record id → the hash of its subject item as stored now (None when the item is gone)."""
        wanted = {(r["subject_pk"], r["subject_sk"]): r["id"] for r in records if r.get("subject_pk")}
        hashes: dict[str, str | None] = dict.fromkeys(wanted.values())
        keys = [item_key(pk, sk) for pk, sk in wanted]
        for start in range(0, len(keys), 100):
            pending = {self.table: {"Keys": keys[start : start + 100]}}
            while pending:
                out = self.ddb.batch_get_item(RequestItems=pending)
                for raw in out.get("Responses", {}).get(self.table, []):
                    item = from_item(raw)
                    hashes[wanted[(item["pk"], item["sk"])]] = audit.content_hash(content(item))
                pending = out.get("UnprocessedKeys") or {}
        return hashes

    def verify(self, program_id: str, page: int = 500) -> audit.Verification:
        """Walk the chain, checking each record and the ledger items it vouches for."""
        head = self.head(program_id)
        hashes: dict[str, str | None] = {}

        def records() -> Iterator[dict[str, Any]]:
            # subject items are read a page at a time, before that page's records are checked
            batch: list[dict[str, Any]] = []
            for record in self.chain(program_id):
                batch.append(record)
                if len(batch) >= page:
                    hashes.update(self.subject_hashes(batch))
                    yield from batch
                    batch = []
            hashes.update(self.subject_hashes(batch))
            yield from batch

        return audit.verify(program_id, records(), head, hashes)

    def _records(self, program_id: str, record_ids: list[str]) -> list[dict[str, Any]]:
        out_items: list[dict[str, Any]] = []
        keys = [item_key(f"P#{program_id}#AUDIT#{rid}", "AUDIT") for rid in record_ids]
        for start in range(0, len(keys), 100):
            pending = {self.table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            while pending:
                out = self.ddb.batch_get_item(RequestItems=pending)
                out_items.extend(from_item(i) for i in out.get("Responses", {}).get(self.table, []))
                pending = out.get("UnprocessedKeys") or {}
        return out_items

    def _index(self, pk: str, prefix: str | None = None, after: str | None = None) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": GSI,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        if prefix:
            params["KeyConditionExpression"] += " AND begins_with(gsi1sk, :prefix)"
            params["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
        elif after:
            params["KeyConditionExpression"] += " AND gsi1sk > :after"
            params["ExpressionAttributeValues"][":after"] = {"S": after}
        while True:
            out = self.ddb.query(**params)
            for raw in out.get("Items", []):
                yield from_item(raw)
            if not out.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def audit_content(item: dict[str, Any]) -> dict[str, Any]:
    """The record as appended (storage keys, index attributes and seal fields removed)."""
    return {k: v for k, v in content(item).items() if k not in ("seq", "prev_hash", "hash")}
