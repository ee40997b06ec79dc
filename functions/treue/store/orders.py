"""DynamoDB storage of the catalog, orders, vouchers and donations (events: ``treue.store.events``).

Layout (same table as ``treue.store.schema``):

    pk                                   sk                     what
    CATALOG                              ITEM#<item id>         catalog item (shared by programs)
    CATALOG                              VERSION                loaded version, count, time
    P#<pid>#ORDER#<oid>                  ORDER                  order: status, history, codes (sealed);
                                                                indexed by time (gsi1 P#<pid>#ORDERS)
    P#<pid>#ORDER#<oid>                  REVEAL#<time>#<id>     a code reveal: who and when
    P#<pid>#MEMBER#<mid>                 ORDER#<oid>            the member's order index
    P#<pid>#VOUCHER#<keyed hash>         VOUCHER                voucher: value, status, expiry, order
    P#<pid>#DONATION#<did>               DONATION               donation receipt
    P#<pid>#CHARITY                      <charity id>#<cur>     donation totals per charity

The catalog is the one shared partition: it is reference data every program prices for itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from treue.core import audit
from treue.core.issued_records import CharityTotal, Donation, Voucher
from treue.core.ledger import Posting
from treue.core.records import Order
from treue.core.statuses import ORDER_IN_FLIGHT, CatalogStatus, OrderStatus, VoucherState
from treue.errors import OrderNotFound
from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import donation_pk, member_pk, order_pk, voucher_pk
from treue.store.table import Replay, audit_put, audited
from treue.store.watchlist import Watchlist


def _av(value: Any) -> dict[str, Any]:
    return to_item({"v": value})["v"]


def _status_in(allowed: tuple[str, ...], values: dict[str, Any]) -> str:
    """``#s IN (…)`` over ``allowed``, adding their placeholders to ``values``."""
    for i, status in enumerate(allowed):
        values[f":a{i}"] = {"S": status}
    return f"#s IN ({', '.join(f':a{i}' for i in range(len(allowed)))})"


class OrderStore(OnTable):

    # ------------------------------------------------------------ catalog

    def put_catalog(self, version: str, items: list[dict[str, Any]], now: str) -> dict[str, Any]:
        """Write every item; items no longer in the files stay readable for old orders but are retired."""
        current = {i["id"] for i in self.catalog_items(include_retired=True)}
        wanted = {i["id"] for i in items}
        writes: list[dict[str, Any]]
        writes = [{"pk": "CATALOG", "sk": f"ITEM#{i['id']}", "item": i, "status": CatalogStatus.ACTIVE,
                   "version": version, "loaded_at": now} for i in items]
        for retired in sorted(current - wanted):
            old = self.get_catalog_item(retired, include_retired=True)
            writes.append({"pk": "CATALOG", "sk": f"ITEM#{retired}", "item": old, "status": CatalogStatus.RETIRED,
                           "version": version, "loaded_at": now})
        writes.append({"pk": "CATALOG", "sk": "VERSION", "version": version, "count": len(items),
                       "loaded_at": now})
        for start in range(0, len(writes), 25):
            requests = [{"PutRequest": {"Item": to_item(w)}} for w in writes[start : start + 25]]
            pending = {self.table: requests}
            while pending:
                out = self.ddb.batch_write_item(RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}
        return {"version": version, "items": len(items), "retired": len(current - wanted)}

    def catalog_items(self, include_retired: bool = False) -> list[dict[str, Any]]:
        items, start = [], None
        while True:
            params: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :item)",
                "ExpressionAttributeValues": {":pk": {"S": "CATALOG"}, ":item": {"S": "ITEM#"}},
            }
            if start:
                params["ExclusiveStartKey"] = start
            out = self.ddb.query(**params)
            for raw in out.get("Items", []):
                data = from_item(raw)
                if include_retired or data["status"] == CatalogStatus.ACTIVE:
                    items.append(data["item"])
            start = out.get("LastEvaluatedKey")
            if not start:
                return items

    def get_catalog_item(self, item_id: str, include_retired: bool = False) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key("CATALOG", f"ITEM#{item_id}"))
        if "Item" not in out:
            return None
        data = from_item(out["Item"])
        if data["status"] != CatalogStatus.ACTIVE and not include_retired:
            return None
        return data["item"]

    # ------------------------------------------------------------ orders

    def create(
        self, order: Order, hold: Posting, idempotency: tuple[str, str], result: dict[str, Any],
        more: Sequence[dict[str, Any]] = (),
    ) -> Replay | None:
        """The order, the member's index entry and the hold, in one transaction with the idempotency guard
        (and ``more`` items: a points + cash order's cash movement)."""
        pid, oid, mid = order.program_id, order.id, order.holder
        reference, fingerprint = idempotency
        record = audit.new_record(pid, "order.transition", "order", oid, order.created_at,
                                  {"to": order.status, "reason": "points held", "points": order.points})
        extra = [
            audited(self.store._put_new({"pk": order_pk(pid, oid), "sk": "ORDER", **order.attributes(),
                                         "gsi1pk": f"P#{pid}#ORDERS", "gsi1sk": f"{order.created_at}#{oid}"}),
                    self.table, record),
            self.store._put_new({"pk": member_pk(pid, mid), "sk": f"ORDER#{oid}", "order_id": oid,
                                 "created_at": order.created_at}),
            Watchlist(self.store).watch_item("order", pid, oid, order.created_at),  # until COMPLETED or FAILED
            *more,
        ]
        return self.store.post(pid, mid, ("order", reference, fingerprint), result, hold, order.created_at, extra)

    def create_batch_reward(self, order: Order, more: list[dict[str, Any]]) -> bool:
        """A batch line's reward (its id derived from the line and attempt) and ``more`` items in one
        transaction; False when that reward already exists (a re-driven line)."""
        pid, oid = order.program_id, order.id
        record = audit.new_record(pid, "order.transition", "order", oid, order.created_at,
                                  {"to": order.status, "reason": "batch line accepted", "kind": "reward",
                                   "batch_id": order.batch_id})
        put = audited(self.store._put_new({"pk": order_pk(pid, oid), "sk": "ORDER", **order.attributes(),
                                           "gsi1pk": f"P#{pid}#ORDERS", "gsi1sk": f"{order.created_at}#{oid}"}),
                      self.table, record)
        return self.store.transact_first([put, *more])

    def replay_of(self, program_id: str, kind: str, reference: str) -> Replay | None:
        """The idempotency record an earlier request of ``kind`` (``order``, ``reward``) wrote under
        ``reference`` (its Idempotency-Key), or None."""
        return self.store.replay_of(program_id, kind, reference)

    def get(self, program_id: str, order_id: str, consistent: bool = True) -> Order | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(order_pk(program_id, order_id), "ORDER"),
                                ConsistentRead=consistent)
        return Order.from_item(from_item(out["Item"])) if "Item" in out else None

    def require(self, program_id: str, order_id: str) -> Order:
        found = self.get(program_id, order_id)
        if found is None:
            raise OrderNotFound(f"order {order_id} does not exist")
        return found

    def list_for_member(
        self, program_id: str, member_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Order], str | None]:
        pointers, next_cursor = self.store.member_page(program_id, member_id, "ORDER#", limit, cursor)
        return self._batch_get(program_id, [p["order_id"] for p in pointers]), next_cursor

    def _batch_get(self, program_id: str, order_ids: list[str]) -> list[Order]:
        if not order_ids:
            return []
        found: dict[str, Order] = {}
        keys = [item_key(order_pk(program_id, oid), "ORDER") for oid in order_ids]
        pending = {self.table: {"Keys": keys}}
        while pending:
            out = self.ddb.batch_get_item(RequestItems=pending)
            for raw in out.get("Responses", {}).get(self.table, []):
                order = Order.from_item(from_item(raw))
                found[order.id] = order
            pending = out.get("UnprocessedKeys") or {}
        return [found[oid] for oid in order_ids if oid in found]

    def order_update(
        self,
        program_id: str,
        order_id: str,
        to: str | None,
        allowed_from: tuple[str, ...],
        now: str,
        reason: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An Update (for a transaction) moving the order to ``to`` when its status is in ``allowed_from``.

        Every change but the move to FAILED also needs the order not to be claimed by a release
        (``releasing``, see :meth:`claim_release`): once a release claimed it, the order only fails."""
        names = {"#s": "status"}
        values: dict[str, Any] = {":now": {"S": now}}
        sets = ["updated_at = :now"]
        if to is not None:
            sets.append("#s = :to")
            sets.append("history = list_append(history, :h)")
            values[":to"] = {"S": to}
            entry = {"status": to, "at": now}
            if reason:
                entry["reason"] = reason
            values[":h"] = _av([entry])
        for i, (name, value) in enumerate((fields or {}).items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = _av(value)
            sets.append(f"#f{i} = :f{i}")
        update = {
            "Update": {
                "TableName": self.table,
                "Key": item_key(order_pk(program_id, order_id), "ORDER"),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": _status_in(allowed_from, values) + (
                    "" if to == OrderStatus.FAILED else " AND attribute_not_exists(releasing)"),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        if to is None:
            return update
        record = audit.new_record(program_id, "order.transition", "order", order_id, now,
                                  {"to": to, "from": list(allowed_from), "reason": reason})
        return audited(update, self.table, record)

    def unwatch_item(self, program_id: str, order_id: str) -> dict[str, Any]:
        """Transaction item: the order leaves the sweeper's watch list (it is final)."""
        return Watchlist(self.store).unwatch_item("order", program_id, order_id)

    def claim_release(self, program_id: str, order_id: str, claim: dict[str, Any], now: str) -> Order | None:
        """Claim the order for a release, if it can still fail: PENDING, PROCESSING or ISSUED and not
        delivered. From then on no step moves it forward or delivers it (see :meth:`order_update`),
        so what it holds, drew and was issued stays as the release sees it. A retried release finds
        its claim in place (the first claim is kept). The order after the claim, or None when it
        cannot fail any more (delivered, completed, failed or canceled)."""
        values: dict[str, Any] = {":claim": _av(claim), ":now": {"S": now}}
        condition = _status_in(ORDER_IN_FLIGHT, values) + " AND attribute_not_exists(delivered)"
        claimed = self.store.update_if(
            Key=item_key(order_pk(program_id, order_id), "ORDER"),
            UpdateExpression="SET releasing = if_not_exists(releasing, :claim), updated_at = :now",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return None if claimed is None else Order.from_item(claimed)

    def cash_refund_item(self, program_id: str, order_id: str, refunded: dict[str, Any], now: str) -> dict[str, Any]:
        """Transaction item: record on the order that its owed-back cash was refunded; its condition fails
        when nothing is owed back or the refund is recorded already."""
        return {"Update": {
            "TableName": self.table,
            "Key": item_key(order_pk(program_id, order_id), "ORDER"),
            "UpdateExpression": "SET payment.refunded = :r, updated_at = :now",
            "ConditionExpression": "attribute_exists(payment.owed_back) AND attribute_not_exists(payment.refunded)",
            "ExpressionAttributeValues": {":r": _av(refunded), ":now": {"S": now}},
        }}

    def claim_cancel(self, program_id: str, order_id: str, claim: dict[str, Any], stale_before: str) -> bool:
        """Claim a COMPLETED order for one cancel (``canceling``), unless another cancel holds a claim
        made at or after ``stale_before``; False when the order is not COMPLETED or claimed."""
        return self.store.update_if(
            Key=item_key(order_pk(program_id, order_id), "ORDER"),
            UpdateExpression="SET canceling = :claim",
            ConditionExpression="#s = :completed AND (attribute_not_exists(canceling) OR canceling.#at < :stale)",
            ExpressionAttributeNames={"#s": "status", "#at": "at"},
            ExpressionAttributeValues={":claim": _av(claim), ":completed": {"S": OrderStatus.COMPLETED},
                                       ":stale": {"S": stale_before}},
        ) is not None

    def unclaim_cancel(self, program_id: str, order_id: str, claim_id: str) -> None:
        """Give up the cancel claim ``claim_id`` (the provider refused): the order stays COMPLETED."""
        self.store.update_if(  # None: another cancel's claim (or none) is there; nothing to give up
            Key=item_key(order_pk(program_id, order_id), "ORDER"),
            UpdateExpression="REMOVE canceling",
            ConditionExpression="canceling.#id = :id",
            ExpressionAttributeNames={"#id": "id"},
            ExpressionAttributeValues={":id": {"S": claim_id}},
        )

    def transact(self, items: list[dict[str, Any]]) -> None:
        """Write ``items`` atomically; a failed condition raises StaleCondition with the item's index."""
        self.store.transact(items)

    def settle(
        self, order: Order, posting: Posting, kind: str, update: dict[str, Any], now: str,
        more: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    ) -> Replay | None:
        """Post a capture, release or refund of the order's points together with its status change.

        Capture and release share one guard per order (``settle``), so a hold is resolved at most once.
        """
        pid, oid = order.program_id, order.id
        guard = "refund" if kind == "refund" else "settle"
        return self.store.post(pid, order.holder, (guard, oid, kind), {"kind": kind, "order_id": oid},
                               posting, now, [update, *more])

    # ------------------------------------------------------------ reveals

    def record_reveal(self, program_id: str, order_id: str, reveal_id: str, actor: str, now: str,
                      count: int) -> None:
        record = audit.new_record(program_id, "codes.revealed", "order", order_id, now, {"codes": count})
        self.store.transact([
            self.store._put_new({"pk": order_pk(program_id, order_id), "sk": f"REVEAL#{now}#{reveal_id}",
                                 "actor": actor, "at": now, "codes": count}),
            audit_put(self.table, record),
        ])

    def reveals(self, program_id: str, order_id: str) -> list[dict[str, Any]]:
        out = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :r)",
            ExpressionAttributeValues={":pk": {"S": order_pk(program_id, order_id)}, ":r": {"S": "REVEAL#"}},
        )
        return [strip_keys(from_item(i)) for i in out.get("Items", [])]

    # ------------------------------------------------------------ vouchers

    def voucher_put(self, program_id: str, code_hash: str, voucher: Voucher) -> dict[str, Any]:
        """The transaction item writing a new voucher under its code's keyed hash."""
        return self.store._put_new({"pk": voucher_pk(program_id, code_hash), "sk": "VOUCHER", **voucher.item()})

    def voucher_void(self, program_id: str, code_hash: str, now: str, reason: str) -> dict[str, Any]:
        """The transaction item voiding an ACTIVE voucher of an order canceled or failed; its condition fails
        when the voucher was redeemed or voided meanwhile."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": item_key(voucher_pk(program_id, code_hash), "VOUCHER"),
                "UpdateExpression": "SET #s = :void, voided_at = :now, void_reason = :r",
                "ConditionExpression": "#s = :active",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":void": {"S": VoucherState.VOID},
                                              ":active": {"S": VoucherState.ACTIVE},
                                              ":now": {"S": now}, ":r": {"S": reason}},
            }
        }

    def get_voucher(self, program_id: str, code_hash: str) -> Voucher | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(voucher_pk(program_id, code_hash), "VOUCHER"),
                                ConsistentRead=True)
        return Voucher.from_item(strip_keys(from_item(out["Item"]))) if "Item" in out else None

    def voucher_change(
        self, program_id: str, code_hash: str, to: str, allowed_from: tuple[str, ...], fields: dict[str, Any],
        extra_condition: str = "", extra_values: dict[str, Any] | None = None,
    ) -> Voucher | None:
        """Conditionally change a voucher's status; the voucher after the change, or None when the condition failed."""
        names = {"#s": "status"}
        values: dict[str, Any] = {":to": {"S": to}}
        sets = ["#s = :to"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = _av(value)
            sets.append(f"#f{i} = :f{i}")
        condition = _status_in(allowed_from, values) + (f" AND {extra_condition}" if extra_condition else "")
        values.update({k: _av(v) for k, v in (extra_values or {}).items()})
        changed = self.store.update_if(
            Key=item_key(voucher_pk(program_id, code_hash), "VOUCHER"),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_exists(pk) AND " + condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return None if changed is None else Voucher.from_item(changed)

    # ------------------------------------------------------------ donations

    def donation_items(self, program_id: str, donation: Donation) -> list[dict[str, Any]]:
        """Put the receipt and add to the charity's totals (for one transaction with the order update)."""
        return [
            self.store._put_new({"pk": donation_pk(program_id, donation.id), "sk": "DONATION", **donation.item()}),
            {
                "Update": {
                    "TableName": self.table,
                    "Key": item_key(f"P#{program_id}#CHARITY", f"{donation.charity_id}#{donation.currency}"),
                    "UpdateExpression": "SET charity_id = :c, charity_name = :n, #cur = :cur "
                    "ADD #total :v, donations :one",
                    "ExpressionAttributeNames": {"#cur": "currency", "#total": "total"},
                    "ExpressionAttributeValues": {
                        ":c": {"S": donation.charity_id}, ":n": {"S": donation.charity_name},
                        ":cur": {"S": donation.currency}, ":v": {"N": str(donation.amount)},
                        ":one": {"N": "1"},
                    },
                }
            },
        ]

    def get_donation(self, program_id: str, donation_id: str) -> Donation | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(donation_pk(program_id, donation_id), "DONATION"))
        return Donation.from_item(strip_keys(from_item(out["Item"]))) if "Item" in out else None

    def donation_totals(self, program_id: str) -> list[CharityTotal]:
        out = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"P#{program_id}#CHARITY"}},
            ConsistentRead=True,
        )
        return [CharityTotal.from_item(from_item(i)) for i in out.get("Items", [])]

    # ------------------------------------------------------------ rewards (budget-paid, no points)

    def create_reward(self, order: Order, idempotency: tuple[str, str, str], result: dict[str, Any],
                      more: list[dict[str, Any]] | tuple[dict[str, Any], ...] = ()) -> Replay | None:
        """The reward order with its idempotency guard (and ``more`` items) in one transaction."""
        pid, oid = order.program_id, order.id
        kind, reference, fingerprint = idempotency
        record = audit.new_record(pid, "order.transition", "order", oid, order.created_at,
                                  {"to": order.status, "reason": "reward accepted", "kind": "reward"})
        items = [
            self.store._idem_put(pid, kind, reference, fingerprint, result, order.created_at),
            audited(self.store._put_new({"pk": order_pk(pid, oid), "sk": "ORDER", **order.attributes(),
                                         "gsi1pk": f"P#{pid}#ORDERS", "gsi1sk": f"{order.created_at}#{oid}"}),
                    self.table, record),
            Watchlist(self.store).watch_item("order", pid, oid, order.created_at),  # until COMPLETED or FAILED
            *more,
        ]
        return self.store.transact_guarded(items, pid, kind, reference)
