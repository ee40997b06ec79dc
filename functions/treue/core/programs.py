"""Programs (tenants): currency, point value and the base earning rate."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treue.core.expiry import Policy
    from treue.core.memberships import Plan
    from treue.core.tiers import Tiers

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# What an admin may change after creation (PATCH /v1/program); id and currency never change (the ledger,
# the budget and every price are kept in the currency)
EDITABLE = ("name", "country", "earn_points", "earn_per_minor", "value_points", "value_minor", "markup_bps",
            "fx_ppm", "tiers", "pending_days", "expiry", "expiry_notice_days", "membership_plans")


@dataclass(frozen=True)
class Program:
    """A partner's loyalty programme.

    ``earn_points`` points are earned per ``earn_per_minor`` minor units spent (default: 1 point per
    100 minor units, i.e. per euro). ``value_points`` points are worth ``value_minor`` minor units of
    the program currency (default: 100 points = 100 minor units, i.e. 1 point = 1 cent).

    Redemption: ``country`` (ISO 3166-1) is where members are, unless a member says otherwise;
    catalog items cost their face value in points plus ``markup_bps`` (basis points); an item in
    another currency is offered only when ``fx_ppm`` has its rate (program minor units per
    million minor units of that currency, e.g. ``{"USD": 920000}``).

    ``tiers`` is the status tier configuration as the API shows it (``treue.core.tiers``; None: no tiers), kept
    as plain data so the settings store and compare as they always did; ``tier_config()`` reads it.

    Points over time (``treue.core.expiry``): a purchase's points are pending for ``pending_days`` after its
    ``occurred_at`` (0: available at once); ``expiry`` gives credits an expiry date (None: never);
    ``points.expiring`` is announced ``expiry_notice_days`` before a date.

    ``version`` counts the settings' changes (1 as created; ``PATCH /v1/program`` writes the next one,
    ``treue.logic.program``); ``updated_at``/``updated_by`` say when and by whom (empty as created).
    """

    id: str
    name: str
    currency: str
    earn_points: int = 1
    earn_per_minor: int = 100
    value_points: int = 100
    value_minor: int = 100
    created_at: str = ""
    country: str = ""
    markup_bps: int = 0
    fx_ppm: dict[str, int] = field(default_factory=dict)
    version: int = 1
    updated_at: str = ""
    updated_by: str = ""
    tiers: dict[str, Any] | None = None
    pending_days: int = 0
    expiry: dict[str, Any] | None = None
    expiry_notice_days: int = 30
    membership_plans: list[dict[str, Any]] = field(default_factory=list)  # paid plans (treue.core.memberships)

    def __post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise ValueError("currency must be an ISO 4217 code such as EUR")
        if not self.name.strip():
            raise ValueError("a program needs a name")
        for name in ("earn_points", "earn_per_minor", "value_points", "value_minor"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer")
        if self.country and not _COUNTRY.match(self.country):
            raise ValueError("country must be an ISO 3166-1 alpha-2 code such as DE")
        if not isinstance(self.markup_bps, int) or not 0 <= self.markup_bps <= 10_000:
            raise ValueError("markup_bps must be an integer from 0 to 10000")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise ValueError("version must be a positive integer")
        for code, rate in self.fx_ppm.items():
            if not _CURRENCY.match(code) or not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
                raise ValueError("fx_ppm maps ISO 4217 codes to positive integer rates in millionths")
        if self.tiers is not None:
            self.tier_config()  # a ValueError starting with "tiers" names what is wrong
        if not isinstance(self.pending_days, int) or isinstance(self.pending_days, bool) \
                or not 0 <= self.pending_days <= 365:
            raise ValueError("pending_days must be an integer from 0 to 365")
        if not isinstance(self.expiry_notice_days, int) or isinstance(self.expiry_notice_days, bool) \
                or not 1 <= self.expiry_notice_days <= 90:
            raise ValueError("expiry_notice_days must be an integer from 1 to 90")
        self.expiry_policy()  # a ValueError starting with "expiry" names what is wrong
        if self.membership_plans:
            self.plans()  # a ValueError starting with "membership_plans" names what is wrong

    def tier_config(self) -> Tiers | None:
        """The tier configuration, checked (None without tiers; the module loads only for programs with them)."""
        if self.tiers is None:
            return None
        from treue.core.tiers import parse

        return parse(self.tiers)

    def plans(self) -> tuple[Plan, ...]:
        """The paid membership plans, checked (a plan's ``tier`` names one of the tier levels)."""
        if not self.membership_plans:
            return ()
        from treue.core.memberships import parse_plans

        config = self.tier_config()
        return parse_plans(self.membership_plans, [level.id for level in config.levels] if config else ())

    def expiry_policy(self) -> Policy | None:
        """When this program's credits expire (None: never)."""
        from treue.core.expiry import parse

        return parse(self.expiry)

    def points_for(self, minor_units: int) -> int:
        """Points earned for a purchase of ``minor_units``; rounded down, never negative."""
        if minor_units <= 0:
            return 0
        return minor_units * self.earn_points // self.earn_per_minor

    def money_value(self, points: int) -> int:
        """The value of ``points`` in minor units of the program currency, rounded down."""
        return points * self.value_minor // self.value_points
