"""Finance function: budget and fundings, payouts, journal, trial balance, liability, reconciliation,
KPIs and the audit trail. Finance and admin keys read; admin keys fund. Every list answers CSV with
``Accept: text/csv`` (stable columns, see ``treue.logic.finance``)."""

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from treue import runtime
from treue.handlers import api_models as m
from treue.handlers.http import caller, dispatch, header, idempotency_key, make_app
from treue.logic import budget, finance
from treue.logic.keys import Scope
from treue.logic.models import BudgetSettings, Funding
from treue.store.reports import Reports

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app()
READ = (Scope.FINANCE, Scope.ADMIN)
ADMIN = (Scope.ADMIN,)
SCOPES = {
    ("POST", "/v1/finance/fundings"): ADMIN,
    ("GET", "/v1/finance/budget"): READ,
    ("PUT", "/v1/finance/budget/{currency}"): ADMIN,
    ("GET", "/v1/finance/payouts"): READ,
    ("GET", "/v1/finance/journal"): READ,
    ("GET", "/v1/finance/trial-balance"): READ,
    ("GET", "/v1/finance/liability"): READ,
    ("GET", "/v1/finance/reconciliation"): READ,
    ("GET", "/v1/finance/kpis"): READ,
    ("GET", "/v1/finance/audit"): READ,
}
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
            rows: Callable[[dict[str, Any]], list[dict[str, Any]]], next_cursor: str | None = None):
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


@app.post("/v1/finance/fundings", summary="Top up the program budget (admin; Idempotency-Key required)",
          responses={201: {"description": "Recorded", "content": {"application/json": {"model": m.FundingRecorded}}},
                     200: {"description": "A replay of the same funding"}})
@tracer.capture_method
def fund(body: Annotated[Funding, Body()]):
    who = caller(app)
    key = idempotency_key(app, "funding")
    answer, replayed = budget.fund(runtime.budgets(), who.program_id, body.amount.currency, body.amount.value,
                                   body.reference, key, who.actor, runtime.now())
    if not replayed:
        metrics.add_metric(name="BudgetFunded", unit=MetricUnit.Count, value=1)
    logger.info("budget funded", extra={"funding_id": answer["funding_id"], "replayed": replayed})
    return Response(200 if replayed else 201, "application/json",
                    m.FundingRecorded(**answer, replayed=replayed).model_dump(mode="json"))


@app.get("/v1/finance/budget", summary="Budget balances per currency and the movements, newest first "
         "(both of one currency with ?currency=)",
         responses=_doc(m.Budget, "Balances and movements"))
@tracer.capture_method
def get_budget(currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None, limit: Limit = 50,
               cursor: Cursor = None):
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
                         "low_balance_threshold": threshold, "low": available < threshold})
    moves, next_cursor = budgets.movements(who.program_id, currency, limit, cursor)
    data = {"budgets": balances, "movements": [finance.movement_row(x) for x in moves], "next_cursor": next_cursor}
    return _answer(m.Budget, data, "budget-movements", finance.MOVEMENT_COLUMNS, lambda d: d["movements"],
                   next_cursor)


@app.put("/v1/finance/budget/<currency>", summary="Set the low-balance threshold of one currency (admin)")
@tracer.capture_method
def set_budget(currency: Currency, body: Annotated[BudgetSettings, Body()]) -> dict:
    who = caller(app)
    runtime.budgets().set_threshold(who.program_id, currency, body.low_balance_threshold, runtime.now())
    return {"currency": currency, "low_balance_threshold": body.low_balance_threshold}


@app.get("/v1/finance/payouts", summary="Orders with face value, fee, currency, status, provider reference",
         responses=_doc(m.PayoutList, "Payouts by creation time"))
@tracer.capture_method
def payouts(from_: From = None, to: To = None, limit: Limit = 100, cursor: Cursor = None):
    who = caller(app)
    start, end = finance.period(from_, to)
    found, next_cursor = _reports().page(f"P#{who.program_id}#ORDERS", start, end, limit, cursor)
    data = {"items": [finance.payout_row(o) for o in found], "next_cursor": next_cursor}
    return _answer(m.PayoutList, data, "payouts", finance.PAYOUT_COLUMNS, lambda d: d["items"], next_cursor)


@app.get("/v1/finance/journal", summary="The program-wide ledger: postings (points) and budget movements (money)",
         responses=_doc(m.Journal, "Journal lines in time order"))
@tracer.capture_method
def journal(from_: From = None, to: To = None, limit: Limit = 100, cursor: Cursor = None):
    who = caller(app)
    start, end = finance.period(from_, to)
    found, next_cursor = _reports().page(f"P#{who.program_id}#JOURNAL", start, end, limit, cursor)
    data = {"items": [finance.journal_row(e) for e in found], "next_cursor": next_cursor}
    return _answer(m.Journal, data, "journal", finance.JOURNAL_COLUMNS, lambda d: d["items"], next_cursor)


@app.get("/v1/finance/trial-balance", summary="Every account per unit and each unit's total (0)",
         responses=_doc(m.TrialBalance, "Trial balance"))
@tracer.capture_method
def trial_balance():
    who = caller(app)
    data = finance.trial_balance(runtime.store().program_accounts(who.program_id),
                                 runtime.budgets().accounts(who.program_id), runtime.now())
    return _answer(m.TrialBalance, data, "trial-balance", finance.TRIAL_BALANCE_COLUMNS, finance.trial_balance_rows)


@app.get("/v1/finance/liability", summary="Outstanding points and their money value",
         responses=_doc(m.Liability, "Liability"))
@tracer.capture_method
def liability():
    who = caller(app)
    data = finance.liability(runtime.program(who.program_id), runtime.store().program_accounts(who.program_id),
                             runtime.now())
    return _answer(m.Liability, data, "liability", finance.LIABILITY_COLUMNS, lambda d: [finance.liability_row(d)])


@app.get("/v1/finance/reconciliation", summary="A day's orders against ledger, budget and provider; differences",
         responses=_doc(m.Reconciliation, "Reconciliation (CSV: the differences)"))
@tracer.capture_method
def reconciliation(date: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day")]):
    who = caller(app)
    data = finance.reconcile_day(runtime.store(), runtime.provider(), who.program_id, date)
    return _answer(m.Reconciliation, data, f"reconciliation-{date}", finance.DIFFERENCE_COLUMNS,
                   lambda d: d["differences"])


@app.get("/v1/finance/kpis", summary="Members, activity, points earned/redeemed/expired, rates, liability",
         responses=_doc(m.Kpis, "KPIs for the period"))
@tracer.capture_method
def kpis(from_: From = None, to: To = None):
    who = caller(app)
    start, end = finance.period(from_, to)
    reports = _reports()
    enrolled = (b["member_id"] for b in reports.balances(who.program_id) if not end or b.get("enrolled_at", "") < end)
    data = finance.kpis(from_, to, reports.journal(who.program_id, start, end), enrolled,
                        finance.liability(runtime.program(who.program_id),
                                          runtime.store().program_accounts(who.program_id), runtime.now()))
    return _answer(m.Kpis, data, "kpis", finance.KPI_COLUMNS, finance.kpi_rows)


AUDIT_COLUMNS = ("seq", "at", "action", "subject_type", "subject_id", "actor", "scope", "request_id", "source_ip",
                 "prev_hash", "hash")


@app.get("/v1/finance/audit", summary="The audit trail in chain order (sealed records)",
         responses=_doc(m.AuditPage, "Audit records after a sequence number"))
@tracer.capture_method
def audit_trail(after: Annotated[int, Query(ge=0)] = 0, limit: Limit = 100):
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return dispatch(app, SCOPES, event, context)
