"""Orders, their codes and donations: response models."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from treue.core.statuses import ItemType, OrderStatus
from treue.handlers.models import Model


class OrderAccepted(Model):
    order_id: str
    status: OrderStatus = Field(description="PENDING when accepted; the payout workflow moves it on")
    points: int = Field(description="Points held for the order")
    replayed: bool = Field(description="True when this Idempotency-Key was already used with this body")


class StatusChange(Model):
    status: OrderStatus
    at: str
    reason: str | None = None


class MaskedCode(Model):
    masked: str
    expires_at: str | None = None


class TierDiscount(Model):
    tier: str = Field(description="The member's tier when the order was placed")
    bps: int = Field(description="Its catalog_discount_bps (1 bps = 0.01 %)")
    points_each_before: int = Field(description="One unit's price before the discount")
    points_before: int = Field(description="The order's points before the discount")
    points_after: int = Field(description="The order's points after it: the points held (equal to points), or "
                                          "with points + cash the price that points and cash pay together")


class OrderCash(Model):
    value: int = Field(description="Minor units the partner's till took")
    currency: str
    reference: str = Field(description="The till's receipt id")


class CashOwedBack(Model):
    value: int = Field(description="Minor units owed back to the member (budget:available → cash:owed_back)")
    currency: str
    at: str
    why: str = Field(description="failed | canceled")
    movement: str = Field(description="The budget movement's id")


class CashRefunded(Model):
    value: int = Field(description="Minor units paid back (cash:owed_back → cash:received)")
    currency: str
    reference: str = Field(description="Finance's reference of the refund")
    at: str
    by: str = Field(description="Who recorded it")
    movement: str = Field(description="The budget movement's id")


class OrderPayment(Model):
    points: int = Field(description="The points part: what the order holds (equal to points)")
    cash: OrderCash
    price_points: int = Field(description="The whole price in points (after any tier discount) that points and "
                                          "cash pay together")
    owed_back: CashOwedBack | None = Field(default=None, exclude_if=lambda value: value is None,
                                           description="The order failed or was canceled: its cash is owed back")
    refunded: CashRefunded | None = Field(default=None, exclude_if=lambda value: value is None,
                                          description="Finance recorded that the owed-back cash was paid back "
                                                      "(POST /v1/finance/cash-refunds)")


class Order(Model):
    order_id: str
    member_id: str
    type: ItemType
    item: dict[str, Any]
    status: OrderStatus = Field(description="PENDING | PROCESSING | ISSUED | COMPLETED | FAILED | CANCELED")
    history: list[StatusChange]
    points: int
    face_value: dict[str, Any] = Field(description="{value, currency} of one unit")
    quantity: int
    delivery: dict[str, Any]
    codes: list[MaskedCode]
    tier_discount: TierDiscount | None = Field(
        default=None, exclude_if=lambda value: value is None,
        description="The member's tier catalog discount the points were reduced by (absent: none)")
    payment: OrderPayment | None = Field(
        default=None, exclude_if=lambda value: value is None,
        description="Points + cash: the points held and the cash the till took (absent: points only)")
    failure_reason: str | None = None
    donation_id: str | None = None
    provider: dict[str, Any] | None = None
    delivered: dict[str, Any] | None = Field(default=None,
                                             description="Delivery: method, masked address, time, event id")
    canceled_reason: str | None = None
    created_at: str
    updated_at: str


class OrderList(Model):
    items: list[Order]
    next_cursor: str | None = None


class RevealedCode(Model):
    code: str
    masked: str
    expires_at: str | None = None


class RevealedCodes(Model):
    order_id: str
    codes: list[RevealedCode]


class Donation(Model):
    id: str
    order_id: str
    member_id: str
    charity_id: str
    charity_name: str
    registration_id: str
    country: str
    amount: int = Field(description="Minor units")
    currency: str
    receipt_number: str
    adapter: str = Field(description="How the donation is paid out: recorded = by the operator's transfers")
    created_at: str


class CharityTotal(Model):
    charity_id: str
    charity_name: str
    currency: str
    total: int = Field(description="Minor units donated")
    donations: int


class DonationTotals(Model):
    charities: list[CharityTotal]
