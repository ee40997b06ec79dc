"""A member's tier (GET /v1/members/{id}/tier): response models."""

from __future__ import annotations

from pydantic import Field

from treue.handlers.models import Model


class TierBenefits(Model):
    earn_multiplier_bps: int = Field(description="Purchases earn base × bps / 10000 (10000 = 1×)")
    catalog_discount_bps: int
    free_delivery: bool


class TierProgress(Model):
    metric: str = Field(description="points (earned from purchases) or spend (minor units)")
    value: int = Field(description="The current window's qualifying value: this calendar year, or this month and "
                                   "the months-1 before it (rolling)")
    next_tier: str | None = Field(description="The level above (null at the top)")
    needed: int = Field(description="What the window still needs to reach next_tier (0 at the top)")


class TierRetain(Model):
    needed: int = Field(description="What the period judged at `by` still needs to keep the tier (0: kept)")
    by: str | None = Field(description="The review that judges it (until); null at the lowest level")


class TierGrant(Model):
    membership_id: str
    plan_id: str
    tier: str | None = Field(description="The level the plan grants (null: none)")
    earn_multiplier_bps: int = Field(description="The plan's earn multiplier on purchases (10000 = 1×)")
    until: str = Field(description="The membership's current period end: the grant ends then unless renewed")


class MemberTier(Model):
    """Upgrades happen at once, downgrades at the review after `until` (never below what the period reached)."""

    member_id: str
    tier: str = Field(description="The level's id (what rules' tier conditions name)")
    name: str
    benefits: TierBenefits
    since: str = Field(description="When the member reached this level (enrollment for the lowest, never changed)")
    until: str | None = Field(description="When the level is reviewed: kept if the period before it requalifies; "
                                          "null at the lowest level")
    progress: TierProgress
    retain: TierRetain
    projected_tier: str = Field(description="Where the member lands at the period's end at the current pace: the "
                                            "period's value so far, per time elapsed (at least 30 days), over the "
                                            "whole period")
    projected_value: int
    qualified_tier: str | None = Field(default=None, description="The level the member qualified for (progress, "
                                       "retain and the review are about it); tier is higher while a paid "
                                       "membership grants more")
    membership: TierGrant | None = Field(default=None, description="The active paid membership's grant (null: none)")
