"""Stored records as typed values instead of dicts, built at the store boundary.

A store returns these and accepts them; logic and handlers read their attributes. ``item()`` gives the
attributes as stored (the names in DynamoDB do not change, absent values are left out) and ``from_item``
reads a stored item back (the table's keys already stripped), so items written before read the same.

Converted: webhook endpoints, events, batches, batch lines, and orders (rewards are orders of kind
"reward"; an order's stored attributes are ``attributes()``, since ``item`` is its catalog item).
What an issued order leaves (vouchers, donations and the charities' totals) is in
``treue.core.issued_records``, finance report jobs in ``treue.core.report_records``: a function that
needs none of them does not create their classes at its cold start.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from treue.core.statuses import (
    BatchStatus,
    EndpointStatus,
    EventType,
    ItemType,
    LineStatus,
    OrderStatus,
)

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


@dataclass(frozen=True)
class Batch:
    """A batch of reward lines (bulk issuance): its status, its runs and what its accepted lines cost.

    Written whole when the batch is accepted (``treue.store.batches.BatchStore.create``); a run changes
    only its status, ``queued_run``/``runs``, ``updated_at``, ``completed_at`` and ``halted_reason``."""

    id: str
    program_id: str
    status: BatchStatus
    lines: int  # submitted, rejected ones included
    accepted: int
    tolerated_failure_percentage: int
    partial: bool
    source: str  # "inline" or "upload"
    actor: str
    client_reference: str  # the Idempotency-Key that created it
    created_at: str
    updated_at: str
    queued_run: int = 1  # the run queued last: the first on acceptance, one more per retry
    runs: int = 0  # the runs begun
    rejected: int = 0
    cost: dict[str, int] = field(default_factory=dict)  # currency → minor units the accepted lines draw
    name: str | None = None
    completed_at: str | None = None  # when its last run ended
    halted_reason: str | None = None

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> Batch:
        return cls(
            id=data["id"], program_id=data["program_id"], status=BatchStatus(data["status"]), lines=data["lines"],
            accepted=data["accepted"], tolerated_failure_percentage=data["tolerated_failure_percentage"],
            partial=data["partial"], source=data["source"], actor=data["actor"],
            client_reference=data["client_reference"], created_at=data["created_at"], updated_at=data["updated_at"],
            queued_run=data["queued_run"], runs=data.get("runs", 0), rejected=data.get("rejected", 0),
            cost=dict(data.get("cost") or {}), name=data.get("name"), completed_at=data.get("completed_at"),
            halted_reason=data.get("halted_reason"),
        )

    def item(self) -> dict[str, Any]:
        """The attributes as stored (without the table's keys); absent values are left out."""
        out: dict[str, Any] = {
            "id": self.id, "program_id": self.program_id, "name": self.name, "status": str(self.status),
            "queued_run": self.queued_run, "runs": self.runs, "lines": self.lines, "accepted": self.accepted,
            "rejected": self.rejected, "cost": dict(self.cost),
            "tolerated_failure_percentage": self.tolerated_failure_percentage, "partial": self.partial,
            "source": self.source, "actor": self.actor, "client_reference": self.client_reference,
            "created_at": self.created_at, "updated_at": self.updated_at, "completed_at": self.completed_at,
            "halted_reason": self.halted_reason,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class BatchLine:
    """One line of a batch: its reward request and where it is. An accepted line starts pending with
    what its reward is and costs; a line refused at submission is stored rejected with the reason."""

    program_id: str
    batch_id: str
    line: int  # 1 = the first line (in a CSV: the first row after the header)
    status: LineStatus
    attempt: int  # 0 for a rejected line; a retry of a failed line starts the next
    updated_at: str
    request: dict[str, Any] = field(default_factory=dict)  # the reward request as JSON ({} when rejected)
    run: int = 0  # the run that last started or failed it
    reference: str | None = None
    type: ItemType | None = None  # an accepted line's reward: what it is, its item, value and cost
    item_id: str | None = None
    face_value: int | None = None  # minor units
    currency: str | None = None
    cost: int | None = None  # what it draws from the budget (face value and fee), minor units
    reward_id: str | None = None  # the current attempt's reward
    failure_reason: str | None = None
    failure_detail: str | None = None
    issued_at: str | None = None

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> BatchLine:
        kind = data.get("type")
        return cls(
            program_id=data["program_id"], batch_id=data["batch_id"], line=data["line"],
            status=LineStatus(data["status"]), attempt=data["attempt"], updated_at=data["updated_at"],
            request=data.get("request") or {}, run=data.get("run", 0), reference=data.get("reference"),
            type=None if kind is None else ItemType(kind), item_id=data.get("item_id"),
            face_value=data.get("face_value"), currency=data.get("currency"), cost=data.get("cost"),
            reward_id=data.get("reward_id"), failure_reason=data.get("failure_reason"),
            failure_detail=data.get("failure_detail"), issued_at=data.get("issued_at"),
        )

    def item(self) -> dict[str, Any]:
        """The attributes as stored (without the table's keys); absent values are left out."""
        out: dict[str, Any] = {
            "program_id": self.program_id, "batch_id": self.batch_id, "line": self.line,
            "reference": self.reference, "request": self.request,
            "type": None if self.type is None else str(self.type), "item_id": self.item_id,
            "face_value": self.face_value, "currency": self.currency, "cost": self.cost,
            "status": str(self.status), "attempt": self.attempt, "run": self.run, "reward_id": self.reward_id,
            "failure_reason": self.failure_reason, "failure_detail": self.failure_detail,
            "issued_at": self.issued_at, "updated_at": self.updated_at,
        }
        return {k: v for k, v in out.items() if v is not None}

    @property
    def recipient(self) -> dict[str, Any]:
        """The request's recipient (email, member_id, external_id, name); empty for a rejected line."""
        recipient: dict[str, Any] = self.request.get("recipient") or {}
        return recipient


@dataclass(frozen=True)
class Order:
    """A redemption order, or a reward (``kind`` "reward": paid from the budget, no points), as stored.

    Written whole when it is placed (``treue.store.orders.OrderStore.create``, ``create_reward``,
    ``create_batch_reward``); a step changes its status (with a ``history`` entry) and the fields that
    step sets (codes, provider, donation, delivery, funds, failure, cancel), a release or a cancel
    claims it first (``releasing``, ``canceling``)."""

    id: str
    program_id: str
    type: ItemType
    item_id: str
    item: dict[str, Any]  # the catalog item as it was when ordered
    face_value: int  # minor units, each
    currency: str
    quantity: int
    points: int  # 0 for a reward
    points_each: int
    delivery: dict[str, Any]  # method, and email for "email"
    status: OrderStatus
    history: list[dict[str, Any]]  # every status change: status, at, reason
    actor: str
    client_reference: str  # the Idempotency-Key (a batch line's reward: "<batch id>:<reference>")
    created_at: str
    updated_at: str
    codes: list[dict[str, Any]] = field(default_factory=list)  # sealed codes: sealed, masked, hash, expires_at
    kind: str | None = None  # "reward" for a reward; absent for a points order
    member_id: str | None = None  # every points order's; a reward's recipient may be no member
    recipient: dict[str, Any] | None = None  # a reward's
    reference: str | None = None  # a reward's own reference
    message: str | None = None
    batch_id: str | None = None  # a batch line's reward: its batch, line and attempt
    batch_line: int | None = None
    attempt: int | None = None
    issued_at: str | None = None
    provider: dict[str, Any] | None = None  # a gift card's: name, reference
    donation_id: str | None = None
    delivered: dict[str, Any] | None = None  # event_id, method, at, to
    completed_at: str | None = None
    funds: dict[str, Any] | None = None  # what the budget paid: currency, face, fee, at
    funds_returned_at: str | None = None
    failure_reason: str | None = None
    failure_detail: str | None = None
    canceled_reason: str | None = None
    canceled_by: str | None = None
    releasing: dict[str, Any] | None = None  # a release's claim: at, reason, error, detail
    canceling: dict[str, Any] | None = None  # a cancel's claim: id, at, by
    tier_discount: dict[str, Any] | None = None  # a points order's tier discount: tier, bps, points before, after
    payment: dict[str, Any] | None = None  # points + cash: points, cash {value, currency, reference}, price, owed_back

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> Order:
        """An order as read (table and index keys are ignored)."""
        return cls(
            id=data["id"], program_id=data["program_id"], type=ItemType(data["type"]), item_id=data["item_id"],
            item=data["item"], face_value=data["face_value"], currency=data["currency"], quantity=data["quantity"],
            points=data["points"], points_each=data["points_each"], delivery=data["delivery"],
            status=OrderStatus(data["status"]), history=list(data.get("history") or []), actor=data["actor"],
            client_reference=data["client_reference"],
            created_at=data["created_at"], updated_at=data["updated_at"], codes=list(data.get("codes") or []),
            **{name: data.get(name) for name in _ORDER_OPTIONAL},
        )

    def attributes(self) -> dict[str, Any]:
        """The attributes as stored (without the table's keys); absent values are left out. (Not ``item()``
        as in the other records: ``item`` is the order's catalog item.)"""
        out: dict[str, Any] = {
            "id": self.id, "program_id": self.program_id, "type": str(self.type), "item_id": self.item_id,
            "item": self.item, "face_value": self.face_value, "currency": self.currency, "quantity": self.quantity,
            "points": self.points, "points_each": self.points_each, "delivery": self.delivery,
            "status": str(self.status), "history": self.history, "actor": self.actor,
            "client_reference": self.client_reference,
            "created_at": self.created_at, "updated_at": self.updated_at, "codes": self.codes,
            **{name: getattr(self, name) for name in _ORDER_OPTIONAL},
        }
        return {k: v for k, v in out.items() if v is not None}

    @property
    def is_reward(self) -> bool:
        return self.kind == "reward"

    @property
    def holder(self) -> str:
        """The member whose points a points order holds (every points order has one; a reward may not)."""
        if self.member_id is None:
            raise ValueError(f"order {self.id} holds no member's points")
        return self.member_id

    @property
    def item_name(self) -> str:
        name: str = self.item["name"]
        return name


_ORDER_OPTIONAL = ("kind", "member_id", "recipient", "reference", "message", "batch_id",
                   "batch_line", "attempt", "issued_at", "provider", "donation_id", "delivered", "completed_at",
                   "funds", "funds_returned_at", "failure_reason", "failure_detail", "canceled_reason",
                   "canceled_by", "releasing", "canceling", "tier_discount", "payment")

