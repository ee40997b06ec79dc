"""Program-wide reads for finance, through the ``gsi1`` index (see ``treue.store.schema``).

    gsi1pk                 gsi1sk                  items
    P#<pid>#JOURNAL        <created_at>#<id>       ledger postings and budget movements
    P#<pid>#ORDERS         <created_at>#<oid>      orders
    P#<pid>#BALANCES       <member id>             member balances

Time bounds are ISO 8601 strings: ``start`` inclusive, ``end`` exclusive.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

from treue.errors import MalformedRequest, StorageTimeout
from treue.store.clients import TIMEOUTS
from treue.store.dynamodb import Store
from treue.store.items import from_item, strip_keys
from treue.store.schema import GSI, INDEX_KEYS, TABLE_KEYS

_KEYS = (*TABLE_KEYS, *INDEX_KEYS)


def _encode(last: dict[str, Any]) -> str:
    plain = {k: v["S"] for k, v in last.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str, gsi1pk: str) -> dict[str, Any]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if plain.get("gsi1pk") != gsi1pk or set(plain) != set(_KEYS):
            raise ValueError("another listing's cursor")
        return {k: {"S": str(plain[k])} for k in _KEYS}
    except (ValueError, TypeError, AttributeError, binascii.Error) as err:
        raise MalformedRequest("the cursor is not one this API returned", parameter="cursor") from err


class Reports:
    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def ddb(self) -> Any:
        return self.store.ddb

    def page(self, gsi1pk: str, start: str | None, end: str | None, limit: int,
             cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page in time order, and the cursor of the next (None at the end)."""
        params = self._params(gsi1pk, start, end)
        params["Limit"] = limit
        if cursor:
            params["ExclusiveStartKey"] = _decode(cursor, gsi1pk)
        out = self._query(params)
        last = out.get("LastEvaluatedKey")
        return [strip_keys(from_item(i), index=True) for i in out.get("Items", [])], (_encode(last) if last else None)

    def chunk(self, gsi1pk: str, start: str | None, end: str | None, limit: int,
              after: dict[str, str] | None) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """One page in time order after the plain key ``after`` (None: from the start), and the plain key
        to continue after (None at the end): JSON, so a report job can checkpoint it."""
        params = self._params(gsi1pk, start, end)
        params["Limit"] = limit
        if after:
            params["ExclusiveStartKey"] = {k: {"S": str(v)} for k, v in after.items()}
        out = self._query(params)
        last = out.get("LastEvaluatedKey")
        return ([strip_keys(from_item(i), index=True) for i in out.get("Items", [])],
                {k: v["S"] for k, v in last.items()} if last else None)

    def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.ddb.query(**params)
        except TIMEOUTS as err:
            what = params["ExpressionAttributeValues"][":pk"]["S"].rsplit("#", 1)[-1].lower()
            raise StorageTimeout(f"DynamoDB did not answer a read of the {what} in time") from err

    def all(self, gsi1pk: str, start: str | None = None, end: str | None = None) -> Iterator[dict[str, Any]]:
        params = self._params(gsi1pk, start, end)
        while True:
            out = self._query(params)
            for raw in out.get("Items", []):
                yield strip_keys(from_item(raw), index=True)
            if not out.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def journal(self, program_id: str, start: str | None = None, end: str | None = None) -> Iterator[dict[str, Any]]:
        return self.all(f"P#{program_id}#JOURNAL", start, end)

    def orders(self, program_id: str, start: str | None = None, end: str | None = None) -> Iterator[dict[str, Any]]:
        return self.all(f"P#{program_id}#ORDERS", start, end)

    def balances(self, program_id: str) -> Iterator[dict[str, Any]]:
        return self.all(f"P#{program_id}#BALANCES")

    def _params(self, gsi1pk: str, start: str | None, end: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "TableName": self.store.table,
            "IndexName": GSI,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": gsi1pk}},
        }
        if start or end:
            # "<end>" sorts before "<end>#…", so BETWEEN is start-inclusive and end-exclusive here
            params["KeyConditionExpression"] += " AND gsi1sk BETWEEN :start AND :end"
            params["ExpressionAttributeValues"][":start"] = {"S": start or "0"}
            params["ExpressionAttributeValues"][":end"] = {"S": end or "~"}
        return params
