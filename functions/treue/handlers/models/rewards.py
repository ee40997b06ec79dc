"""Rewards issued from the budget: response models."""

from __future__ import annotations

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
    item: dict
    recipient: dict
    reference: str | None = None
    member_id: str | None = None
    batch_id: str | None = None
    message: str | None = None
    status: OrderStatus = Field(description="PENDING | PROCESSING | ISSUED | COMPLETED | FAILED | CANCELED")
    history: list[StatusChange]
    face_value: dict = Field(description="{value, currency}")
    delivery: dict
    codes: list[MaskedCode]
    failure_reason: str | None = None
    provider: dict | None = None
    delivered: dict | None = None
    funds: dict | None = Field(default=None, description="What the budget paid: face, fee, currency")
    created_at: str
    updated_at: str
