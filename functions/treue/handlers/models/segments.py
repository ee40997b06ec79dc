"""Segments and offers (/v1/segments, /v1/members/{id}/segments, /v1/members/{id}/offers): response models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from treue.core.statuses import ItemType, SegmentStatus
from treue.handlers.models import Model
from treue.logic.segments import SegmentConditions


class SegmentVersion(Model):
    """One version of a custom segment, whole."""

    id: str
    version: int
    name: str
    description: str | None = None
    conditions: SegmentConditions
    catalog_items: list[str] | None = Field(default=None, description="Catalog items targeted at the segment")
    created_at: str = Field(description="When this version was made")
    created_by: str


class Segment(Model):
    """A custom segment as it stands (its current version is the ETag)."""

    id: str = Field(description="What a rule's segment condition names")
    version: int
    kind: Literal["custom"]
    name: str
    description: str | None = None
    conditions: SegmentConditions
    catalog_items: list[str] | None = Field(default=None, description="Catalog items targeted at the segment")
    status: SegmentStatus
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str
    retired_at: str | None = None
    retired_by: str | None = None


class SegmentSummary(Model):
    version: int
    created_at: str
    created_by: str


class SegmentDetail(Segment):
    versions: list[SegmentSummary] = Field(description="Oldest first")


class CountedSegment(Model):
    """A segment with its member count (null: not counted yet, or retired)."""

    id: str
    name: str
    kind: Literal["builtin", "custom"]
    status: SegmentStatus
    members: int | None
    version: int | None = None
    description: str | None = None
    conditions: SegmentConditions | None = None
    catalog_items: list[str] | None = None


class TierCount(Model):
    tier: str | None = Field(description="A tier id; null: members without a tier")
    members: int


class SegmentCounts(Model):
    """Every segment with its members, from the snapshot the scheduled SegmentCounts function writes."""

    computed_at: str | None = Field(description="When the snapshot's walk over the members ended; null: not yet "
                                                "(the program is counted within a few minutes of the first ask)")
    started_at: str | None = Field(description="When that walk began: the time the segments were evaluated at")
    members: int | None
    segments: list[CountedSegment] = Field(description="Built-in segments first, then the custom ones by id")
    tiers: list[TierCount] = Field(description="Members per tier, the program's levels in order, then without one")
    counting: bool = Field(description="A walk over the members is in progress")
    requested_at: str | None = None


class Membership(Model):
    id: str
    name: str
    kind: Literal["builtin", "custom"]
    since: str | None = Field(description="When the member entered the segment, where it is known")
    reason: str = Field(description="Why the member is in it, with the figures")


class MemberSegments(Model):
    member_id: str
    segments: list[Membership] = Field(description="Built-in segments first (new, active, inactive, at_risk, "
                                                   "premium), then the custom ones by id")
    computed_at: str


class RuleOffer(Model):
    rule_id: str
    version: int
    name: str
    trigger: str
    targeted: bool = Field(description="The rule has a segment or tier condition this member meets")
    segment: list[str] | None
    tier: list[str] | None
    effect: dict[str, Any]
    description: str
    potential_points: int = Field(description="What the rule pays on the sample event (see the README)")
    applies_on: str = Field(description="The first day (from today) the rule pays")
    remaining_uses: int | None = Field(description="Times it still pays this member under its limits; null: no "
                                                   "limit")
    budget_left: int | None = Field(description="Points left of its budget; null: no budget")
    ends_at: str | None


class FaceValue(Model):
    face_value: int
    points: int


class CatalogOffer(Model):
    item_id: str
    type: ItemType
    name: str
    category: str | None = None
    currency: str
    min_points: int
    affordable: bool
    points_missing: int
    best: FaceValue | None = Field(description="The highest face value the available points pay for")
    targeted: bool = Field(description="A custom segment the member is in lists the item (catalog_items)")
    segments: list[str] = Field(description="Those segments")


class Offers(Model):
    member_id: str
    computed_at: str
    available_points: int
    tier: str | None
    segments: list[str]
    rules: list[RuleOffer]
    catalog: list[CatalogOffer]
