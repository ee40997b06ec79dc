"""Stored records as typed values instead of dicts, built at the store boundary.

A store returns these and accepts them; logic and handlers read their attributes. ``item()`` gives the
attributes as stored (the names in DynamoDB do not change, absent values are left out) and ``from_item``
reads a stored item back (the table's keys already stripped), so items written before read the same.

Converted so far: webhook endpoints and events. Orders (and rewards), batches and batch lines are
still dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from treue.core.statuses import EndpointStatus, EventType

ALL_EVENTS = "*"  # an endpoint's event types: every type


@dataclass(frozen=True)
class WebhookSecret:
    """One signing secret of an endpoint, sealed; a rotated-out one signs until ``expires_at``."""

    sealed: str
    created_at: str
    expires_at: str | None = None

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> WebhookSecret:
        return cls(sealed=data["sealed"], created_at=data["created_at"], expires_at=data.get("expires_at"))

    def item(self) -> dict[str, Any]:
        out = {"sealed": self.sealed, "created_at": self.created_at}
        if self.expires_at is not None:
            out["expires_at"] = self.expires_at
        return out

    def signs_at(self, now: str) -> bool:
        return not self.expires_at or self.expires_at > now


@dataclass(frozen=True)
class WebhookEndpoint:
    """A program's webhook endpoint: where its events go, its secrets and its delivery health."""

    id: str
    program_id: str
    url: str
    event_types: tuple[str, ...]  # EventType values, or ("*",) for all
    created_at: str
    secrets: tuple[WebhookSecret, ...]
    status: EndpointStatus = EndpointStatus.ACTIVE
    description: str | None = None
    created_by: str | None = None
    consecutive_failures: int = 0
    deliveries: int = 0  # successful ones
    last_attempt_at: str | None = None
    last_success_at: str | None = None
    last_failure: dict[str, Any] | None = None  # attempt, event_id, status_code and/or error, at
    updated_at: str | None = None

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> WebhookEndpoint:
        return cls(
            id=data["id"], program_id=data["program_id"], url=data["url"],
            event_types=tuple(data.get("event_types") or ()), created_at=data["created_at"],
            secrets=tuple(WebhookSecret.from_item(s) for s in data.get("secrets") or ()),
            status=EndpointStatus(data.get("status") or EndpointStatus.ACTIVE),
            description=data.get("description"), created_by=data.get("created_by"),
            consecutive_failures=int(data.get("consecutive_failures") or 0),
            deliveries=int(data.get("deliveries") or 0), last_attempt_at=data.get("last_attempt_at"),
            last_success_at=data.get("last_success_at"), last_failure=data.get("last_failure"),
            updated_at=data.get("updated_at"),
        )

    def item(self) -> dict[str, Any]:
        """The attributes as stored (without the table's keys); absent values are left out."""
        out: dict[str, Any] = {
            "id": self.id, "program_id": self.program_id, "url": self.url, "event_types": list(self.event_types),
            "description": self.description, "status": str(self.status),
            "consecutive_failures": self.consecutive_failures, "deliveries": self.deliveries,
            "secrets": [s.item() for s in self.secrets], "created_at": self.created_at,
            "created_by": self.created_by, "last_attempt_at": self.last_attempt_at,
            "last_success_at": self.last_success_at, "last_failure": self.last_failure,
            "updated_at": self.updated_at,
        }
        return {k: v for k, v in out.items() if v is not None}

    def subscribes(self, event_type: str) -> bool:
        return ALL_EVENTS in self.event_types or event_type in self.event_types

    def with_secrets(self, secrets: tuple[WebhookSecret, ...]) -> WebhookEndpoint:
        return replace(self, secrets=secrets)


@dataclass(frozen=True)
class Event:
    """One entry of a program's event log, as read back (events are written as transaction items by
    ``treue.store.events.event_put``, and never changed)."""

    id: str
    program_id: str
    type: EventType
    created_at: str
    data: dict[str, Any]
    position: str | None = None  # the log position (``gsi1sk``): "<clock>#<id>"
    expires_at: int | None = None  # epoch seconds: the table's TTL drops the event then

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> Event:
        return cls(id=data["id"], program_id=data["program_id"], type=EventType(data["type"]),
                   created_at=data["created_at"], data=data.get("data") or {}, position=data.get("gsi1sk"),
                   expires_at=data.get("expires_at"))

    def public(self) -> dict[str, Any]:
        """What receivers see of an event: the webhook body and the log entry."""
        return {"id": self.id, "type": str(self.type), "created_at": self.created_at, "data": self.data}
