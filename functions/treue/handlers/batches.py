"""Batches function: bulk issuance of gift cards and vouchers from the budget (Idempotency-Key required)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from treue import runtime
from treue.core import ids
from treue.core.records import Batch
from treue.errors import MalformedRequest
from treue.handlers.http import (
    Body,
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
from treue.handlers.models import batches as m
from treue.handlers.tracing import Tracer
from treue.logic import batches, finance
from treue.logic.models import BatchRequest, UploadRequest

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app("Batches")
CSV = "text/csv"
UPLOAD_SECONDS = 900
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=200)]
LineStatus = Annotated[str | None, Query(pattern=r"^(pending|processing|issued|failed|rejected)$")]


def _view(batch_id: str, program_id: str, batch: Batch | None = None) -> dict[str, Any]:
    store = runtime.batches()
    batch = batch or store.require(program_id, batches.require_id(batch_id))
    return batches.view(batch, batches.counts(store.counters(program_id, batch.id)))


@responses({202: {"description": "Validated, paid for and queued; GET the batch for progress",
                  "content": {"application/json": {"model": m.BatchAccepted}}}})
@tracer.capture_method
def submit(body: Annotated[BatchRequest, Body()]) -> Response[Any]:
    who = caller(app)
    key = idempotency_key(app, "batch")
    store = runtime.store()
    batch, rejected, replayed = batches.submit(
        runtime.batches(), runtime.batch_files(), runtime.batch_starter(), runtime.budgets(),
        runtime.program(who.program_id), runtime.catalog().get,
        lambda wanted: store.get_members(who.program_id, wanted), body, key, who.actor, runtime.now())
    if not replayed:
        metrics.add_metric(name="BatchesAccepted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="BatchLinesAccepted", unit=MetricUnit.Count, value=batch.accepted)
    logger.info("batch accepted", extra={"batch_id": batch.id, "lines": batch.lines,
                                         "rejected": batch.rejected, "replayed": replayed})
    answer = m.BatchAccepted.model_validate({**_view(batch.id, who.program_id, batch), "replayed": replayed,
                                             "rejected_lines": rejected})
    return Response(202, "application/json", answer.model_dump(mode="json"),
                    headers={"Location": f"/v1/batches/{batch.id}"})


@tracer.capture_method
def list_batches(limit: Limit = 50, cursor: Cursor = None) -> m.BatchPage:
    who = caller(app)
    store = runtime.batches()
    items, next_cursor = store.page(who.program_id, listing_cursor(cursor, "bat"), limit)
    views = [batches.view(b, batches.counts(store.counters(who.program_id, b.id))) for b in items]
    return m.BatchPage.model_validate({"items": views, "next_cursor": next_cursor})


@responses({201: {"description": "PUT the CSV to url, then POST /v1/batches with the upload_id",
                  "content": {"application/json": {"model": m.BatchUpload}}}})
@tracer.capture_method
def upload(body: Annotated[UploadRequest, Body()]) -> Response[Any]:
    who = caller(app)
    upload_id = ids.new_id("upl")
    expires = (datetime.now(UTC) + timedelta(seconds=UPLOAD_SECONDS)).isoformat(timespec="seconds")
    answer = m.BatchUpload(
        upload_id=upload_id,
        url=runtime.batch_files().upload_url(who.program_id, upload_id, UPLOAD_SECONDS, body.content_length),
        method="PUT", headers={"Content-Type": CSV, "Content-Length": str(body.content_length)},
        expires_at=expires.replace("+00:00", "Z"),
        max_lines=batches.MAX_UPLOAD_LINES, columns=list(batches.CSV_INPUT_COLUMNS),
    )
    return Response(201, "application/json", answer.model_dump(mode="json"))


@tracer.capture_method
def get_batch(batch_id: str) -> m.Batch:
    return m.Batch(**_view(batch_id, caller(app).program_id))


@responses({200: {"description": "Lines (CSV: every line from the cursor on, the next cursor in a header)",
                  "content": {"application/json": {"model": m.BatchLinePage},
                              CSV: {"schema": {"type": "string"}}}}})
@tracer.capture_method
def lines(limit: Limit = 100, cursor: Cursor = None, status: LineStatus = None) -> Response[Any]:
    who = caller(app)
    batch_id = app.current_event.path_parameters["batch_id"]
    store = runtime.batches()
    store.require(who.program_id, batches.require_id(batch_id))
    after = _cursor(cursor)
    statuses = (status,) if status else ()
    wants_csv = CSV in (header(app, "Accept") or "").lower()
    page_size = 10_000 if wants_csv else limit
    page = list(store.lines(who.program_id, batch_id, after=after, limit=page_size + 1, statuses=statuses))
    more = len(page) > page_size
    page = page[:page_size]
    next_cursor = str(page[-1].line) if more and page else None
    if wants_csv:
        headers = {"Content-Disposition": f'attachment; filename="{batch_id}-lines.csv"'}
        if next_cursor:
            headers["Treue-Next-Cursor"] = next_cursor
        return Response(200, "text/csv; charset=utf-8",
                        finance.to_csv(batches.LINE_CSV_COLUMNS, [batches.line_row(line) for line in page]),
                        headers=headers)
    answer = m.BatchLinePage.model_validate({"items": [batches.line_view(line) for line in page],
                                             "next_cursor": next_cursor})
    return Response(200, "application/json", answer.model_dump(mode="json"))


def _cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise MalformedRequest("cursor is the next_cursor of the previous page", field="cursor")
    return int(cursor)


@responses({202: {"description": "A new run was started",
                  "content": {"application/json": {"model": m.BatchRetried}}}})
@tracer.capture_method
def retry(batch_id: str) -> Response[Any]:
    who = caller(app)
    batch, count = batches.retry(runtime.batches(), runtime.batch_files(), runtime.batch_starter(),
                                 runtime.budgets(), who.program_id, batches.require_id(batch_id), runtime.now())
    logger.info("batch retried", extra={"batch_id": batch_id, "run": batch.queued_run, "lines": count})
    answer = m.BatchRetried(batch_id=batch.id, status=batch.status, run=batch.queued_run, lines=count)
    return Response(202, "application/json", answer.model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
