"""Batches (bulk issuance): response models."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from treue.core.statuses import BatchStatus, LineStatus
from treue.handlers.models import Model


class MoneyValue(Model):
    value: int = Field(description="Minor units")
    currency: str


class LineProblem(Model):
    line: int = Field(description="1 = the first line (in a CSV: the first row after the header)")
    reference: str | None = None
    field: str
    reason: str


class BatchCounts(Model):
    pending: int
    processing: int
    issued: int
    failed: int
    rejected: int


class Batch(Model):
    batch_id: str
    status: BatchStatus = Field(description="queued | running | completed | completed_with_failures | halted")
    name: str | None = None
    lines: int = Field(description="Lines submitted (rejected ones included)")
    counts: BatchCounts
    rejected: int
    runs: int = Field(description="Runs so far: 1 for the first, one more per retry")
    cost: list[MoneyValue] = Field(description="What the accepted lines draw from the budget per currency")
    tolerated_failure_percentage: int
    created_at: str
    updated_at: str
    completed_at: str | None = None
    halted_reason: str | None = None


class BatchAccepted(Batch):
    replayed: bool = Field(description="True when this Idempotency-Key was already used with this body")
    rejected_lines: list[LineProblem] = Field(description="With partial: true, the lines not issued and why")


class BatchPage(Model):
    items: list[Batch]
    next_cursor: str | None = None


class BatchLine(Model):
    line: int
    reference: str | None = None
    status: LineStatus = Field(description="pending | processing | issued | failed | rejected")
    attempt: int = Field(description="1 for the first try; a retry of a failed line starts the next")
    reward_id: str | None = Field(default=None, description="The reward of the current attempt (GET /v1/rewards/{id})")
    item_id: str | None = None
    face_value: MoneyValue | None = None
    recipient: dict[str, Any]
    failure_reason: str | None = None
    updated_at: str


class BatchLinePage(Model):
    items: list[BatchLine]
    next_cursor: str | None = Field(default=None, description="Ask again with cursor= this value; none at the end")


class BatchRetried(Model):
    batch_id: str
    status: BatchStatus
    run: int = Field(description="The run that re-drives the lines")
    lines: int = Field(description="Lines re-driven (failed ones get a new attempt); -1 when the run was queued before")


class BatchUpload(Model):
    upload_id: str
    url: str = Field(description="PUT the CSV here (Content-Type: text/csv) before it expires")
    method: str
    headers: dict[str, str]
    expires_at: str
    max_lines: int
    columns: list[str] = Field(description="The CSV header: reference and item_id required, the others optional")
