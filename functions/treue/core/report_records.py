"""A finance report job as a typed record, built at the store boundary (``treue.store.report_jobs``).

As in ``treue.core.records``: ``item()`` gives the attributes as stored (absent values left out) and
``from_item`` reads a stored item back (the table's and index keys and the expiry ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from treue.core.statuses import ReportFormat, ReportStatus, ReportType


@dataclass(frozen=True)
class Report:
    """A finance report job: what it computes, where its worker is, and its result once completed.

    Written whole when requested (``treue.store.report_jobs.ReportJobs.create``, with its expiry); a
    worker's step changes ``status``, ``step``, ``progress``, ``state_key`` and, at the end,
    ``summary``, ``result`` and ``completed_at`` (or ``failure_reason``)."""

    id: str
    program_id: str
    type: ReportType
    params: dict[str, Any]  # date, or from/to
    format: ReportFormat
    status: ReportStatus
    created_at: str
    updated_at: str
    requested_by: str
    step: int = 0  # the worker's continuations so far; a message names the step it continues from
    progress: dict[str, Any] = field(default_factory=dict)  # phase, phase_name, after, items, pages, checked, done
    state_key: str | None = None  # the S3 key of the state between continuations
    started_at: str | None = None
    completed_at: str | None = None
    summary: dict[str, Any] | None = None  # a few figures of the completed report
    result: dict[str, Any] | None = None  # the completed result's S3 key, content type and bytes
    failure_reason: str | None = None

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> Report:
        """A report as read (table and index keys, and the expiry, are ignored)."""
        return cls(
            id=data["id"], program_id=data["program_id"], type=ReportType(data["type"]), params=data["params"],
            format=ReportFormat(data["format"]), status=ReportStatus(data["status"]),
            created_at=data["created_at"], updated_at=data["updated_at"], requested_by=data["requested_by"],
            step=data.get("step", 0), progress=data.get("progress") or {},
            **{name: data.get(name) for name in _REPORT_OPTIONAL},
        )

    def item(self) -> dict[str, Any]:
        """The attributes as stored (without the table's keys and the expiry); absent values are left out."""
        out: dict[str, Any] = {
            "id": self.id, "program_id": self.program_id, "type": str(self.type), "params": self.params,
            "format": str(self.format), "status": str(self.status), "created_at": self.created_at,
            "updated_at": self.updated_at, "requested_by": self.requested_by, "step": self.step,
            "progress": self.progress, **{name: getattr(self, name) for name in _REPORT_OPTIONAL},
        }
        return {k: v for k, v in out.items() if v is not None}


_REPORT_OPTIONAL = ("state_key", "started_at", "completed_at", "summary", "result", "failure_reason")
