"""Vouchers at the till: response models."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from treue.core.statuses import VoucherState
from treue.handlers.models import Model


class VoucherStatus(Model):
    code: str = Field(description="Masked")
    status: VoucherState = Field(description="ACTIVE | REDEEMED | VOID | EXPIRED")
    name: str
    discount: dict[str, Any]
    value: dict[str, Any]
    minimum_spend: dict[str, Any]
    expires_at: str
    order_id: str
    redeemed_at: str | None = None
    redemption_reference: str | None = None
    voided_at: str | None = None
    void_reason: str | None = None


class VoucherRedeemed(VoucherStatus):
    replayed: bool
