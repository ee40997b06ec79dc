"""The simulated gift-card provider that ships with Treue.

It behaves like a real provider API without a network: codes are deterministic (a keyed hash of
the order id, so the same order always yields the same codes and none are stored in clear), the
order id is the idempotency key, and failures can be switched on per brand or per order (by the
order's Idempotency-Key) with ``treue simulate fault`` or :func:`set_fault`:

- ``timeout``: the card is issued, then the answer is lost (the retry must not issue twice);
- ``5xx``: the provider is unavailable; nothing is issued;
- ``out_of_stock`` and ``rejected``: terminal refusals.

A fault fails the next ``times`` calls (every call when ``times`` is omitted).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from treue.core import times
from treue.core.statuses import IssuanceStatus
from treue.providers.giftcards import (
    Issuance,
    IssuedCard,
    IssueRequest,
    OutOfStock,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from treue.store.items import from_item, item_key, to_item

FAULT_MODES = ("timeout", "5xx", "out_of_stock", "rejected")
_SEED = b"treue-simulated-provider"  # public on purpose: simulated codes are not value-bearing
_ALWAYS = -1


def _issuance_pk(program_id: str, order_id: str) -> str:
    return f"P#{program_id}#SIMGC#{order_id}"


def _fault_pk(program_id: str) -> str:
    return f"P#{program_id}#SIMFAULT"


def card_code(order_id: str, index: int) -> str:
    digest = hmac.new(_SEED, f"{order_id}:{index}".encode(), hashlib.sha256).hexdigest().upper()
    return "SIM-" + "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def _add_months(start: datetime, months: int) -> datetime:
    month = start.month - 1 + months
    year, month = start.year + month // 12, month % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def set_fault(ddb: Any, table: str, program_id: str, mode: str | None, *, brand: str | None = None,
              order_reference: str | None = None, times: int | None = None) -> dict[str, Any]:
    """Switch a failure on (or off with ``mode=None``) for a brand or one order's Idempotency-Key."""
    if (brand is None) == (order_reference is None):
        raise ValueError("give a brand or an order reference")
    if mode is not None and mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
    sk = f"BRAND#{brand}" if brand else f"ORDER#{order_reference}"
    if mode is None:
        ddb.delete_item(TableName=table, Key=item_key(_fault_pk(program_id), sk))
        return {"target": sk, "mode": None}
    remaining = _ALWAYS if times is None else times
    ddb.put_item(TableName=table, Item=to_item({"pk": _fault_pk(program_id), "sk": sk, "mode": mode,
                                                "remaining": remaining}))
    return {"target": sk, "mode": mode, "times": times}


def _issuance(provider: str, order_id: str, data: dict[str, Any]) -> Issuance:
    cards = [IssuedCard(code=card_code(order_id, i), expires_at=data.get("expires_at"))
             for i in range(data["quantity"])]
    return Issuance(provider=provider, reference=data["reference"], status=data["status"], cards=cards)


class SimulatedProvider:
    name = "simulated"

    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    # ------------------------------------------------------------ faults

    def _take_fault(self, program_id: str, targets: list[str]) -> str | None:
        out = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": _fault_pk(program_id)}},
            ConsistentRead=True,
        )
        faults = {f["sk"]: f for f in (from_item(i) for i in out.get("Items", []))}
        for target in targets:
            fault = faults.get(target)
            if not fault:
                continue
            if fault["remaining"] == _ALWAYS:
                return fault["mode"]
            try:
                self.ddb.update_item(
                    TableName=self.table,
                    Key=item_key(_fault_pk(program_id), target),
                    UpdateExpression="ADD remaining :minus",
                    ConditionExpression="remaining > :zero",
                    ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
                )
                return fault["mode"]
            except ClientError as err:
                if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        return None

    # ------------------------------------------------------------ the provider API

    def issue(self, request: IssueRequest) -> Issuance:
        existing = self.status(request.program_id, request.order_id)
        fault = self._take_fault(
            request.program_id, [f"ORDER#{request.client_reference}", f"BRAND#{request.brand}"]
        )
        if fault == "5xx":
            raise ProviderUnavailable("simulated provider answered 503")
        if existing is not None:  # idempotent by order id: the first issuance, never a second one
            if fault == "timeout":
                raise ProviderTimeout("simulated provider timed out again")
            return existing
        if fault == "out_of_stock":
            raise OutOfStock(f"no {request.brand} cards of {request.face_value} {request.currency} in stock")
        if fault == "rejected":
            raise ProviderRejected("simulated provider rejected the order")
        now = datetime.now(UTC)
        expires = _add_months(now, request.expiry_months).date().isoformat() if request.expiry_months else None
        record = {
            "pk": _issuance_pk(request.program_id, request.order_id),
            "sk": "ISSUANCE",
            "reference": "sim_" + hashlib.sha256(request.order_id.encode()).hexdigest()[:20],
            "status": IssuanceStatus.ISSUED,
            "brand": request.brand,
            "item_id": request.item_id,
            "currency": request.currency,
            "face_value": request.face_value,
            "quantity": request.quantity,
            "expires_at": expires,
            "issued_at": times.iso(now, "milliseconds"),
            "calls": 1,
        }
        try:
            self.ddb.put_item(TableName=self.table, Item=to_item(record),
                              ConditionExpression="attribute_not_exists(pk)")
            issued = _issuance(self.name, request.order_id, record)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            existing = self.status(request.program_id, request.order_id)  # a concurrent call issued it first
            if existing is None:
                raise
            issued = existing
        if fault == "timeout":
            raise ProviderTimeout("simulated provider issued the card but the answer timed out")
        return issued

    def status(self, program_id: str, order_id: str) -> Issuance | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(_issuance_pk(program_id, order_id), "ISSUANCE"),
                                ConsistentRead=True)
        if "Item" not in out:
            return None
        return _issuance(self.name, order_id, from_item(out["Item"]))

    def cancel(self, program_id: str, order_id: str) -> Issuance | None:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=item_key(_issuance_pk(program_id, order_id), "ISSUANCE"),
                UpdateExpression="SET #s = :canceled",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":canceled": {"S": IssuanceStatus.CANCELED}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        return self.status(program_id, order_id)

    def issuance_count(self, program_id: str, order_id: str) -> int:
        """How many issuances exist for an order (0 or 1: the idempotency key at work)."""
        return 0 if self.status(program_id, order_id) is None else 1
