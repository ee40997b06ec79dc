"""The program table's store: programs and API keys on top of the ledger (``treue.store.ledger``).

The parts: ``treue.store.schema`` (the table's layout, its keys and index), ``treue.store.items``
(the item codec), ``treue.store.table`` (transactions, idempotency guards, audit records, storage
errors) and ``treue.store.ledger`` (members, balances, postings). :class:`Store` joins them; the
other stores (orders, budget, audit…) share its table and client through :class:`OnTable`.
"""

from __future__ import annotations

from typing import Any

from treue.core import audit
from treue.core.keys import ApiKeyRecord, Scope
from treue.core.programs import Program
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.ledger import LedgerStore
from treue.store.returns import ReturnsStore
from treue.store.schema import api_key_pk, program_pk
from treue.store.table import audit_put
from treue.store.tiers import TierCounters


class Store(LedgerStore, TierCounters, ReturnsStore):
    """Program-scoped persistence of programs, keys, members and the ledger (with purchase counters and tiers)."""

    def put_program(self, program: Program) -> None:
        data = {"pk": program_pk(program.id), "sk": "PROGRAM", **program.__dict__}
        self.ddb.put_item(
            TableName=self.table,
            Item=to_item(data),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_program(self, program_id: str) -> Program | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(program_pk(program_id), "PROGRAM"))
        if "Item" not in out:
            return None
        return Program(**strip_keys(from_item(out["Item"])))

    def put_api_key(self, record: ApiKeyRecord) -> None:
        data = {
            "pk": api_key_pk(record.key_id),
            "sk": "APIKEY",
            "key_id": record.key_id,
            "program_id": record.program_id,
            "scope": str(record.scope),
            "secret_hash": record.secret_hash,
            "created_at": record.created_at,
        }
        entry = audit.new_record(record.program_id, "api_key.created", "api_key", record.key_id, record.created_at,
                                 {"scope": str(record.scope)})
        self.transact([self._put_new(data), audit_put(self.table, entry)])

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(api_key_pk(key_id), "APIKEY"))
        if "Item" not in out:
            return None
        data = strip_keys(from_item(out["Item"]))
        return ApiKeyRecord(
            key_id=data["key_id"],
            program_id=data["program_id"],
            scope=Scope(data["scope"]),
            secret_hash=data["secret_hash"],
            created_at=data["created_at"],
            revoked_at=data.get("revoked_at"),
        )

    def revoke_api_key(self, key_id: str, now: str) -> bool:
        """Mark a key revoked; False when no such key exists. Revoking twice keeps the first time."""
        found = self.get_api_key(key_id)
        if found is None:
            return False
        entry = audit.new_record(found.program_id, "api_key.revoked", "api_key", key_id, now,
                                 {"scope": str(found.scope)})
        update = {
            "Update": {
                "TableName": self.table,
                "Key": item_key(api_key_pk(key_id), "APIKEY"),
                "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :now)",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":now": {"S": now}},
            }
        }
        self.transact([update, audit_put(self.table, entry)])
        return True


class OnTable:
    """Base of the stores that share the program table through one ``Store`` (orders, budget, audit…)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def ddb(self) -> Any:
        return self.store.ddb

    @property
    def table(self) -> str:
        return self.store.table

    def query_prefix(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        """Every item of partition ``pk`` whose sort key starts with ``prefix``, in sort-key order, read
        consistently, all pages."""
        params: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True,
                                  "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
                                  "ExpressionAttributeValues": {":pk": {"S": pk}, ":p": {"S": prefix}}}
        items: list[dict[str, Any]] = []
        while True:
            out = self.ddb.query(**params)
            items.extend(from_item(i) for i in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return items
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]
