"""How a finance report is answered, JSON or CSV: the same for the synchronous routes and the report jobs.

``render(type, data, format)`` gives the bytes and content type of a report; a report job's result file
is exactly what the synchronous route answers for the same data (all pages of it, for payouts and the
journal).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from treue import runtime
from treue.handlers.models import finance as m
from treue.logic import finance, report_jobs, segment_admin
from treue.store.reports import Reports

# type → (response model, CSV columns, CSV rows of the data)
VIEWS: dict[str, tuple[type[BaseModel], tuple[str, ...], Callable[[dict[str, Any]], list[dict[str, Any]]]]] = {
    "reconciliation": (m.Reconciliation, finance.DIFFERENCE_COLUMNS, lambda d: d["differences"]),
    "kpis": (m.Kpis, finance.KPI_COLUMNS, finance.kpi_rows),
    "payouts": (m.PayoutList, finance.PAYOUT_COLUMNS, lambda d: d["items"]),
    "journal": (m.Journal, finance.JOURNAL_COLUMNS, lambda d: d["items"]),
}


def as_json(report_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return VIEWS[report_type][0].model_validate(data).model_dump(mode="json", by_alias=True)


def as_csv(report_type: str, data: dict[str, Any]) -> str:
    _, columns, rows = VIEWS[report_type]
    return finance.to_csv(columns, rows(data))


def render(report_type: str, data: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    if fmt == "csv":
        return as_csv(report_type, data).encode("utf-8"), "text/csv; charset=utf-8"
    return json.dumps(as_json(report_type, data), separators=(",", ":")).encode(), "application/json"


def sources(program_id: str) -> report_jobs.Sources:
    """What a report of ``program_id`` reads, wired to this environment's stores and provider."""
    store, budgets, orders = runtime.store(), runtime.budgets(), runtime.orders()
    reports = Reports(store)
    return report_jobs.Sources(
        page=reports.chunk,
        point_accounts=lambda: store.program_accounts(program_id),
        money_accounts=lambda: budgets.accounts(program_id),
        holds=lambda: budgets.holds(program_id),
        provider_status=lambda o: runtime.provider().status(program_id, o.id),
        donation_of=lambda o: orders.get_donation(program_id, o.donation_id) if o.donation_id else None,
        liability=lambda accounts: finance.liability(runtime.program(program_id), accounts, runtime.now()),
        rule_names=lambda: rule_names(program_id),
        tier_counts=lambda: segment_admin.tier_counts(runtime.segments().snapshot(program_id)),
    )


def rule_names(program_id: str) -> dict[str, str]:
    """Every earning rule's name as it stands (retired ones too), by id: a page of 100 at a time."""
    names: dict[str, str] = {}
    cursor: str | None = None
    while True:
        items, cursor = runtime.rules().page(program_id, 100, cursor)
        names.update((r["id"], r["name"]) for r in items)
        if cursor is None:
            return names
