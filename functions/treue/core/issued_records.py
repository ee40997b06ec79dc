"""What an issued order leaves, as typed records built at the store boundary (``treue.store.orders``):
voucher codes at the till, donation receipts and the charities' donation totals.

As in ``treue.core.records``: ``item()`` gives the attributes as stored (absent values left out) and
``from_item`` reads a stored item back (the table's keys ignored), so items written before read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treue.core.statuses import VoucherState


def _present(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` without its absent (None) values: what is stored."""
    return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Voucher:
    """A voucher code as the till sees it, stored under its keyed hash (the code itself is sealed on its
    order). Written ACTIVE when its order is issued; redeeming or voiding it changes ``status`` and sets
    who did it and when. ``status`` is never EXPIRED: that is an ACTIVE code past ``expires_at``
    (:meth:`status_at`)."""

    order_id: str
    item_id: str
    name: str
    discount: dict[str, Any]  # the catalog voucher's discount: kind and percent or value
    currency: str
    face_value: int  # minor units
    minimum_spend: int  # minor units; 0 for none
    status: VoucherState
    masked: str
    issued_at: str
    expires_at: str
    member_id: str | None = None  # a reward's voucher may have no member
    redeemed_at: str | None = None
    redemption_reference: str | None = None  # the till's reference: the same one again is a replay
    redeemed_by: str | None = None
    voided_at: str | None = None
    void_reason: str | None = None
    voided_by: str | None = None

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> Voucher:
        status = VoucherState(data["status"])
        if status == VoucherState.EXPIRED:
            raise ValueError("a voucher is never stored EXPIRED")
        return cls(
            order_id=data["order_id"], item_id=data["item_id"], name=data["name"], discount=data["discount"],
            currency=data["currency"], face_value=data["face_value"], minimum_spend=data["minimum_spend"],
            status=status, masked=data["masked"], issued_at=data["issued_at"], expires_at=data["expires_at"],
            **{name: data.get(name) for name in _VOUCHER_OPTIONAL},
        )

    def item(self) -> dict[str, Any]:
        """The attributes as stored (without the table's keys); absent values are left out."""
        return _present({
            "order_id": self.order_id, "member_id": self.member_id, "item_id": self.item_id, "name": self.name,
            "discount": self.discount, "currency": self.currency, "face_value": self.face_value,
            "minimum_spend": self.minimum_spend, "status": str(self.status), "masked": self.masked,
            "issued_at": self.issued_at, "expires_at": self.expires_at,
            **{name: getattr(self, name) for name in _VOUCHER_OPTIONAL if name != "member_id"},
        })

    def status_at(self, now: str) -> VoucherState:
        """The status the till sees at ``now``: EXPIRED for an ACTIVE code past its expiry."""
        if self.status == VoucherState.ACTIVE and self.expires_at < now:
            return VoucherState.EXPIRED
        return self.status

    def redeemed_with(self, reference: str) -> bool:
        """Whether the till's redemption ``reference`` already redeemed this code (a replay)."""
        return self.status == VoucherState.REDEEMED and self.redemption_reference == reference


_VOUCHER_OPTIONAL = ("member_id", "redeemed_at", "redemption_reference", "redeemed_by", "voided_at", "void_reason",
                     "voided_by")


@dataclass(frozen=True)
class Donation:
    """A donation and its receipt: what a charity order gave (written once, when the order is issued)."""

    id: str  # "don_" and the order id's suffix: the same order always gives the same donation
    order_id: str
    charity_id: str
    charity_name: str
    registration_id: str  # the charity's registration with its authority
    country: str
    amount: int  # minor units
    currency: str
    receipt_number: str
    adapter: str  # how it is paid out: "recorded" = by the operator's periodic transfers
    created_at: str
    member_id: str | None = None

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> Donation:
        return cls(
            id=data["id"], order_id=data["order_id"], charity_id=data["charity_id"],
            charity_name=data["charity_name"], registration_id=data["registration_id"], country=data["country"],
            amount=data["amount"], currency=data["currency"], receipt_number=data["receipt_number"],
            adapter=data["adapter"], created_at=data["created_at"], member_id=data.get("member_id"),
        )

    def item(self) -> dict[str, Any]:
        """The attributes as stored (without the table's keys), as the API answers them."""
        return _present({
            "id": self.id, "order_id": self.order_id, "member_id": self.member_id, "charity_id": self.charity_id,
            "charity_name": self.charity_name, "registration_id": self.registration_id, "country": self.country,
            "amount": self.amount, "currency": self.currency, "receipt_number": self.receipt_number,
            "adapter": self.adapter, "created_at": self.created_at,
        })


@dataclass(frozen=True)
class CharityTotal:
    """What a program's members gave one charity in one currency (added to by every donation)."""

    charity_id: str
    charity_name: str
    currency: str
    total: int  # minor units
    donations: int

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> CharityTotal:
        return cls(charity_id=data["charity_id"], charity_name=data["charity_name"], currency=data["currency"],
                   total=data["total"], donations=data["donations"])

    def item(self) -> dict[str, Any]:
        return {"charity_id": self.charity_id, "charity_name": self.charity_name, "currency": self.currency,
                "total": self.total, "donations": self.donations}
