"""Programs (tenants): currency, point value and the base earning rate."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Program:
    """A partner's loyalty programme.

    ``earn_points`` points are earned per ``earn_per_minor`` minor units spent (default: 1 point per
    100 minor units, i.e. per euro). ``value_points`` points are worth ``value_minor`` minor units of
    the program currency (default: 100 points = 100 minor units, i.e. 1 point = 1 cent).
    """

    id: str
    name: str
    currency: str
    earn_points: int = 1
    earn_per_minor: int = 100
    value_points: int = 100
    value_minor: int = 100
    created_at: str = ""

    def __post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise ValueError("currency must be an ISO 4217 code such as EUR")
        if not self.name.strip():
            raise ValueError("a program needs a name")
        for name in ("earn_points", "earn_per_minor", "value_points", "value_minor"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer")

    def points_for(self, minor_units: int) -> int:
        """Points earned for a purchase of ``minor_units``; rounded down, never negative."""
        if minor_units <= 0:
            return 0
        return minor_units * self.earn_points // self.earn_per_minor

    def money_value(self, points: int) -> int:
        """The value of ``points`` in minor units of the program currency, rounded down."""
        return points * self.value_minor // self.value_points
