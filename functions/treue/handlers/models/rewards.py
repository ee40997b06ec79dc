"""Rewards issued from the budget: response models."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from treue.core.statuses import ItemType, OrderStatus
from treue.handlers.models import Model
from treue.handlers.models.orders import MaskedCode, StatusChange


class RewardAccepted(Model):
    reward_id: str
    status: OrderStatus = Field(description="PENDING when accepted; the payout workflow moves it on")
    replayed: bool = Field(description="True when this Idempotency-Key was already used with this body")


class Reward(Model):
    reward_id: str
    type: ItemType
    item: dict[str, Any]
    recipient: dict[str, Any]
    reference: str | None = None
    member_id: str | None = None
    batch_id: str | None = None
    message: str | None = None
    status: OrderStatus = Field(description="PENDING | PROCESSING | ISSUED | COMPLETED | FAILED | CANCELED")
    history: list[StatusChange]
    face_value: dict[str, Any] = Field(description="{value, currency}")
    delivery: dict[str, Any]
    codes: list[MaskedCode]
    failure_reason: str | None = None
    provider: dict[str, Any] | None = None
    delivered: dict[str, Any] | None = None
    funds: dict[str, Any] | None = Field(default=None, description="What the budget paid: face, fee, currency")
    created_at: str
    updated_at: str
