"""The catalog: response models."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from treue.core.statuses import ItemType
from treue.handlers.models import Model


def _absent(value: Any) -> bool:
    """A member's price fields are left out of the answer unless a tier discount applies (the catalog without
    member_id answers as it always did)."""
    return value is None


class Denomination(Model):
    face_value: int = Field(description="Minor units of the item's currency")
    points: int = Field(description="What it costs in this program's points (the member's, with member_id)")
    points_before: int | None = Field(default=None, exclude_if=_absent,
                                      description="With member_id and a tier discount: the price before it")


class OpenValue(Model):
    min: int
    max: int
    min_points: int
    max_points: int
    min_points_before: int | None = Field(default=None, exclude_if=_absent, description="With a tier discount")
    max_points_before: int | None = Field(default=None, exclude_if=_absent, description="With a tier discount")


class TierDiscount(Model):
    tier: str = Field(description="The member's tier")
    bps: int = Field(description="Its catalog_discount_bps, taken off the points prices (1 bps = 0.01 %)")


class PointsCash(Model):
    min_points_bps: int = Field(description="The least share of the points price paid in points (1 bps = 0.01 %); "
                                            "the rest in cash at the program's point value")


class CatalogItem(Model):
    id: str
    type: ItemType = Field(description="gift_card | voucher | charity")
    name: str
    category: str
    countries: list[str]
    currency: str
    denominations: list[Denomination] = Field(description="Fixed values; empty for open-value items")
    open_value: OpenValue | None = Field(default=None, description="Any value from min to max (minor units)")
    min_points: int = Field(description="The cheapest way to get this item, in points")
    min_points_before: int | None = Field(default=None, exclude_if=_absent,
                                          description="With member_id and a tier discount: min_points before it")
    tier_discount: TierDiscount | None = Field(default=None, exclude_if=_absent,
                                               description="With member_id: the member's tier discount in these "
                                                           "prices (absent: none)")
    delivery_methods: list[str]
    cancel_policy: dict[str, Any]
    max_quantity: int
    brand: str | None = None
    fee: dict[str, Any] | None = None
    expiry: dict[str, Any] | None = None
    discount: dict[str, Any] | None = None
    minimum_spend: int | None = None
    validity_days: int | None = None
    terms: str | None = None
    registration_id: str | None = None
    cause: str | None = None
    description: str | None = None
    points_cash: PointsCash | None = Field(default=None, exclude_if=_absent,
                                           description="Points + cash allowed (POST /v1/orders with payment)")


class CatalogPage(Model):
    items: list[CatalogItem]
    next_cursor: str | None = None
