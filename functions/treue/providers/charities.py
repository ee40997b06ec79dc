"""The charity adapter: turns a donation order into a donation and its receipt.

Treue ships the recording adapter: the operator pays charities by its own periodic transfers, so the
adapter records each donation (with the charity's registration id, amount and a receipt number)
and the per-charity totals those transfers are made from. An adapter for a donation platform's API
would implement the same ``donate`` with the order id as its idempotency key.
"""

from __future__ import annotations

from typing import Protocol

from treue.core.issued_records import Donation
from treue.core.records import Order


class CharityAdapter(Protocol):
    name: str

    def donate(self, order: Order, now: str) -> Donation:
        """The donation record (receipt) of ``order``; the same order always gives the same id."""


class RecordingCharityAdapter:
    name = "recorded"

    def donate(self, order: Order, now: str) -> Donation:
        item = order.item
        suffix = order.id.split("_", 1)[1]
        return Donation(
            id="don_" + suffix,
            order_id=order.id,
            member_id=order.member_id,
            charity_id=item["id"],
            charity_name=item["name"],
            registration_id=item["registration_id"],
            country=item["country"],
            amount=order.face_value * order.quantity,
            currency=order.currency,
            receipt_number=f"TRD-{now[:10].replace('-', '')}-{suffix[-8:].upper()}",
            adapter=self.name,
            created_at=now,
        )
