"""The gift-card provider interface and the errors the payout workflow's Retry/Catch match by name.

A provider issues, reports and cancels the cards of one order. The order id is the provider's
idempotency key: issuing the same order twice returns the first issuance, so a retry after a
timeout (when the provider may already have issued) never issues twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ProviderError(Exception):
    """Base of provider failures; the class name is the error the state machine sees."""

    reason = "provider_error"


class ProviderTimeout(ProviderError):
    """No answer in time; the provider may have issued. Retried with the same idempotency key."""

    reason = "provider_timeout"


class ProviderUnavailable(ProviderError):
    """The provider answered 5xx or throttled. Retried with backoff and jitter."""

    reason = "provider_unavailable"


class OutOfStock(ProviderError):
    """The provider has no cards of this brand and value. Terminal: the order fails."""

    reason = "out_of_stock"


class ProviderRejected(ProviderError):
    """The provider refused the request (account, compliance, value). Terminal: the order fails."""

    reason = "provider_rejected"


@dataclass(frozen=True)
class IssueRequest:
    order_id: str
    program_id: str
    client_reference: str
    item_id: str
    brand: str
    currency: str
    face_value: int
    quantity: int
    expiry_months: int | None = None


@dataclass(frozen=True)
class IssuedCard:
    code: str
    pin: str | None = None
    expires_at: str | None = None


@dataclass(frozen=True)
class Issuance:
    provider: str
    reference: str
    status: str  # an IssuanceStatus: ISSUED | CANCELED
    cards: list[IssuedCard] = field(default_factory=list)


class GiftCardProvider(Protocol):
    name: str

    def issue(self, request: IssueRequest) -> Issuance: ...

    def status(self, program_id: str, order_id: str) -> Issuance | None: ...

    def cancel(self, program_id: str, order_id: str) -> Issuance | None: ...
