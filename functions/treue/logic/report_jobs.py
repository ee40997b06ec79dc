"""Finance report jobs: a reconciliation, KPIs, payouts or the journal computed in pages.

A report is a list of phases. Each phase reads one program-wide listing of the ``gsi1`` index a page
at a time (orders of the day, the journal, member balances) or checks the orders read so far; the
last step reads the accounts and builds the report. The same code answers the synchronous routes
(run to the end within the request's time, or refuse with ``report-too-large``) and the report jobs
(a worker runs pages while it has time, checkpoints ``progress`` and the accumulated ``state``, and
continues in its next invocation), so both give the same answer for the same data.

``progress`` (kept on the report item): ``phase`` (index), ``after`` (the listing's key to continue
after), ``items`` read, ``pages`` read, ``done`` (True once the report is built).
``state`` (kept in S3 between invocations): the accumulator of the report type, then ``result``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from treue.core.ids import new_id
from treue.core.ledger import request_fingerprint
from treue.core.records import Order
from treue.core.report_records import Report
from treue.core.statuses import ReportFormat, ReportStatus, ReportType
from treue.errors import IdempotencyConflict, MalformedRequest, ReportTooLarge, StorageTimeout, ValidationFailed
from treue.logic import finance

if TYPE_CHECKING:
    from treue.core.issued_records import Donation
    from treue.logic.finance import OrderSummary
    from treue.logic.ports import Download, Render, ReportFilesPort, ReportJobsPort, ReportPage, ReportQueuePort

TYPES = tuple(ReportType)
FORMATS = tuple(ReportFormat)
STATUSES = tuple(ReportStatus)


@dataclass(frozen=True)
class Sources:
    """What a report reads (ports; the stores and the provider fill them in)."""

    page: ReportPage  # (gsi1pk, start, end, limit, after) → (items, after)
    point_accounts: Callable[[], dict[str, int]]
    money_accounts: Callable[[], dict[str, dict[str, int]]]
    holds: Callable[[], dict[str, int]]
    provider_status: Callable[[OrderSummary], Any]  # an order summary → the provider's record or None
    donation_of: Callable[[OrderSummary], Donation | None]  # an order summary → its donation receipt or None
    liability: Callable[[dict[str, int]], dict[str, Any]]  # point accounts → finance.liability(...)
    # the KPIs' names of the earning rules (rule id → name) and members per tier (the segment snapshot's, or None)
    rule_names: Callable[[], dict[str, str]] = dict
    tier_counts: Callable[[], dict[str, Any] | None] = lambda: None


def time_budget(remaining_ms: Callable[[], int], reserve_ms: int, max_seconds: float | None = None
                ) -> Callable[[], bool]:
    """``more_time`` for :func:`advance`: True while the slowest step seen so far (a page, a chunk of
    checks) still fits before ``reserve_ms`` of the invocation are left and, with ``max_seconds``, before
    that many seconds have passed since this call."""
    started = last = time.monotonic()
    slowest = 0.0

    def more() -> bool:
        nonlocal last, slowest
        now = time.monotonic()
        slowest, last = max(slowest, now - last), now
        left = (remaining_ms() - reserve_ms) / 1000
        if max_seconds is not None:
            left = min(left, max_seconds - (now - started))
        return left > slowest

    return more


def params_of(report_type: str, date: str | None, start: str | None, end: str | None) -> dict[str, Any]:
    """The validated parameters of a report: ``date`` (one UTC day) or ``from``/``to`` (either may be
    open); a reconciliation is always of one day."""
    if report_type not in TYPES:
        raise MalformedRequest(f"type is one of {', '.join(TYPES)}", field="type")
    if date is not None and (start is not None or end is not None):
        raise ValidationFailed("give either date or from/to, not both", field="date")
    if report_type == "reconciliation":
        if date is None:
            raise ValidationFailed("a reconciliation is of one day: give date (2026-11-24)", field="date")
        finance.bound(date, "date")
        return {"date": date}
    if date is not None:
        finance.bound(date, "date")
        return {"date": date}
    finance.period(start, end)
    return {"from": start, "to": end}


def bounds(params: dict[str, Any]) -> tuple[str | None, str | None]:
    if params.get("date"):
        return finance.bound(params["date"], "date"), finance.bound(params["date"], "date", end=True)
    return finance.period(params.get("from"), params.get("to"))


def fingerprint(report_type: str, params: dict[str, Any], fmt: str) -> str:
    return request_fingerprint({"type": report_type, "params": params, "format": fmt})


def phases(report_type: str, program_id: str, params: dict[str, Any]) -> list[tuple[str, str | None, Any, Any]]:
    """(name, gsi1pk or None for the order checks, start, end) of each phase, in order."""
    start, end = bounds(params)
    p = f"P#{program_id}"
    if report_type == "reconciliation":
        return [("orders", f"{p}#ORDERS", start, end), ("journal", f"{p}#JOURNAL", start, None),
                ("balances", f"{p}#BALANCES", None, None), ("checks", None, None, None)]
    if report_type == "kpis":
        return [("members", f"{p}#BALANCES", None, None), ("journal", f"{p}#JOURNAL", start, end)]
    if report_type == "payouts":
        return [("orders", f"{p}#ORDERS", start, end)]
    return [("journal", f"{p}#JOURNAL", start, end)]


def new_progress() -> dict[str, Any]:
    return {"phase": 0, "phase_name": None, "after": None, "items": 0, "pages": 0, "checked": 0, "done": False}


def advance(report_type: str, program_id: str, params: dict[str, Any], progress: dict[str, Any],
            state: dict[str, Any], sources: Sources, page_size: int, more_time: Callable[[], bool]) -> bool:
    """Work on the report page by page while ``more_time()``; ``progress`` and ``state`` are updated in
    place after each page, so stopping between two pages loses nothing. True once the report is built
    (``state["result"]``)."""
    steps = phases(report_type, program_id, params)
    while not progress["done"]:
        if not more_time():
            return False
        if progress["phase"] >= len(steps):
            state["result"] = _finish(report_type, params, state, sources)
            progress["done"] = True
            progress["phase_name"] = "done"
            break
        name, gsi1pk, start, end = steps[progress["phase"]]
        progress["phase_name"] = name
        if gsi1pk is None:
            checked, left = _check_orders(params["date"], state, sources, page_size)
            progress["checked"] = progress.get("checked", 0) + checked
            if not left:
                progress["phase"] += 1
            continue
        items, after = sources.page(gsi1pk, start, end, page_size, progress["after"])
        _take(report_type, name, params, state, items)
        progress["items"] += len(items)
        progress["pages"] += 1
        progress["after"] = after
        if after is None:
            progress["phase"] += 1
    return True


def _take(report_type: str, phase: str, params: dict[str, Any], state: dict[str, Any],
          items: list[dict[str, Any]]) -> None:
    if report_type == "reconciliation":
        run = finance.Reconciliation(params["date"], state.get("reconciliation"))
        add: Callable[[dict[str, Any]], None] = {
            "orders": lambda item: run.add_order(Order.from_item(item)), "journal": run.add_entry,
            "balances": run.add_balance}[phase]
        for item in items:
            add(item)
        state["reconciliation"] = run.state()
    elif report_type == "kpis":
        count = finance.KpiCount(state.get("kpis"))
        _, end = bounds(params)
        for item in items:
            if phase == "members":
                count.add_member(item, end)
            else:
                count.add_entry(item)
        state["kpis"] = count.state()
    else:
        to_row: Callable[[dict[str, Any]], dict[str, Any]] = (
            (lambda item: finance.payout_row(Order.from_item(item))) if report_type == "payouts"
            else finance.journal_row)
        state.setdefault("rows", []).extend(to_row(item) for item in items)


def _check_orders(day: str, state: dict[str, Any], sources: Sources, page_size: int) -> tuple[int, int]:
    """Check up to ``page_size`` orders (each may read the provider's record or the donation receipt);
    (how many were checked, how many are left)."""
    run = finance.Reconciliation(day, state.get("reconciliation"))
    todo = run.unchecked(page_size)
    for order in todo:
        record = sources.provider_status(order) if order.needs_provider else None
        receipt = sources.donation_of(order) if order.needs_receipt and order.donation_id else None
        run.check(order, record, receipt)
    state["reconciliation"] = run.state()
    return len(todo), run.left()


def _finish(report_type: str, params: dict[str, Any], state: dict[str, Any], sources: Sources) -> dict[str, Any]:
    if report_type == "reconciliation":
        run = finance.Reconciliation(params["date"], state.get("reconciliation"))
        return run.finish(sources.point_accounts(), sources.money_accounts(), sources.holds())
    if report_type == "kpis":
        return finance.KpiCount(state.get("kpis")).finish(params.get("from") or params.get("date"),
                                                         params.get("to") or params.get("date"),
                                                         sources.liability(sources.point_accounts()),
                                                         sources.rule_names(), sources.tier_counts())
    return {"items": state.get("rows", []), "next_cursor": None}


def summary(report_type: str, result: dict[str, Any]) -> dict[str, Any]:
    """A few figures of a finished report, kept on the report item (the result itself is in S3)."""
    if report_type == "reconciliation":
        return {**result["checked"], "in_flight": len(result["in_flight"]),
                "differences": len(result["differences"])}
    if report_type == "kpis":
        return {k: result[k] for k in ("members", "active_members", "points_earned", "points_redeemed",
                                       "liability_points")}
    return {"rows": len(result["items"])}


def run_now(report_type: str, program_id: str, params: dict[str, Any], sources: Sources, page_size: int,
            more_time: Callable[[], bool]) -> dict[str, Any]:
    """The whole report within this call, or :class:`ReportTooLarge` once ``more_time()`` says no."""
    progress: dict[str, Any] = new_progress()
    state: dict[str, Any] = {}
    try:
        finished = advance(report_type, program_id, params, progress, state, sources, page_size, more_time)
    except StorageTimeout as err:
        raise too_large(report_type, params, progress, err.detail) from err
    if not finished:
        raise too_large(report_type, params, progress)
    result: dict[str, Any] = state["result"]
    return result


def too_large(report_type: str, params: dict[str, Any], progress: dict[str, Any],
              cause: str = "it needs more time than one request has") -> ReportTooLarge:
    body = {"type": report_type, **{k: v for k, v in params.items() if v is not None}}
    return ReportTooLarge(
        f"this {report_type} report cannot be answered within one request ({cause}; {progress['items']} items "
        f"read in {progress['pages']} pages so far): create a report job with POST /v1/finance/reports and "
        f"{body} and fetch its result from GET /v1/finance/reports/{{report_id}}",
        report_request={"method": "POST", "href": "/v1/finance/reports", "body": body},
        read_so_far={"items": progress["items"], "pages": progress["pages"], "phase": progress["phase_name"]},
    )


# ---------------------------------------------------------------- jobs

EXPIRES_DAYS = 30  # report items and result files (the bucket's lifecycle rule for reports/ says the same)
URL_SECONDS = 300  # a result's pre-signed download URL
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


def file_name(report_type: str, params: dict[str, Any], fmt: str) -> str:
    parts = [report_type] + [str(params[k])[:10] for k in ("date", "from", "to") if params.get(k)]
    return "-".join(parts) + f".{fmt}"


def request(jobs: ReportJobsPort, queue: ReportQueuePort, program_id: str, report_type: str, params: dict[str, Any],
            fmt: str, idempotency_key: str, actor: str, now: str, now_epoch: int) -> tuple[Report, bool]:
    """Create a report job and queue its first step; the same Idempotency-Key answers the same report
    (and queues it again while no worker has started it, in case the first queueing failed)."""
    if fmt not in FORMATS:
        raise MalformedRequest(f"format is one of {', '.join(FORMATS)}", field="format")
    print_ = fingerprint(report_type, params, fmt)
    report_id = new_id("rpt")
    report = Report(id=report_id, program_id=program_id, type=ReportType(report_type), params=params,
                    format=ReportFormat(fmt), status=ReportStatus.QUEUED, created_at=now, updated_at=now,
                    requested_by=actor, step=0, progress=new_progress())
    replay = jobs.create(report, (idempotency_key, print_), {"report_id": report_id},
                         now_epoch + EXPIRES_DAYS * 86_400)
    if replay is None:
        queue.send(program_id, report_id, 0)
        return report, False
    if replay.fingerprint != print_:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different report",
                                  idempotency_key=idempotency_key)
    first = jobs.get(program_id, replay.result["report_id"])
    if first is None:  # expired with its report
        raise IdempotencyConflict("this Idempotency-Key was used for a report that has expired; use a new key",
                                  idempotency_key=idempotency_key)
    if first.status == ReportStatus.QUEUED and first.step == 0:
        queue.send(program_id, first.id, 0)
    return first, True


def work(jobs: ReportJobsPort, files: ReportFilesPort, queue: ReportQueuePort, sources: Sources, render: Render,
         program_id: str, report_id: str, step: int, page_size: int, more_time: Callable[[], bool], now: str,
         token: str) -> str:
    """One continuation of a report job: pages while ``more_time()``, then either the result (S3) and
    the report completed, or the state (S3), a checkpoint and a message for the next step.

    ``render(type, result, format)`` → (bytes, content type). Answers what happened: ``completed``,
    ``continued``, ``stale`` (a duplicate message, or another worker got there first) or ``gone``.
    """
    report = jobs.get(program_id, report_id)
    if report is None:
        return "gone"
    if report.status not in (ReportStatus.QUEUED, ReportStatus.RUNNING):
        return "stale"
    if report.step == step + 1 and report.status == ReportStatus.RUNNING:
        # this step was checkpointed but its follow-up message may not have been sent: send it (again);
        # a duplicate is harmless, the checkpoint of the next step is conditioned on the step
        queue.send(program_id, report_id, step + 1)
        return "stale"
    if report.step != step:
        return "stale"
    if report.status == ReportStatus.QUEUED:
        jobs.start(program_id, report_id, now)
    progress = dict(report.progress) if report.progress else new_progress()  # advance() changes it in place
    state = files.get_json(report.state_key) if report.state_key else {}
    rtype, params, fmt = report.type, report.params, report.format
    folder = files.folder(program_id, report_id)
    done = advance(rtype, program_id, params, progress, state, sources, page_size, more_time)
    if done:
        result = state["result"]
        body, content_type = render(rtype, result, fmt)
        key = folder + file_name(rtype, params, fmt)
        files.put_result(key, body, content_type)
        fields = {"status": ReportStatus.COMPLETED, "progress": progress, "summary": summary(rtype, result),
                  "result": {"key": key, "content_type": content_type, "bytes": len(body)},
                  "completed_at": now, "updated_at": now}
        if not jobs.checkpoint(program_id, report_id, step, fields):
            return "stale"
        if report.state_key:
            files.delete(report.state_key)
        return "completed"
    key = f"{folder}state-{step + 1}-{token}.json"
    files.put_json(key, state)
    if not jobs.checkpoint(program_id, report_id, step, {"status": ReportStatus.RUNNING, "progress": progress,
                                                         "state_key": key, "updated_at": now}):
        files.delete(key)
        return "stale"
    if report.state_key:
        files.delete(report.state_key)
    queue.send(program_id, report_id, step + 1)
    return "continued"


def view(report: Report, download: Download) -> dict[str, Any]:
    """The API's view of a report; ``download(key)`` → (pre-signed URL, expiry) of a completed result."""
    progress = report.progress or new_progress()
    out: dict[str, Any] = {
        "report_id": report.id, "type": report.type, "params": report.params, "format": report.format,
        "status": report.status, "created_at": report.created_at, "updated_at": report.updated_at,
        "started_at": report.started_at, "completed_at": report.completed_at,
        "progress": {"phase": progress.get("phase_name"), "items": progress.get("items", 0),
                     "pages": progress.get("pages", 0), "orders_checked": progress.get("checked", 0),
                     "continuations": report.step},
        "summary": report.summary, "failure_reason": report.failure_reason, "result": None,
    }
    result = report.result
    if report.status == ReportStatus.COMPLETED and result:
        url, expires_at = download(result["key"])
        out["result"] = {"url": url, "expires_at": expires_at, "content_type": result["content_type"],
                         "bytes": result["bytes"], "file_name": result["key"].rsplit("/", 1)[-1]}
    return out
