"""Time stamps as Treue stores and exchanges them: ISO 8601 strings in UTC with a ``Z``, e.g.
``2026-03-01T12:00:00.000Z`` (milliseconds where the writer took the clock itself)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse(value: str) -> datetime:
    """The moment of an ISO 8601 time stamp (``Z`` or an offset; naive when the text has neither)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(moment: datetime, timespec: str = "auto") -> str:
    """``moment`` as ISO 8601 with ``timespec`` as in :meth:`datetime.isoformat`, UTC written ``Z``."""
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def now() -> str:
    """The current time in UTC with milliseconds: what every write stamps."""
    return iso(datetime.now(UTC), "milliseconds")
