"""Writing to the program table: the DynamoDB client, transactions with their audit records and
idempotency guards, and ``ClientError`` codes as domain errors (here and nowhere else).

The base of every store on the table: :class:`TableStore` (what ``treue.store.ledger`` and
``treue.store.dynamodb`` build on) and the helpers the other stores put in their transactions.
Every transaction also appends its audit record (``treue.core.audit``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from treue.errors import Contention, StaleCondition
from treue.store import clients, positions
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import GSI, GSI_PK, GSI_SK, audit_pk, idem_pk, pending_audit_keys

AUDIT = "_audit"  # a transaction item may carry the audit record of its change under this key
_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "TransactionInProgressException",
}


def client() -> Any:
    """The DynamoDB client of this execution environment."""
    return clients.get("dynamodb")


def newest_first(ddb: Any, table: str, gsi1pk: str, after: str | None, limit: int
                 ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a ``gsi1`` partition, newest first, from below ``after``; the cursor is the last
    item's ``gsi1sk`` (None on the last page)."""
    params: dict[str, Any] = {
        "TableName": table, "IndexName": GSI, "ScanIndexForward": False, "Limit": limit,
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": gsi1pk}},
    }
    if after:
        params["KeyConditionExpression"] += " AND gsi1sk < :after"
        params["ExpressionAttributeValues"][":after"] = {"S": after}
    out = ddb.query(**params)
    items = [from_item(i) for i in out.get("Items", [])]
    return items, (items[-1]["gsi1sk"] if items and "LastEvaluatedKey" in out else None)


def audit_put(table: str, record: dict[str, Any], subject: tuple[str, str] | None = None) -> dict[str, Any]:
    """The transaction item appending an unsealed audit ``record`` (``subject``: the item it vouches for)."""
    pid = record["program_id"]
    item = {
        "pk": audit_pk(pid, record["id"]),
        "sk": "AUDIT",
        **pending_audit_keys(pid, record["id"]),
        **record,
    }
    if subject:
        item["subject_pk"], item["subject_sk"] = subject
    return {"Put": {"TableName": table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def with_audit(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items with the audit records some of them carry appended at the end (indexes unchanged)."""
    plain, records = [], []
    for item in items:
        if AUDIT in item:
            item = dict(item)
            records.append(item.pop(AUDIT))
        plain.append(item)
    return plain + records


def audited(item: dict[str, Any], table: str, record: dict[str, Any],
            subject: tuple[str, str] | None = None) -> dict[str, Any]:
    """``item`` carrying its audit record, for :func:`with_audit`."""
    return {**item, AUDIT: audit_put(table, record, subject)}


@dataclass(frozen=True)
class Replay:
    """An idempotency guard found in place: the first request's fingerprint and result."""

    fingerprint: str
    result: dict[str, Any]


def reasons(err: ClientError) -> list[dict[str, Any]]:
    """The cancellation reasons of a failed transaction, one per item."""
    return err.response.get("CancellationReasons") or []


def stale(index: int, reason: dict[str, Any]) -> StaleCondition:
    """The failed condition of item ``index`` (the item as it was, when DynamoDB returned it)."""
    item = reason.get("Item")
    return StaleCondition(index, from_item(item) if item else None)


def raise_storage(err: ClientError) -> None:
    """Re-raise a failed call: throttling and the like as Contention, anything else as it is."""
    code = err.response.get("Error", {}).get("Code", "")
    if code in _RETRYABLE:
        raise Contention(f"storage is busy ({code})") from err
    raise err


def _as_replay(record: dict[str, Any]) -> Replay:
    return Replay(fingerprint=record["fingerprint"], result=record["result"])


def due_page(ddb: Any, table: str, partition: str, now: str, limit: int, after: dict[str, Any] | None
             ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a sparse due index partition (``gsi1pk`` ``partition``, ``gsi1sk`` ``<when>#…``): the items due
    at ``now`` (``when`` ≤ now), oldest first, and the key to continue after (None: the last page). Read from the
    index: an item may be stale, the write checks (the tier review's and the membership review's)."""
    params: dict[str, Any] = {
        "TableName": table, "IndexName": GSI, "Limit": limit,
        "KeyConditionExpression": f"{GSI_PK} = :pk AND {GSI_SK} <= :now",
        "ExpressionAttributeValues": {":pk": {"S": partition}, ":now": {"S": f"{now}#~"}},
    }
    if after:
        params["ExclusiveStartKey"] = after
    out = ddb.query(**params)
    return [strip_keys(from_item(raw), index=True) for raw in out.get("Items", [])], out.get("LastEvaluatedKey")


class TableStore:
    """The program table and its client, and the transactions every store writes through."""

    def __init__(self, table_name: str | None = None, ddb: Any = None) -> None:
        self.table = table_name or os.environ["TABLE_NAME"]
        self._ddb = ddb

    @property
    def ddb(self) -> Any:
        return self._ddb or client()

    def transact(self, items: list[dict[str, Any]]) -> None:
        """Write ``items`` (and the audit records they carry) atomically.

        A failed condition raises StaleCondition with the item's index; contention raises Contention.
        """
        try:
            self._write(items)
        except ClientError as err:
            for i, reason in enumerate(self.canceled(err)[: len(items)]):
                if reason.get("Code") == "ConditionalCheckFailed":
                    raise stale(i, reason) from err
            raise Contention("a concurrent request touched the same items; retry") from err

    def transact_first(self, items: list[dict[str, Any]]) -> bool:
        """Write ``items`` atomically; False when the first one's condition failed (it was done before)."""
        try:
            self.transact(items)
        except StaleCondition as err:
            if err.index == 0:
                return False
            raise
        return True

    def transact_guarded(self, items: list[dict[str, Any]], program_id: str, kind: str, reference: str
                         ) -> Replay | None:
        """Write ``items``, the first of them the idempotency guard of ``kind`` and ``reference``
        (``_idem_put``): None when written, the earlier request's Replay when the guard was there."""
        try:
            self.transact(items)
        except StaleCondition as err:
            if err.index == 0:
                return _as_replay(err.item) if err.item else self._replay(program_id, kind, reference, {})
            raise
        return None

    def update_if(self, **request: Any) -> dict[str, Any] | None:
        """One conditional ``UpdateItem`` on the table (``request`` without ``TableName``): the updated
        item without its keys when ``ReturnValues`` asks for it, else ``{}``; None when the condition failed."""
        try:
            out = self.ddb.update_item(TableName=self.table, **request)
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return strip_keys(from_item(out["Attributes"])) if "Attributes" in out else {}

    def canceled(self, err: ClientError) -> list[dict[str, Any]]:
        """The per-item reasons of a canceled transaction; any other error re-raised as storage errors are."""
        if err.response["Error"]["Code"] != "TransactionCanceledException":
            raise_storage(err)
        return reasons(err)

    def _write(self, items: list[dict[str, Any]]) -> None:
        """One ``TransactWriteItems`` of ``items`` and the audit records they carry (ClientError as raised)."""
        sent = with_audit(items)
        positions.write(lambda: self.ddb.transact_write_items(TransactItems=sent), sent, self.ddb, self.table)

    def _put_new(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": to_item(data),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _idem_put(
        self, program_id: str, kind: str, reference: str, fingerprint: str, result: dict[str, Any], now: str
    ) -> dict[str, Any]:
        put = self._put_new(
            {
                "pk": idem_pk(program_id, kind, reference),
                "sk": "IDEM",
                "fingerprint": fingerprint,
                "result": result,
                "created_at": now,
            }
        )
        put["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return put

    def replay_of(self, program_id: str, kind: str, reference: str) -> Replay | None:
        """The idempotency record an earlier request of ``kind`` wrote under ``reference``, or None."""
        out = self.ddb.get_item(
            TableName=self.table, Key=item_key(idem_pk(program_id, kind, reference), "IDEM"), ConsistentRead=True
        )
        return _as_replay(from_item(out["Item"])) if "Item" in out else None

    def _replay(self, program_id: str, kind: str, reference: str, reason: dict[str, Any]) -> Replay:
        """The Replay of a guard whose condition failed: from the cancellation ``reason``'s item, or read."""
        item = reason.get("Item")
        found = _as_replay(from_item(item)) if item else self.replay_of(program_id, kind, reference)
        if found is None:  # the guard failed on an existing record, which is never deleted
            raise LookupError(f"idempotency record {kind} {reference[:40]} of program {program_id} is gone")
        return found
