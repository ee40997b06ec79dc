"""How much of a purchase its returns took back (``treue.logic.returns``), in the member's partition.

    pk                        sk                        what
    P#<pid>#MEMBER#<mid>      RETURNED#<transaction id> ``state`` (``treue.core.returns.Returned`` as JSON: the amount
                                                        and each line's fraction returned), ``points`` reversed so far,
                                                        ``returns`` (how many), ``return_ids`` (the last few)

Each return writes the item in its posting's transaction, conditioned on the ``returns`` count it read: two
returns of one purchase at the same time cannot both take what is left (one evaluates again).

``ReturnsStore`` is part of ``treue.store.dynamodb.Store``.
"""

from __future__ import annotations

from typing import Any

from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import PENDING_PREFIX, member_pk

RETURNED_PREFIX = "RETURNED#"
KEPT_IDS = 20  # the return ids the item lists (the journal has them all)


def returned_sk(transaction_id: str) -> str:
    return f"{RETURNED_PREFIX}{transaction_id}"


class ReturnsStore:
    """Reads and transaction items of returns (a mixin of ``Store``: ``ddb`` and ``table`` are its own)."""

    ddb: Any
    table: str

    def returned(self, program_id: str, member_id: str, transaction_id: str) -> dict[str, Any] | None:
        """The purchase's ``RETURNED#`` item (None: nothing returned yet), read consistently."""
        out = self.ddb.get_item(TableName=self.table,
                                Key=item_key(member_pk(program_id, member_id), returned_sk(transaction_id)),
                                ConsistentRead=True)
        return strip_keys(from_item(out["Item"])) if "Item" in out else None

    def purchase_pending(self, program_id: str, member_id: str, available_at: str, posting_id: str
                         ) -> dict[str, Any] | None:
        """The pending item of the purchase whose first earn posting is ``posting_id`` (``treue.store.ledger``:
        ``PENDING#<available_at>#<posting id>``, with its ``sk``), None once activated; read consistently."""
        sk = f"{PENDING_PREFIX}{available_at}#{posting_id}"
        out = self.ddb.get_item(TableName=self.table, Key=item_key(member_pk(program_id, member_id), sk),
                                ConsistentRead=True)
        return {**strip_keys(from_item(out["Item"])), "sk": sk} if "Item" in out else None

    def pending_cancel_item(self, program_id: str, member_id: str, sk: str, read: int, points: int
                            ) -> dict[str, Any]:
        """The transaction item taking ``points`` out of the purchase's pending item that held ``read`` (conditioned
        on that). An item a return empties stays with 0 points (the API functions delete nothing): the activation
        job removes it when it is due."""
        return {"Update": {"TableName": self.table, "Key": item_key(member_pk(program_id, member_id), sk),
                           "UpdateExpression": "SET points = :left", "ConditionExpression": "points = :read",
                           "ExpressionAttributeValues": {":read": {"N": str(read)},
                                                         ":left": {"N": str(max(read - points, 0))}}}}

    def returned_put(self, program_id: str, member_id: str, transaction_id: str, read: dict[str, Any] | None,
                     state: dict[str, Any], points: int, return_id: str, now: str) -> dict[str, Any]:
        """The transaction item recording one more return of the purchase: ``state`` after it, ``points`` the
        return reversed added; conditioned on the item as ``read`` (None: none yet)."""
        count = int(read["returns"]) if read else 0
        ids = [*(read.get("return_ids") or [] if read else []), return_id][-KEPT_IDS:]
        item = {"pk": member_pk(program_id, member_id), "sk": returned_sk(transaction_id),
                "transaction_id": transaction_id, "state": state, "returns": count + 1, "return_ids": ids,
                "points": (int(read.get("points", 0)) if read else 0) + points, "updated_at": now}
        put: dict[str, Any] = {"TableName": self.table, "Item": to_item(item)}
        if read:
            put["ConditionExpression"] = "#returns = :read"
            put["ExpressionAttributeNames"] = {"#returns": "returns"}
            put["ExpressionAttributeValues"] = {":read": {"N": str(count)}}
        else:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": put}
