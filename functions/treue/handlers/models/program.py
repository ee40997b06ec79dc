"""The program's settings and their versions (GET/PATCH /v1/program): response models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from treue.handlers.models import Model
from treue.logic.rules import Conditions, Effect, Limits, Trigger


class TierBenefitsView(Model):
    earn_multiplier_bps: int = Field(description="Purchases earn base × bps / 10000 (10000 = 1×)")
    catalog_discount_bps: int = Field(description="Discount on catalog prices in basis points")
    free_delivery: bool


class TierLevelView(Model):
    id: str
    name: str
    threshold: int = Field(description="Qualifying value (points or minor units) that reaches the level")
    benefits: TierBenefitsView


class TierPeriodView(Model):
    type: Literal["rolling", "calendar_year"]
    months: int | None = Field(default=None, description="rolling: this month and the months-1 before it")


class TierSettingsView(Model):
    metric: Literal["points", "spend"] = Field(description="points: earned from purchases; spend: minor units")
    period: TierPeriodView
    levels: list[TierLevelView] = Field(description="Lowest first")


class ExpiryView(Model):
    policy: str = Field(description="rolling or end_of_period", json_schema_extra={"enum": ["rolling",
                                                                                            "end_of_period"]})
    months: int


class PlanPriceView(Model):
    value: int = Field(description="Minor units")
    currency: str


class MembershipPlanView(Model):
    id: str
    name: str
    price: PlanPriceView = Field(description="The fee per period")
    period_months: int
    tier: str | None = Field(default=None, description="The tier level granted while active; null: none")
    welcome_points: int = Field(description="Paid once when a membership of the plan starts")
    earn_multiplier_bps: int = Field(description="Purchases earn base × bps / 10000 more while active (10000 = 1×)")


class ProgramSettings(Model):
    """The rules of the game as they stand. A change applies to accruals once the functions' program cache
    expires (60 s by default); a purchase keeps the points it was posted with."""

    id: str
    name: str
    currency: str = Field(description="ISO 4217; points, prices and the budget are kept in it (not editable)")
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2: where members are")
    earn_points: int = Field(description="Points earned per earn_per_minor minor units spent (rounded down)")
    earn_per_minor: int
    points_per_unit: str = Field(description="The earn rate read plainly: points per 1.00 of the currency, a "
                                             "decimal rounded down to 4 places, e.g. \"1\"")
    value_points: int = Field(description="value_points points are worth value_minor minor units")
    value_minor: int
    point_value: str = Field(description="What one point is worth in the currency, a decimal rounded down to 6 "
                                         "places, e.g. \"0.01\"")
    markup_bps: int = Field(description="Catalog markup on face value in basis points")
    fx_ppm: dict[str, int] = Field(description="Other currencies the catalog offers: program minor units per "
                                               "million minor units of each")
    tiers: TierSettingsView | None = Field(default=None, description="Status tiers; null: none")
    pending_days: int = Field(default=0, description="Days a purchase's points are pending after its occurred_at")
    expiry: ExpiryView | None = Field(default=None, description="When credited points expire; null: never")
    expiry_notice_days: int = Field(default=30, description="Days before a date that points.expiring is written")
    membership_plans: list[MembershipPlanView] = Field(default_factory=list, description="Paid membership plans")
    version: int = Field(description="1 as created, one more per change; the ETag of the answer (If-Match)")
    created_at: str
    updated_at: str = Field(description="When this version was made (created_at for version 1)")
    updated_by: str | None = Field(default=None, description="The key that made this version (scope:key id); "
                                                             "null for version 1")


class RuleInForce(Model):
    """An earning rule's version in force now (``/v1/rules`` has the whole rule and its history)."""

    id: str
    version: int
    name: str
    trigger: Trigger
    conditions: Conditions
    effect: Effect
    limits: Limits
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    priority: int
    stackable: bool


class ProgramOverview(ProgramSettings):
    """The settings as they stand and the earning rules in force now: the rules of the game, for a till, a shop
    or a member's app."""

    rules: list[RuleInForce] = Field(description="The earning rules in force now, in evaluation order (priority "
                                                 "descending, then rule id)")


class FieldChange(Model):
    from_: Any = Field(alias="from", description="The value before (as stored: \"\" is no country)")
    to: Any = Field(description="The value of this version")


class ProgramVersion(ProgramSettings):
    """One version of the settings: the whole settings at it, who made it, when and what changed."""

    changes: dict[str, FieldChange] = Field(description="The settings this version changed, each from → to "
                                                        "(empty for version 1)")


class ProgramVersionPage(Model):
    items: list[ProgramVersion] = Field(description="Newest first")
    next_cursor: str | None = None
