"""Storage of program budgets (``treue.logic.budget``): balances, settings and movements.

    pk              sk                                   what
    P#<pid>#BUDGET  ACCOUNT#<cur>#<account>              balance of one budget account in one currency
    P#<pid>#BUDGET  SETTINGS#<cur>                       low-balance threshold
    P#<pid>#BUDGET  MOVE#<cur>#<time>#<movement id>      a movement (also in the journal index)
    P#<pid>#BUDGET  HOLD#<cur>#<batch id>                what the batch still holds (``remaining``)

Every movement's transaction carries its audit record, which vouches for the movement's content.
"""

from __future__ import annotations

from typing import Any

from treue.core import audit
from treue.core.money import MoneyAccount, Movement
from treue.core.records import Order
from treue.core.statuses import OrderStatus
from treue.store.dynamodb import OnTable
from treue.store.items import decode_cursor, encode_cursor, from_item, item_key, strip_keys, to_item
from treue.store.schema import budget_pk, journal_keys, order_pk
from treue.store.table import Replay, audited


class BudgetStore(OnTable):

    # ------------------------------------------------------------ writes

    def movement_items(self, moves: list[Movement]) -> list[dict[str, Any]]:
        """Puts of the movements (each audited) and the balance changes they make."""
        items: list[dict[str, Any]] = []
        deltas: dict[tuple[str, str], int] = {}
        for move in moves:
            data = move.data()
            pk, sk = budget_pk(move.program_id), f"MOVE#{move.currency}#{move.created_at}#{move.id}"
            record = audit.new_record(
                move.program_id, f"budget.{move.type}", "movement", move.id, move.created_at,
                {k: data[k] for k in ("currency", "debit", "credit", "amount", "reference", "order_id")},
                subject_hash=audit.content_hash(data),
            )
            item = {"pk": pk, "sk": sk, **data, **journal_keys(move.program_id, move.created_at, move.id)}
            items.append(audited(self.store._put_new(item), self.table, record, (pk, sk)))
            for account, delta in ((move.debit, -move.amount), (move.credit, move.amount)):
                deltas[(move.currency, str(account))] = deltas.get((move.currency, str(account)), 0) + delta
        for (currency, name), delta in deltas.items():
            if delta:
                items.append(self._add(moves[0].program_id, currency, name, delta))
        return items

    def _add(self, program_id: str, currency: str, account: str, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": item_key(budget_pk(program_id), f"ACCOUNT#{currency}#{account}"),
                "UpdateExpression": "SET currency = :c, account = :a ADD balance :d",
                "ExpressionAttributeValues": {":c": {"S": currency}, ":a": {"S": account}, ":d": {"N": str(delta)}},
            }
        }

    def fund(self, move: Movement, idempotency: tuple[str, str], answer: dict[str, Any]) -> Replay | None:
        """A top-up with its idempotency guard; the Replay of the first one with the same key."""
        key, fingerprint = idempotency
        pid = move.program_id
        items = [self.store._idem_put(pid, "funding", key, fingerprint, answer, move.created_at),
                 *self.movement_items([move]), self.lower_flag_item(pid, move.currency)]
        return self.store.transact_guarded(items, pid, "funding", key)

    def hold_items(self, moves: list[Movement], batch_id: str) -> list[dict[str, Any]]:
        """A batch's hold (``batch_moves``): the available balances, each conditioned to cover its
        amount, first; then the held balances, the movements and the batch's hold items."""
        items = self.movement_items(moves)
        available = [i for i in items if _is_available_add(i)]
        for item, move in zip(available, moves, strict=True):
            _must_cover(item, move.amount)
        holds = [{"Update": {
            "TableName": self.table, "Key": item_key(budget_pk(m.program_id), f"HOLD#{m.currency}#{batch_id}"),
            "UpdateExpression": "SET currency = :c, batch_id = :b, updated_at = :now ADD remaining :a",
            "ExpressionAttributeValues": {":c": {"S": m.currency}, ":b": {"S": batch_id}, ":now": {"S": m.created_at},
                                          ":a": {"N": str(m.amount)}},
        }} for m in moves]
        return [*available, *(i for i in items if not any(i is a for a in available)), *holds]

    def release_items(self, moves: list[Movement], batch_id: str, remaining: dict[str, int]) -> list[dict[str, Any]]:
        """A batch's release: its hold items emptied (conditioned on still holding ``remaining``, read
        before), then the movements and the balances."""
        empty = [{"Update": {
            "TableName": self.table, "Key": item_key(budget_pk(m.program_id), f"HOLD#{m.currency}#{batch_id}"),
            "UpdateExpression": "SET remaining = :zero, updated_at = :now",
            "ConditionExpression": "remaining = :r",
            "ExpressionAttributeValues": {":zero": {"N": "0"}, ":now": {"S": m.created_at},
                                          ":r": {"N": str(remaining[m.currency])}},
        }} for m in moves]
        return [*empty, *self.movement_items(moves)]

    def held_by(self, program_id: str, batch_id: str, currencies: list[str]) -> dict[str, int]:
        """currency → what the batch still holds (0 when nothing)."""
        if not currencies:
            return {}
        keys = [item_key(budget_pk(program_id), f"HOLD#{cur}#{batch_id}") for cur in currencies]
        out = self.ddb.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})
        found = {i["currency"]: i.get("remaining", 0)
                 for i in map(from_item, out.get("Responses", {}).get(self.table, []))}
        return {cur: found.get(cur, 0) for cur in currencies}

    def holds(self, program_id: str) -> dict[str, int]:
        """currency → what every batch together still holds (the ``budget:held`` account must match)."""
        out: dict[str, int] = {}
        for item in self._query(program_id, "HOLD#"):
            out[item["currency"]] = out.get(item["currency"], 0) + item.get("remaining", 0)
        return out

    def draw(self, order: Order, funds: dict[str, Any], moves: list[Movement], need: int,
             low_event: dict[str, Any] | None, now: str, batch_id: str | None = None) -> None:
        """Record the order's funds and the draw, if the order has none yet and the balance covers it;
        with ``low_event``, also raise the currency's low flag (if not raised) and write the event.
        With ``batch_id`` the draw comes from that batch's hold, which must still cover ``need``.

        Raises StaleCondition: index 0 = the order (already drawn, not PROCESSING or being released), 1 = the balance
        (or the batch's hold) is below ``need``, 2 = the low flag was raised meanwhile.
        """
        pid, oid = order.program_id, order.id
        cur = funds["currency"]
        order_update = {
            "Update": {
                "TableName": self.table,
                "Key": item_key(order_pk(pid, oid), "ORDER"),
                "UpdateExpression": "SET funds = :f, updated_at = :now",
                # a release that claimed the order (``releasing``) returns what was drawn: no draw after it
                "ConditionExpression": "#s = :processing AND attribute_not_exists(funds) "
                                       "AND attribute_not_exists(releasing)",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":f": {"M": to_item(funds)}, ":now": {"S": now},
                    ":processing": {"S": OrderStatus.PROCESSING},
                },
            }
        }
        items = self.movement_items(moves)
        if batch_id:
            others = items
            covering = {"Update": {
                "TableName": self.table, "Key": item_key(budget_pk(pid), f"HOLD#{cur}#{batch_id}"),
                "UpdateExpression": "ADD remaining :minus", "ConditionExpression": "remaining >= :need",
                "ExpressionAttributeValues": {":minus": {"N": str(-need)}, ":need": {"N": str(need)}},
            }}
        else:
            [covering] = [i for i in items if _is_available_add(i)]
            others = [i for i in items if i is not covering]
            _must_cover(covering, need)
        head = [order_update, covering]
        if low_event is not None:
            head += [self.raise_flag_item(pid, cur, now), low_event]
        self.store.transact([*head, *others])

    def raise_flag_item(self, program_id: str, currency: str, now: str) -> dict[str, Any]:
        """Raise the currency's low flag, unless it is raised (then the transaction fails)."""
        return {"Update": {
            "TableName": self.table, "Key": item_key(budget_pk(program_id), f"SETTINGS#{currency}"),
            "UpdateExpression": "SET low_since = :now", "ConditionExpression": "attribute_not_exists(low_since)",
            "ExpressionAttributeValues": {":now": {"S": now}},
        }}

    def lower_flag_item(self, program_id: str, currency: str) -> dict[str, Any]:
        """Lower the currency's low flag (in a funding's transaction): the next fall below the
        threshold is news again."""
        return {"Update": {
            "TableName": self.table, "Key": item_key(budget_pk(program_id), f"SETTINGS#{currency}"),
            "UpdateExpression": "SET currency = :c REMOVE low_since",
            "ExpressionAttributeValues": {":c": {"S": currency}},
        }}

    # ------------------------------------------------------------ reads

    def available(self, program_id: str, currency: str) -> tuple[int, int]:
        """(available balance, low-balance threshold) in minor units; 0 and 0 when never funded or set."""
        balance, threshold, _ = self.available_with_flag(program_id, currency)
        return balance, threshold

    def available_with_flag(self, program_id: str, currency: str) -> tuple[int, int, bool]:
        """(available balance, low-balance threshold, whether budget.low was sent since the last funding)."""
        keys = [item_key(budget_pk(program_id), f"ACCOUNT#{currency}#{MoneyAccount.AVAILABLE}"),
                item_key(budget_pk(program_id), f"SETTINGS#{currency}")]
        out = self.ddb.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})
        balance = threshold = 0
        flagged = False
        for raw in out.get("Responses", {}).get(self.table, []):
            data = from_item(raw)
            if data["sk"].startswith("ACCOUNT#"):
                balance = data.get("balance", 0)
            else:
                threshold = data.get("low_balance_threshold", 0)
                flagged = "low_since" in data
        return balance, threshold, flagged

    def accounts(self, program_id: str) -> dict[str, dict[str, int]]:
        """currency → account → balance."""
        out: dict[str, dict[str, int]] = {}
        for item in self._query(program_id, "ACCOUNT#"):
            out.setdefault(item["currency"], {})[item["account"]] = item.get("balance", 0)
        return out

    def thresholds(self, program_id: str) -> dict[str, int]:
        return {i["currency"]: i.get("low_balance_threshold", 0) for i in self._query(program_id, "SETTINGS#")}

    def set_threshold(self, program_id: str, currency: str, value: int, now: str) -> None:
        record = audit.new_record(program_id, "budget.threshold_set", "budget", currency, now,
                                  {"currency": currency, "low_balance_threshold": value})
        self.store.transact([audited({
            "Put": {
                "TableName": self.table,
                "Item": {"pk": {"S": budget_pk(program_id)}, "sk": {"S": f"SETTINGS#{currency}"},
                         "currency": {"S": currency}, "low_balance_threshold": {"N": str(value)},
                         "updated_at": {"S": now}},
            }
        }, self.table, record)])

    def movements(self, program_id: str, currency: str | None, limit: int,
                  cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Movements newest first (one currency or all) and the next cursor."""
        prefix = f"MOVE#{currency}#" if currency else "MOVE#"
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": budget_pk(program_id)}, ":p": {"S": prefix}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            params["ExclusiveStartKey"] = item_key(budget_pk(program_id), decode_cursor(cursor, prefix))
        out = self.ddb.query(**params)
        last = out.get("LastEvaluatedKey")
        items = [strip_keys(from_item(i), index=True) for i in out.get("Items", [])]
        return items, (encode_cursor(last["sk"]["S"]) if last else None)

    def _query(self, program_id: str, prefix: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": budget_pk(program_id)}, ":p": {"S": prefix}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            out = self.ddb.query(**params)
            items.extend(from_item(i) for i in out.get("Items", []))
            if not out.get("LastEvaluatedKey"):
                return items
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def _must_cover(balance_update: dict[str, Any], amount: int) -> None:
    """Condition a balance change (``_add``) on the balance covering ``amount`` before it."""
    balance_update["Update"]["ConditionExpression"] = "balance >= :need"
    balance_update["Update"]["ExpressionAttributeValues"][":need"] = {"N": str(amount)}


def _is_available_add(item: dict[str, Any]) -> bool:
    update: dict[str, Any] = item.get("Update") or {}
    return bool(update) and update["Key"]["sk"]["S"].endswith(f"#{MoneyAccount.AVAILABLE}")
