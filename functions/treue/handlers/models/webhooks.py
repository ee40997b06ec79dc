"""Webhooks and the event log: response models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from treue.core.statuses import EndpointStatus, EventType
from treue.handlers.models import Model


class WebhookSecret(Model):
    created_at: str
    expires_at: str | None = Field(default=None, description="A rotated-out secret signs until then")


class WebhookFailure(Model):
    at: str
    attempt: int | None = None
    status_code: int | None = None
    error: str | None = None


class Webhook(Model):
    id: str
    url: str
    event_types: list[EventType | Literal["*"]] = Field(description='Event types, or ["*"] for all')
    description: str | None = None
    status: EndpointStatus = Field(description="active, or failing after a failed delivery (never disabled silently)")
    consecutive_failures: int
    deliveries: int = Field(description="Successful deliveries")
    created_at: str
    last_attempt_at: str | None = None
    last_success_at: str | None = None
    last_failure: WebhookFailure | None = None
    secrets: list[WebhookSecret]


class WebhookCreated(Webhook):
    secret: str = Field(description="The signing secret, shown only now")


class WebhookList(Model):
    items: list[Webhook]


class Event(Model):
    id: str
    type: EventType
    created_at: str
    data: dict[str, Any]


class EventPage(Model):
    items: list[Event]
    next_after: str = Field(description="Ask again with after= this cursor (the log has no end)")
    settle_seconds: int = Field(description="Events younger than this are listed on a later call")


class Redelivered(Model):
    event_id: str
    endpoints: list[str]
