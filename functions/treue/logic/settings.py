"""The program's settings as an admin changes them (``PATCH /v1/program``): the merge patch and the tier
settings. Only the Program function reads them, so the other functions do not build these models at their cold
start."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from treue.logic.models import Currency, Strict

Count = Annotated[int, Field(ge=1, le=1_000_000_000, strict=True)]
FxRate = Annotated[int, Field(ge=1, le=10**12, strict=True)]


class TierBenefits(Strict):
    earn_multiplier_bps: int | None = Field(default=None, ge=10_000, le=100_000, strict=True,
                                            description="Purchases earn base × bps / 10000 (10000 = 1×, the default)")
    catalog_discount_bps: int | None = Field(default=None, ge=0, le=10_000, strict=True,
                                             description="Discount on the points prices of the catalog and of "
                                                         "orders in basis points, rounded in the programme's "
                                                         "favour, at least 1 point an item (default 0)")
    free_delivery: bool | None = Field(default=None, strict=True,
                                       description="Default false. Recorded for the operator's own fulfilment: "
                                                   "Treue charges members no delivery fee, so it changes no price")


class TierLevel(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="What rules' tier conditions name")
    name: str = Field(min_length=1, max_length=100)
    threshold: int = Field(ge=0, le=10**13, strict=True,
                           description="Qualifying value to reach the level: 0 for the first, strictly ascending")
    benefits: TierBenefits | None = None


class RollingPeriod(Strict):
    type: Literal["rolling"] = Field(json_schema_extra={"enum": ["rolling"]})
    months: int = Field(ge=1, le=36, strict=True, description="This month and the months-1 before it")


class CalendarYearPeriod(Strict):
    type: Literal["calendar_year"] = Field(json_schema_extra={"enum": ["calendar_year"]})


class TierSettings(Strict):
    """Status tiers (``treue.core.tiers``): ``metric`` is what qualifies (points earned from purchases, or spend
    in minor units), summed over the ``period``; ``levels`` lowest first."""

    metric: Literal["points", "spend"]
    period: RollingPeriod | CalendarYearPeriod = Field(discriminator="type")
    levels: list[TierLevel] = Field(min_length=2, max_length=20)


class ExpirySetting(Strict):
    """When credited points expire (``treue.core.expiry``)."""

    policy: Literal["rolling", "end_of_period"] = Field(
        description="rolling: `months` after the day earned; end_of_period: the end of the calendar year (months a "
                    "multiple of 12) or quarter that `months` after the day earned falls in")
    months: int = Field(ge=1, le=120, strict=True)


class PlanPrice(Strict):
    value: int = Field(ge=0, le=10**11, strict=True, description="Minor units")
    currency: Currency


class MembershipPlan(Strict):
    """A paid membership plan (``treue.core.memberships``): the member pays ``price`` per ``period_months`` at the
    partner's payment provider; while active they are at least at ``tier``, earn ``earn_multiplier_bps`` on
    purchases and got ``welcome_points`` once at the start."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="What POST .../memberships names as plan_id")
    name: str = Field(min_length=1, max_length=100)
    price: PlanPrice = Field(description="The fee per period (booked as revenue in the money journal)")
    period_months: int = Field(ge=1, le=36, strict=True)
    tier: str | None = Field(default=None, max_length=32,
                             description="A tier level id granted while active (the higher of it and the level "
                                         "qualified for); null: none")
    welcome_points: int | None = Field(default=None, ge=0, le=10_000_000, strict=True,
                                       description="Paid once when a membership of the plan starts (default 0)")
    earn_multiplier_bps: int | None = Field(default=None, ge=10_000, le=100_000, strict=True,
                                            description="Purchases earn base × bps / 10000 more while active "
                                                        "(10000 = 1×, the default)")


class ProgramPatch(Strict):
    """PATCH /v1/program: a JSON merge patch (RFC 7396) of the editable settings. A field left out keeps its
    value, ``null`` removes it (``country``, ``markup_bps`` → 0, ``fx_ppm`` or one of its rates); the other
    settings cannot be removed. ``id`` and ``currency`` are not editable (a 422 naming them)."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$",
                                description="ISO 3166-1 alpha-2, where members are; null removes it")
    earn_points: Count | None = Field(default=None, description="Points earned per earn_per_minor minor units")
    earn_per_minor: Count | None = Field(default=None, description="Minor units spent per earn_points points")
    value_points: Count | None = Field(default=None, description="Points worth value_minor minor units")
    value_minor: Count | None = Field(default=None, description="Minor units that value_points points are worth")
    markup_bps: int | None = Field(default=None, ge=0, le=10_000, strict=True,
                                   description="Catalog markup on face value in basis points; null: 0")
    fx_ppm: dict[Currency, FxRate | None] | None = Field(
        default=None, description="Rates merged into the current ones: program minor units per million minor units "
                                  "of the currency; a rate null removes it, fx_ppm null removes them all")
    tiers: TierSettings | None = Field(default=None, description="Status tiers, replaced whole; null removes them")
    pending_days: int | None = Field(default=None, ge=0, le=365, strict=True,
                                     description="A purchase's points are pending this many days after its "
                                                 "occurred_at (0: available at once); null: 0")
    expiry: ExpirySetting | None = Field(default=None, description="When credited points expire; null: never "
                                                                   "(points earned meanwhile keep no date)")
    expiry_notice_days: int | None = Field(default=None, ge=1, le=90, strict=True,
                                           description="points.expiring is written this many days before a date "
                                                       "(default 30); null: 30")
    membership_plans: list[MembershipPlan] | None = Field(
        default=None, max_length=20, description="Paid membership plans, replaced whole; null removes them")
    id: Any = Field(default=None, description="Not editable: sending it is a 422")
    currency: Any = Field(default=None, description="Not editable: sending it is a 422")

    @field_validator("id", "currency", mode="before")
    @classmethod
    def _not_editable(cls, value: Any, info: ValidationInfo) -> Any:
        reasons = {
            "id": "id is not editable: it names the program",
            "currency": "currency is not editable: the ledger, the budget and every price are kept in it; a "
                        "program in another currency is a new program",
        }
        raise ValueError(reasons[str(info.field_name)])
