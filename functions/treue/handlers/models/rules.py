"""The earning rules and their versions (/v1/rules): response models."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from treue.core.statuses import RuleStatus
from treue.handlers.models import Model
from treue.logic.rules import Conditions, Effect, Limits, Trigger


class RuleVersion(Model):
    """One version of an earning rule, whole: its definition, who made it and when (never changed)."""

    id: str = Field(description="The rule's id (rul_…); a breakdown line names it with the version")
    version: int = Field(description="1 as created, one more per PUT")
    name: str
    trigger: Trigger
    conditions: Conditions = Field(description="All given conditions must hold; null ones are not asked")
    effect: Effect = Field(description="Exactly one effect is given")
    limits: Limits
    starts_at: datetime | None = Field(default=None, description="The version's own window starts (inclusive)")
    ends_at: datetime | None = Field(default=None, description="The version's own window ends (exclusive)")
    priority: int = Field(description="Higher first; equal priorities in rule id order")
    stackable: bool = Field(description="False: a line this rule pays earns from no rule after it")
    created_at: str = Field(description="When this version was made: it is in force from then until the next "
                                        "version's created_at or the rule's retired_at, within its own window")
    created_by: str = Field(description="The key that made this version (scope:key id)")


class Rule(RuleVersion):
    """An earning rule as it stands: its current version (the ETag), its status and its history's ends."""

    created_at: str = Field(description="When the rule was created (version 1)")
    created_by: str = Field(description="The key that created the rule")
    status: RuleStatus
    updated_at: str = Field(description="When the current version was made (created_at for version 1)")
    updated_by: str = Field(description="The key that made the current version")
    retired_at: str | None = Field(default=None, description="From then on no version of the rule is in force")
    retired_by: str | None = None


class RuleVersionSummary(Model):
    version: int
    created_at: str = Field(description="In force from then (within starts_at/ends_at) until the next version's "
                                        "created_at or the rule's retired_at")
    created_by: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class RuleDetail(Rule):
    versions: list[RuleVersionSummary] = Field(description="Every version, oldest first")


class RulePage(Model):
    items: list[Rule] = Field(description="Rules as they stand, oldest first")
    next_cursor: str | None = None
