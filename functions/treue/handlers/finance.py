"""Finance function: budget and fundings, payouts, journal, trial balance, liability, reconciliation,
KPIs, the audit trail and report jobs. Finance and admin keys read; admin keys fund. Every list answers
CSV with ``Accept: text/csv`` (stable columns, see ``treue.logic.finance``).

A reconciliation or KPIs that cannot be read within the request's time (API Gateway's 29 s) is refused
with 422 ``report-too-large`` pointing at ``POST /v1/finance/reports``, which computes any size in the
report worker (``treue.handlers.report_worker``)."""

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel

from treue import runtime
from treue.core import ids
from treue.core.records import Order
from treue.errors import OrderNotFound, ReportNotFound, StorageTimeout
from treue.handlers import report_views
from treue.handlers.http import (
    Body,
    Path,
    Query,
    Response,
    caller,
    dispatch,
    header,
    idempotency_key,
    listing_cursor,
    make_app,
    responses,
)
from treue.handlers.logs import API_GATEWAY_REST, Logger, Metrics, MetricUnit
from treue.handlers.models import finance as m
from treue.handlers.tracing import Tracer
from treue.logic import budget, finance, report_jobs
from treue.logic.models import BudgetSettings, CashRefund, Funding
from treue.store.reports import Reports

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app("Finance")
# A synchronous report stops reading when the function has less than RESERVE_MS left or SYNC_SECONDS
# have passed (API Gateway gives up at 29 s), and answers 422 report-too-large instead.
SYNC_SECONDS = 20
RESERVE_MS = 8_000
ReportId = Annotated[str, Path(pattern=r"^rpt_[0-9a-hjkmnp-tv-z]{26}$", description="A report id (rpt_…)")]
CSV = "text/csv"
Currency = Annotated[str, Path(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
From = Annotated[str | None, Query(alias="from", max_length=40, description="Date (2026-11-01) or UTC time; inclusive")]
To = Annotated[str | None, Query(max_length=40, description="Date (whole day included) or UTC time; exclusive")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=1024)]


def _doc(model: type[BaseModel], what: str) -> dict[int, Any]:
    return {200: {"description": f"{what} (JSON, or CSV with Accept: text/csv)",
                  "content": {"application/json": {"model": model}, CSV: {"schema": {"type": "string"}}}}}


def _answer(model: type[BaseModel], data: dict[str, Any], name: str, columns: Iterable[str],
            rows: Callable[[dict[str, Any]], list[dict[str, Any]]], next_cursor: str | None = None) -> Response[Any]:
    """JSON by default; CSV when the caller accepts text/csv (the next cursor then travels in a header)."""
    accept = (header(app, "Accept") or "").lower()
    if CSV in accept and "application/json" not in accept:
        headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
        if next_cursor:
            headers["Treue-Next-Cursor"] = next_cursor
        return Response(200, "text/csv; charset=utf-8", finance.to_csv(columns, rows(data)), headers=headers)
    return Response(200, "application/json", model.model_validate(data).model_dump(mode="json", by_alias=True))


def _reports() -> Reports:
    return Reports(runtime.store())


def _more_time() -> Callable[[], bool]:
    """The request's time budget: True while another page (as slow as the slowest so far) can still be read
    and answered in time."""
    return report_jobs.time_budget(app.lambda_context.get_remaining_time_in_millis, RESERVE_MS, SYNC_SECONDS)


def _run_now(report_type: str, params: dict[str, Any]) -> dict[str, Any]:
    program_id = caller(app).program_id
    return report_jobs.run_now(report_type, program_id, params, report_views.sources(program_id),
                               runtime.settings().report_page_size, _more_time())


def _page(report_type: str, gsi1pk: str, start: str | None, end: str | None, limit: int,
          cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of payouts or the journal; a storage timeout is refused like a report too large."""
    try:
        return _reports().page(gsi1pk, start, end, limit, cursor)
    except StorageTimeout as err:
        raise report_jobs.too_large(report_type, {"from": start, "to": end}, report_jobs.new_progress(),
                                    err.detail) from err


@responses({201: {"description": "Recorded", "content": {"application/json": {"model": m.FundingRecorded}}},
            200: {"description": "A replay of the same funding"}})
@tracer.capture_method
def fund(body: Annotated[Funding, Body()]) -> Response[Any]:
    who = caller(app)
    key = idempotency_key(app, "funding")
    answer, replayed = budget.fund(runtime.budgets(), who.program_id, body.amount.currency, body.amount.value,
                                   body.reference, key, who.actor, runtime.now())
    if not replayed:
        metrics.add_metric(name="BudgetFunded", unit=MetricUnit.Count, value=1)
    logger.info("budget funded", extra={"funding_id": answer["funding_id"], "replayed": replayed})
    return Response(200 if replayed else 201, "application/json",
                    m.FundingRecorded(**answer, replayed=replayed).model_dump(mode="json"))


@responses({201: {"description": "Recorded", "content": {"application/json": {"model": m.CashRefundRecorded}}},
            200: {"description": "A replay: this order's refund was recorded with this reference"}})
@tracer.capture_method
def refund_cash(body: Annotated[CashRefund, Body()]) -> Response[Any]:
    who = caller(app)
    answer, replayed = budget.refund_cash(runtime.orders(), runtime.budgets(), who.program_id,
                                          _order_id(body.order_id), body.reference, who.actor, runtime.now())
    if not replayed:
        metrics.add_metric(name="CashRefunded", unit=MetricUnit.Count, value=1)
    logger.info("cash refund recorded", extra={"order_id": body.order_id, "replayed": replayed})
    return Response(200 if replayed else 201, "application/json",
                    m.CashRefundRecorded(**answer, replayed=replayed).model_dump(mode="json"))


def _order_id(order_id: str) -> str:
    if not ids.well_formed(order_id, "ord"):
        raise OrderNotFound(f"order {order_id[:40]} does not exist")
    return order_id


@responses(_doc(m.Budget, "Balances and movements"))
@tracer.capture_method
def get_budget(currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None, limit: Limit = 50,
               cursor: Cursor = None) -> Response[Any]:
    who = caller(app)
    budgets = runtime.budgets()
    thresholds = budgets.thresholds(who.program_id)
    balances = []
    accounts = budgets.accounts(who.program_id)
    for cur in sorted(set(accounts) | set(thresholds)):
        if currency and cur != currency:
            continue
        a = accounts.get(cur, {})
        available, threshold = a.get("budget:available", 0), thresholds.get(cur, 0)
        balances.append({"currency": cur, "available": available, "held": a.get("budget:held", 0),
                         "funded": -a.get("budget:fundings", 0),
                         "paid_face_value": a.get("payouts:face", 0), "paid_fees": a.get("payouts:fees", 0),
                         "cash_received": -a.get("cash:received", 0), "cash_owed_back": a.get("cash:owed_back", 0),
                         "low_balance_threshold": threshold, "low": available < threshold})
    moves, next_cursor = budgets.movements(who.program_id, currency, limit, cursor)
    data = {"budgets": balances, "movements": [finance.movement_row(x) for x in moves], "next_cursor": next_cursor}
    return _answer(m.Budget, data, "budget-movements", finance.MOVEMENT_COLUMNS, lambda d: d["movements"],
                   next_cursor)


@tracer.capture_method
def set_budget(currency: Currency, body: Annotated[BudgetSettings, Body()]) -> dict[str, Any]:
    who = caller(app)
    runtime.budgets().set_threshold(who.program_id, currency, body.low_balance_threshold, runtime.now())
    return {"currency": currency, "low_balance_threshold": body.low_balance_threshold}


@responses(_doc(m.PayoutList, "Payouts by creation time"))
@tracer.capture_method
def payouts(from_: From = None, to: To = None, limit: Limit = 100, cursor: Cursor = None) -> Response[Any]:
    who = caller(app)
    start, end = finance.period(from_, to)
    found, next_cursor = _page("payouts", f"P#{who.program_id}#ORDERS", start, end, limit, cursor)
    data = {"items": [finance.payout_row(Order.from_item(o)) for o in found], "next_cursor": next_cursor}
    return _answer(m.PayoutList, data, "payouts", finance.PAYOUT_COLUMNS, lambda d: d["items"], next_cursor)


@responses(_doc(m.Journal, "Journal lines in time order"))
@tracer.capture_method
def journal(from_: From = None, to: To = None, limit: Limit = 100, cursor: Cursor = None) -> Response[Any]:
    who = caller(app)
    start, end = finance.period(from_, to)
    found, next_cursor = _page("journal", f"P#{who.program_id}#JOURNAL", start, end, limit, cursor)
    data = {"items": [finance.journal_row(e) for e in found], "next_cursor": next_cursor}
    return _answer(m.Journal, data, "journal", finance.JOURNAL_COLUMNS, lambda d: d["items"], next_cursor)


@responses(_doc(m.TrialBalance, "Trial balance"))
@tracer.capture_method
def trial_balance() -> Response[Any]:
    who = caller(app)
    data = finance.trial_balance(runtime.store().program_accounts(who.program_id),
                                 runtime.budgets().accounts(who.program_id), runtime.now())
    return _answer(m.TrialBalance, data, "trial-balance", finance.TRIAL_BALANCE_COLUMNS, finance.trial_balance_rows)


@responses(_doc(m.Liability, "Liability"))
@tracer.capture_method
def liability() -> Response[Any]:
    who = caller(app)
    data = finance.liability(runtime.program(who.program_id), runtime.store().program_accounts(who.program_id),
                             runtime.now())
    return _answer(m.Liability, data, "liability", finance.LIABILITY_COLUMNS, lambda d: [finance.liability_row(d)])


@responses(_doc(m.Reconciliation, "Reconciliation (CSV: the differences)"))
@tracer.capture_method
def reconciliation(date: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day")]) -> Response[Any]:
    data = _run_now("reconciliation", report_jobs.params_of("reconciliation", date, None, None))
    return _answer(m.Reconciliation, data, f"reconciliation-{date}", finance.DIFFERENCE_COLUMNS,
                   lambda d: d["differences"])


@responses(_doc(m.Kpis, "KPIs for the period"))
@tracer.capture_method
def kpis(from_: From = None, to: To = None) -> Response[Any]:
    data = _run_now("kpis", report_jobs.params_of("kpis", None, from_, to))
    return _answer(m.Kpis, data, "kpis", finance.KPI_COLUMNS, finance.kpi_rows)


AUDIT_COLUMNS = ("seq", "at", "action", "subject_type", "subject_id", "actor", "scope", "request_id", "source_ip",
                 "prev_hash", "hash")


@responses(_doc(m.AuditPage, "Audit records after a sequence number"))
@tracer.capture_method
def audit_trail(after: Annotated[int, Query(ge=0)] = 0, limit: Limit = 100) -> Response[Any]:
    who = caller(app)
    trail = runtime.audit_trail()
    items = []
    for record in trail.chain(who.program_id, after):
        items.append({k: record.get(k) for k in m.AuditRecord.model_fields})
        if len(items) >= limit:
            break
    next_after = items[-1]["seq"] if len(items) >= limit else None
    data = {"items": items, "pending": trail.pending_count(who.program_id), "next_after": next_after}
    return _answer(m.AuditPage, data, "audit", AUDIT_COLUMNS, lambda d: d["items"])


# ---------------------------------------------------------------- report jobs


def _download(key: str) -> tuple[str, str]:
    _, files, _ = runtime.report_jobs()
    expires = datetime.now(UTC) + timedelta(seconds=report_jobs.URL_SECONDS)
    return (files.download_url(key, report_jobs.URL_SECONDS),
            expires.isoformat(timespec="seconds").replace("+00:00", "Z"))


@responses({202: {"description": "Queued; GET the report (Location) for its progress and result",
                  "content": {"application/json": {"model": m.ReportAccepted}}}})
@tracer.capture_method
def create_report(body: Annotated[m.ReportRequest, Body()]) -> Response[Any]:
    who = caller(app)
    key = idempotency_key(app, "report")
    params = report_jobs.params_of(body.type, body.date, body.from_, body.to)
    jobs, _, queue = runtime.report_jobs()
    report, replayed = report_jobs.request(jobs, queue, who.program_id, body.type, params, body.format, key,
                                           who.actor, runtime.now(), int(time.time()))
    if not replayed:
        metrics.add_metric(name="ReportsRequested", unit=MetricUnit.Count, value=1)
    logger.info("report requested", extra={"report_id": report.id, "type": body.type, "replayed": replayed})
    answer = m.ReportAccepted(**report_jobs.view(report, _download), replayed=replayed)
    return Response(202, "application/json", answer.model_dump(mode="json"),
                    headers={"Location": f"/v1/finance/reports/{report.id}"})


@tracer.capture_method
def list_reports(limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: Cursor = None) -> m.ReportPage:
    who = caller(app)
    jobs, _, _ = runtime.report_jobs()
    items, next_cursor = jobs.page(who.program_id, listing_cursor(cursor, "rpt"), limit)
    return m.ReportPage(items=[m.Report(**report_jobs.view(r, _download)) for r in items], next_cursor=next_cursor)


@tracer.capture_method
def get_report(report_id: ReportId) -> m.Report:
    who = caller(app)
    jobs, _, _ = runtime.report_jobs()
    found = jobs.get(who.program_id, report_id)
    if found is None:
        raise ReportNotFound(f"report {report_id} does not exist (reports are kept "
                             f"{report_jobs.EXPIRES_DAYS} days)")
    return m.Report(**report_jobs.view(found, _download))


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
