"""Paid memberships (``treue.logic.memberships``): the request bodies and the answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from treue.core.statuses import MembershipStatus
from treue.handlers.models import Model
from treue.handlers.models.points import BreakdownLine
from treue.logic.models import Reference, Strict

FUTURE_SKEW = timedelta(minutes=5)  # a till's clock a little ahead is not "in the future"


class MembershipStart(Strict):
    """``POST /v1/members/{id}/memberships``: the fee was taken by the partner's payment provider."""

    plan_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="A plan of the program's "
                         "membership_plans")
    payment_reference: Reference = Field(description="The payment of the first period at your payment provider; "
                                         "sending it again is a replay (each payment pays one period, once)")
    starts_at: datetime | None = Field(default=None, description="With a time zone, not in the future; default: "
                                       "now. The first period ends period_months calendar months later")

    @field_validator("starts_at")
    @classmethod
    def _not_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-24T10:00:00Z")
        if value > datetime.now(UTC) + FUTURE_SKEW:
            raise ValueError("lies in the future")
        return value

    def fingerprint_payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class MembershipRenewal(Strict):
    payment_reference: Reference = Field(description="The payment of the next period; sending it again is a "
                                         "replay")


class Price(Model):
    value: int = Field(description="Minor units")
    currency: str


class PlanBought(Model):
    id: str
    name: str
    price: Price
    period_months: int
    tier: str | None = None
    welcome_points: int
    earn_multiplier_bps: int


class Payment(Model):
    payment_reference: str
    amount: Price
    period_start: str
    period_end: str
    paid_at: str


class Membership(Model):
    membership_id: str
    member_id: str
    plan_id: str
    plan: PlanBought = Field(description="The plan as last paid for (its tier and multiplier apply)")
    status: MembershipStatus = Field(description="ended once current_period_end has passed")
    starts_at: str
    current_period_end: str = Field(description="The membership ends here unless renewed before")
    cancel_at_period_end: bool = Field(description="Canceled: it ends at current_period_end (a renewal undoes it)")
    canceled_at: str | None = None
    ended_at: str | None = None
    ended_reason: Literal["lapsed", "canceled"] | None = None
    periods: int = Field(description="Periods paid")
    payments: list[Payment]
    created_at: str


class Welcome(Model):
    points_earned: int = Field(description="The plan's welcome_points, paid once when the membership started "
                                           "(from program:bonus:membership:<plan id>)")
    breakdown: list[BreakdownLine] = Field(default_factory=list)


class MembershipAnswer(Membership):
    welcome: Welcome | None = Field(default=None, description="On the start only")
    replayed: bool = Field(description="true: this payment_reference was already recorded; nothing was written")


class MembershipList(Model):
    items: list[Membership] = Field(description="Oldest first")
