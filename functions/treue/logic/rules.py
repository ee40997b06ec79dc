"""Earning rules: what an admin writes (issue 16 item 2), checked as a whole before anything stores it.

A rule says when it pays (``trigger`` and ``conditions``), what it pays (exactly one ``effect``), how often
(``limits``) and while when (``starts_at`` ≤ occurred_at < ``ends_at``); ``priority`` and ``stackable`` decide
how it combines with the others (``treue.logic.earning`` evaluates them). ``RuleDefinition`` is the body of
``POST``/``PUT /v1/rules``; ``Rule`` is a stored version of it (``id`` and ``version``).

Not built yet: the rules API, their storage and versions, and the wiring into accrual; this module and
``treue.logic.earning`` are the pure part those will call.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from treue.logic.models import MinorUnits, Strict

Trigger = Literal["purchase", "activity", "enrollment", "birthday", "referral", "milestone"]
TRIGGERS: tuple[Trigger, ...] = ("purchase", "activity", "enrollment", "birthday", "referral", "milestone")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
Period = Literal["week", "month", "year"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]  # as on purchase lines: matched exactly
RuleId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
Count = Annotated[int, Field(ge=1, le=10**6, strict=True)]
Points = Annotated[int, Field(ge=1, le=10**9, strict=True)]

# Conditions and effects that only a purchase can meet or pay
PURCHASE_CONDITIONS = ("category", "sku", "min_amount")
PURCHASE_EFFECTS = ("multiplier_bps", "points_per_unit", "cashback_bps")
MAX_MULTIPLIER_BPS = 1_000_000  # 100×


def _one_or_many(value: Any) -> Any:
    """A condition on one value may be written as that value: ``"books"`` means ``["books"]``."""
    return [value] if isinstance(value, str) else value


Names = Annotated[list[Name], BeforeValidator(_one_or_many), Field(min_length=1, max_length=50)]
MilestoneMetric = Literal["purchases", "spend", "points", "membership_years"]


class Milestone(Strict):
    """A threshold of the member's own history: the rule pays once per member, when it is reached.

    ``purchases``: purchases accrued (that earned points or not); ``spend``: their amounts summed (minor units of
    the program currency); ``points``: points earned in the member's lifetime; ``membership_years``: full years
    since enrollment (paid by the daily occasions schedule, the others on the purchase that reaches them)."""

    metric: MilestoneMetric
    threshold: int = Field(ge=1, le=10**13, strict=True)


class Conditions(Strict):
    """All given conditions must hold (and); a list means any of its values (or). None given: always."""

    category: Names | None = Field(default=None, description="Purchase lines of this category (or these)")
    sku: Names | None = Field(default=None, description="Purchase lines of this sku (or these)")
    min_amount: MinorUnits | None = Field(default=None, description="The purchase amount is at least this "
                                          "(minor units of the program currency)")
    channel: Names | None = Field(default=None, description="The event's channel, e.g. store, web, app")
    weekdays: list[Weekday] | None = Field(default=None, min_length=1, max_length=7,
                                           description="On these days of the week (occurred_at's own offset)")
    date_from: date | None = Field(default=None, description="On or after this day (occurred_at's own offset)")
    date_to: date | None = Field(default=None, description="On or before this day (occurred_at's own offset)")
    tier: Names | None = Field(default=None, description="Members in this tier (or these)")
    segment: Names | None = Field(default=None, description="Members in this segment (or any of these)")
    activity_type: Names | None = Field(default=None, description="Activities of this type (or these)")
    milestone: Milestone | None = Field(default=None, description="Milestone rules only (and required there): "
                                        "the metric and threshold whose reaching pays the rule, once per member")

    @field_validator("weekdays")
    @classmethod
    def _distinct_days(cls, value: list[Weekday] | None) -> list[Weekday] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("names a weekday twice")
        return value

    @model_validator(mode="after")
    def _dates(self) -> Conditions:
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ValueError("date_to lies before date_from")
        return self

    def given(self) -> set[str]:
        return {name for name in type(self).model_fields if getattr(self, name) is not None}


class Effect(Strict):
    """What the rule pays: exactly one of the effects (a referral's two amounts count as one)."""

    multiplier_bps: int | None = Field(default=None, ge=10_001, le=MAX_MULTIPLIER_BPS, strict=True,
                                       description="Matching lines earn their base points × this / 10000 "
                                       "(20000 = 2×: the rule adds the base once more)")
    points: Points | None = Field(default=None, description="A fixed bonus, once per event")
    points_per_unit: Points | None = Field(default=None, description="Per unit (quantity) of the matching lines")
    cashback_bps: int | None = Field(default=None, ge=1, le=10_000, strict=True,
                                     description="This share of the matching lines' amount, paid as the points "
                                     "worth that money at the program's point value (rounded down)")
    referrer_points: int | None = Field(default=None, ge=0, le=10**9, strict=True)
    referee_points: int | None = Field(default=None, ge=0, le=10**9, strict=True)

    @field_validator("multiplier_bps", mode="before")
    @classmethod
    def _multiplier(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value <= 10_000:
            raise ValueError("a multiplier of 10000 bps (1×) or less adds nothing; 20000 means 2×")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Effect:
        given = self.kinds()
        if len(given) != 1:
            named = ", ".join(given) if given else "none"
            raise ValueError("give exactly one of multiplier_bps, points, points_per_unit, cashback_bps or "
                             f"referrer_points/referee_points (given: {named})")
        if given == ["referral"] and not (self.referrer_points or self.referee_points):
            raise ValueError("a referral effect pays referrer_points or referee_points (or both)")
        return self

    def kinds(self) -> list[str]:
        kinds = [name for name in ("multiplier_bps", "points", "points_per_unit", "cashback_bps")
                 if getattr(self, name) is not None]
        if self.referrer_points is not None or self.referee_points is not None:
            kinds.append("referral")
        return kinds

    @property
    def kind(self) -> str:
        return self.kinds()[0]


class PeriodLimit(Strict):
    times: Count
    period: Period = Field(description="Calendar week (Monday first), month or year")


class Limits(Strict):
    """How often a rule pays a member (each event it pays is one time), and how many points it pays at all."""

    per_member_per_day: Count | None = None
    per_member_per_period: PeriodLimit | None = None
    per_member_lifetime: Count | None = None
    budget_points: Points | None = Field(default=None, description="All members together; the last payment "
                                         "is cut to what is left")


class RuleDefinition(Strict):
    """An earning rule as an admin writes it (``POST``/``PUT /v1/rules``)."""

    name: str = Field(min_length=1, max_length=200)
    trigger: Trigger
    conditions: Conditions = Field(default_factory=Conditions)
    effect: Effect
    limits: Limits = Field(default_factory=Limits)
    starts_at: datetime | None = Field(default=None, description="In force from (inclusive); default: always")
    ends_at: datetime | None = Field(default=None, description="In force until (exclusive); default: forever")
    priority: int = Field(default=0, ge=-10**6, le=10**6, strict=True,
                          description="Higher first; equal priorities in rule id order")
    stackable: bool = Field(default=True, description="False: a line this rule pays earns from no rule after it")

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-12-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> RuleDefinition:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must lie after starts_at")
        kind = self.effect.kind
        if self.trigger != "purchase":
            if kind in PURCHASE_EFFECTS:
                raise ValueError(f"{kind} applies to purchase rules only (this rule's trigger is {self.trigger})")
            wrong = sorted(self.conditions.given() & set(PURCHASE_CONDITIONS))
            if wrong:
                raise ValueError(f"the condition {wrong[0]} applies to purchase rules only "
                                 f"(this rule's trigger is {self.trigger})")
        if self.trigger != "activity" and self.conditions.activity_type is not None:
            raise ValueError("the condition activity_type applies to activity rules only")
        if (self.conditions.milestone is not None) != (self.trigger == "milestone"):
            raise ValueError("milestone rules need the condition milestone ({\"metric\": …, \"threshold\": …}), "
                             "and only they may have it")
        if (kind == "referral") != (self.trigger == "referral"):
            raise ValueError("referrer_points/referee_points are the effect of referral rules, and referral "
                             "rules pay only them")
        return self

    def in_force(self, at: datetime) -> bool:
        """starts_at ≤ at < ends_at (an open end is no bound)."""
        return (self.starts_at is None or self.starts_at <= at) and (self.ends_at is None or at < self.ends_at)


class Rule(RuleDefinition):
    """A stored version of a rule: every posting it pays names its id and version."""

    id: RuleId
    version: int = Field(ge=1, le=10**9, strict=True)

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "base":
            raise ValueError('"base" names the program\'s base rate in a breakdown')
        return value
