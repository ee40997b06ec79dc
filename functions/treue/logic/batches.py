"""Bulk issuance: a batch of reward lines, validated together, paid together, issued line by line.

A batch is accepted whole or not at all: every line is checked first (each bad line reported with
its number and reason) and the budget must cover the sum of the accepted lines per currency. That
sum is *held* in the transaction that creates the batch (``treue.logic.budget``): another batch or
reward cannot spend it meanwhile, the lines are paid from the hold, and what a run's lines did not
use goes back when the run ends (a retry holds again what its lines cost). With ``partial: true``
the good lines go ahead and the bad ones are reported as rejected.

The batch workflow (infra/batch.asl.json) then runs one *run* over the lines: a Distributed Map
reads the run's items file from S3 and issues each line with bounded concurrency. A line becomes
one reward whose id is derived from (batch, line, attempt), so a line that Step Functions re-drives
finds its reward and continues it instead of issuing a second one; only a retry of a *failed* line
starts a new attempt (and a new reward, the failed one having returned its money).

Line statuses: ``pending`` → ``processing`` → ``issued`` | ``failed`` (a retry moves failed lines
back to processing under the next attempt). Counts per status live on 16 counter shards so lines
finishing together do not contend for one item.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from treue.core import ids
from treue.core.ledger import request_fingerprint
from treue.core.programs import Program
from treue.core.records import Batch, BatchLine
from treue.core.statuses import BATCH_FINISHED, BATCH_UNFINISHED, BatchStatus, EventType, LineStatus
from treue.errors import (
    BatchInvalid,
    BatchNotFound,
    BatchRunning,
    BudgetTooLow,
    Contention,
    IdempotencyConflict,
    ItemNotFound,
    MalformedRequest,
    NothingToRetry,
    NotOrderable,
    StaleCondition,
    UploadNotFound,
)
from treue.logic import budget, rewards
from treue.logic.models import RewardRequest
from treue.logic.payout import error_detail
from treue.store.events import event_put
from treue.store.workflow import CLOSED, STARTED

if TYPE_CHECKING:
    from treue.logic.models import BatchRequest
    from treue.logic.ports import (
        BatchesPort,
        BatchFilesPort,
        BatchStarter,
        BudgetPort,
        ItemLookup,
        MemberLookup,
        Replayed,
    )

T = TypeVar("T")

MAX_INLINE_LINES = 10_000
MAX_UPLOAD_LINES = 50_000
RUNNING = BATCH_UNFINISHED
FINISHED = BATCH_FINISHED
DEFAULT_TOLERATED_FAILURE_PERCENTAGE = 10
MAX_CURRENCIES = 10  # one DynamoDB transaction creates the batch and holds its cost in every currency

# The columns of a batch CSV (header row required; only reference and item_id must be present)
CSV_INPUT_COLUMNS = ("reference", "item_id", "face_value", "email", "member_id", "external_id", "name", "message",
                     "delivery_method", "delivery_email")
# The columns of GET /v1/batches/{id}/lines as CSV
LINE_CSV_COLUMNS = ("line", "reference", "status", "attempt", "reward_id", "item_id", "face_value", "currency",
                    "recipient_email", "recipient_member_id", "recipient_external_id", "failure_reason", "updated_at")


def line_reward_id(batch_id: str, line: int, attempt: int) -> str:
    """The reward of a line's attempt; deterministic, so every re-drive of an attempt finds the same one."""
    return ids.derived_id("rwd", batch_id, f"line:{line}:attempt:{attempt}")


def run_execution_name(batch_id: str, run: int) -> str:
    return f"{batch_id}-run-{run}"


# ---------------------------------------------------------------- input


def lines_from_csv(text: str, limit: int = MAX_UPLOAD_LINES) -> list[dict[str, Any]]:
    """The lines of a batch CSV (a header row, then one reward per row) as request bodies.

    Cells are strings; ``face_value`` is read as an integer when it is one (else left for validation
    to reject with the line number). Empty cells are absent."""
    text = text.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("reference", "item_id") if c not in header]
    if missing:
        raise MalformedRequest(f"the CSV header lacks {', '.join(missing)}; columns: {', '.join(CSV_INPUT_COLUMNS)}",
                               columns=list(CSV_INPUT_COLUMNS))
    unknown = [h for h in header if h not in CSV_INPUT_COLUMNS]
    if unknown:
        raise MalformedRequest(f"the CSV has unknown columns {', '.join(unknown)}", columns=list(CSV_INPUT_COLUMNS))
    reader.fieldnames = header
    lines: list[dict[str, Any]] = []
    for row in reader:
        if len(lines) >= limit:
            raise MalformedRequest(f"a batch has at most {limit:,} lines", limit=limit)
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not any(cells.values()):
            continue
        lines.append(_line_of_row(cells))
    return lines


def _line_of_row(cells: dict[str, str]) -> dict[str, Any]:
    line: dict[str, Any] = {"reference": cells.get("reference", ""), "item_id": cells.get("item_id", "")}
    value = cells.get("face_value")
    if value:
        line["face_value"] = int(value) if value.isdigit() else value
    recipient = {k: cells[k] for k in ("email", "member_id", "external_id", "name") if cells.get(k)}
    line["recipient"] = recipient
    if cells.get("message"):
        line["message"] = cells["message"]
    if cells.get("delivery_method"):
        line["delivery"] = {"method": cells["delivery_method"]}
        if cells.get("delivery_email"):
            line["delivery"]["email"] = cells["delivery_email"]
    return line


# ---------------------------------------------------------------- validation


def validate(program: Program, batch_id: str, raw_lines: list[Any], find_item: ItemLookup,
             find_members: MemberLookup, now: str, actor: str) -> tuple[list[BatchLine], list[dict[str, Any]]]:
    """(accepted lines, problems): every line checked, every problem named with its line number; an
    accepted line is batch ``batch_id``'s line as stored, pending its first attempt.

    ``find_item(item_id)`` gives a raw catalog item or None; ``find_members(ids)`` the members of this
    program among ``ids`` by id. Line 1 is the first line (in a CSV: the first row after the header).
    """
    problems: list[dict[str, Any]] = []
    parsed: list[tuple[int, RewardRequest]] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(raw_lines, start=1):
        reference = raw.get("reference") if isinstance(raw, dict) else None
        try:
            request = RewardRequest.model_validate(raw)
        except ValidationError as err:
            for e in err.errors():
                field = ".".join(str(p) for p in e.get("loc", ()))
                reason = str(e.get("msg", "invalid")).removeprefix("Value error, ")
                problems.append(_problem(n, reference, field, reason))
            continue
        if request.reference in seen:
            first = seen[request.reference]
            problems.append(_problem(n, request.reference, "reference",
                                     f"reference {request.reference} is already used by line {first}"))
            continue
        seen[request.reference] = n
        parsed.append((n, request))
    wanted = {r.recipient.member_id for _, r in parsed if r.recipient.member_id}
    well_formed = {m for m in wanted if ids.well_formed(m, "mbr")}
    members = find_members(sorted(well_formed)) if well_formed else {}
    accepted = []
    for n, request in parsed:
        member = None
        if request.recipient.member_id:
            member = members.get(request.recipient.member_id)
            if member is None:
                problems.append(_problem(n, request.reference, "recipient.member_id",
                                         f"member {request.recipient.member_id[:64]} does not exist"))
                continue
        try:
            order = rewards.build(program, find_item(request.item_id), request, member, now, actor)
        except (ItemNotFound, NotOrderable) as err:
            field = {"item_type": "item_id", "country": "item_id", "face_value": "face_value",
                     "delivery_email": "delivery.email", "delivery_method": "delivery.method"}.get(
                err.extra.get("reason", ""), "item_id")
            problems.append(_problem(n, request.reference, field, err.detail))
            continue
        accepted.append(BatchLine(
            program_id=program.id, batch_id=batch_id, line=n, reference=request.reference,
            request=request.model_dump(mode="json", exclude_none=True),
            type=order.type, item_id=order.item_id, face_value=order.face_value,
            currency=order.currency, cost=rewards.cost(order), status=LineStatus.PENDING, attempt=1, run=0,
            updated_at=now,
        ))
    problems.sort(key=lambda p: p["line"])
    return accepted, problems


def _problem(line: int, reference: Any, field: str, reason: str) -> dict[str, Any]:
    out: dict[str, Any] = {"line": line, "field": field, "reason": reason}
    if isinstance(reference, str) and reference:
        out["reference"] = reference[:128]
    return out


def costs(lines: Iterable[BatchLine]) -> dict[str, int]:
    """What the lines draw from the budget per currency (face value and fee), minor units."""
    out: dict[str, int] = {}
    for line in lines:
        if line.cost and line.currency:
            out[line.currency] = out.get(line.currency, 0) + line.cost
    return out


def shortfalls(need: dict[str, int], available: dict[str, int]) -> list[dict[str, Any]]:
    return [{"currency": cur, "needed": amount, "available": available.get(cur, 0)}
            for cur, amount in sorted(need.items()) if available.get(cur, 0) < amount]


# ---------------------------------------------------------------- views


def counts(shards: list[dict[str, Any]]) -> dict[str, int]:
    return {s: sum(int(shard.get(s, 0)) for shard in shards) for s in LineStatus}


def status_after_run(counted: dict[str, int]) -> str:
    """What a batch is once a run has ended: lines left unfinished (the run stopped at the tolerated
    failure threshold, or was stopped) make it ``halted``; a retry picks them up."""
    if counted[LineStatus.PENDING] or counted[LineStatus.PROCESSING]:
        return BatchStatus.HALTED
    return BatchStatus.COMPLETED_WITH_FAILURES if counted[LineStatus.FAILED] else BatchStatus.COMPLETED


def view(batch: Batch, counted: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "batch_id": batch.id, "status": str(batch.status), "name": batch.name, "lines": batch.lines,
        "counts": counted, "rejected": batch.rejected, "runs": batch.runs,
        "cost": [{"value": v, "currency": c} for c, v in sorted(batch.cost.items())],
        "tolerated_failure_percentage": batch.tolerated_failure_percentage,
        "created_at": batch.created_at, "updated_at": batch.updated_at,
    }
    if batch.completed_at:
        out["completed_at"] = batch.completed_at
    if batch.halted_reason:
        out["halted_reason"] = batch.halted_reason
    return out


def line_view(line: BatchLine) -> dict[str, Any]:
    out: dict[str, Any] = {
        "line": line.line, "reference": line.reference, "status": str(line.status), "attempt": line.attempt,
        "recipient": line.recipient, "updated_at": line.updated_at,
    }
    if line.item_id:  # rejected lines have none
        out["item_id"] = line.item_id
        out["face_value"] = {"value": line.face_value, "currency": line.currency}
    if line.reward_id:
        out["reward_id"] = line.reward_id
    if line.failure_reason:
        out["failure_reason"] = line.failure_reason
    return out


def line_row(line: BatchLine) -> dict[str, Any]:
    recipient = line.recipient
    return {
        "line": line.line, "reference": line.reference, "status": str(line.status), "attempt": line.attempt,
        "reward_id": line.reward_id, "item_id": line.item_id, "face_value": line.face_value,
        "currency": line.currency, "recipient_email": recipient.get("email"),
        "recipient_member_id": recipient.get("member_id"), "recipient_external_id": recipient.get("external_id"),
        "failure_reason": line.failure_reason, "updated_at": line.updated_at,
    }


def require_id(batch_id: str) -> str:
    if not ids.well_formed(batch_id, "bat"):
        raise BatchNotFound(f"batch {batch_id[:40]} does not exist")
    return batch_id


# ---------------------------------------------------------------- submit and retry


def submit(store: BatchesPort, files: BatchFilesPort, starter: BatchStarter, budgets: BudgetPort, program: Program,
           find_item: ItemLookup, find_members: MemberLookup, request: BatchRequest, idempotency_key: str,
           actor: str, now: str) -> tuple[Batch, list[dict[str, Any]], bool]:
    """Validate and accept a batch, then start its first run: (batch, rejected lines, replayed)."""
    fingerprint = request_fingerprint(request.fingerprint_payload())
    earlier = store.replay_of(program.id, idempotency_key)
    text = None
    if request.upload_id is not None and (earlier is None or earlier.fingerprint != fingerprint):
        # An upload is fingerprinted by its content, not its upload id: the same file uploaded again
        # (a new upload id) under the same Idempotency-Key is a replay, another file a conflict.
        text = files.read_upload(program.id, request.upload_id, MAX_UPLOAD_BYTES)
        if text is None:
            raise UploadNotFound(f"nothing was uploaded for {request.upload_id}; PUT the CSV to its url first",
                                 upload_id=request.upload_id)
        fingerprint = upload_fingerprint(request, text)
    if earlier is not None:
        return _replayed(store, files, starter, program.id, earlier, fingerprint, idempotency_key)
    if request.lines is not None:
        raw_lines, source = request.lines, "inline"
    else:
        raw_lines, source = lines_from_csv(text or ""), "upload"  # text: the upload, read above
        if not raw_lines:
            raise BatchInvalid("the uploaded CSV has no lines", errors=[])
    batch_id = ids.new_id("bat")
    accepted, problems = validate(program, batch_id, raw_lines, find_item, find_members, now, actor)
    if problems and not request.partial:
        raise BatchInvalid(f"{len({p['line'] for p in problems})} of {len(raw_lines)} lines are not valid; "
                           "nothing was issued (send partial: true to issue the valid lines)", errors=problems)
    if not accepted:
        raise BatchInvalid(f"none of the {len(raw_lines)} lines is valid; nothing was issued", errors=problems)
    need = costs(accepted)
    if len(need) > MAX_CURRENCIES:
        raise BatchInvalid(f"the lines pay in {len(need)} currencies; a batch pays in at most {MAX_CURRENCIES} "
                           "(split it by currency); nothing was issued", errors=[])
    _check_budget(budgets, program.id, need, "the batch", "; nothing was issued")
    rejected = _rejected_lines(problems)
    lines = accepted + [BatchLine(program_id=program.id, batch_id=batch_id, line=n, reference=r["reference"],
                                  request={}, status=LineStatus.REJECTED, attempt=0, run=0,
                                  failure_reason=r["reason"], updated_at=now) for n, r in sorted(rejected.items())]
    batch = Batch(
        id=batch_id, program_id=program.id, name=request.name, status=BatchStatus.QUEUED, queued_run=1, runs=0,
        lines=len(raw_lines), accepted=len(accepted), rejected=len(rejected), cost=need,
        tolerated_failure_percentage=request.tolerated_failure_percentage, partial=request.partial, source=source,
        actor=actor, client_reference=idempotency_key, created_at=now, updated_at=now,
    )
    files.put_run(program.id, batch_id, 1, [line.line for line in accepted])
    store.put_lines(batch, lines)
    try:
        replay = _holding(budgets, program.id, batch_id, 1, need, now, "the batch", "; nothing was issued",
                          lambda hold: store.create(batch, lines, ("batch", idempotency_key, fingerprint),
                                                    {"batch_id": batch_id}, hold))
    except (BudgetTooLow, Contention):  # certainly not created: no lines left over
        store.delete_lines(batch, lines)
        raise
    if replay is not None:  # a concurrent request with the same key won (or our own, answered late)
        if replay.result.get("batch_id") != batch_id:
            store.delete_lines(batch, lines)
        return _replayed(store, files, starter, program.id, replay, fingerprint, idempotency_key)
    start_run(starter, files, batch, 1)
    return batch, problems, False


MAX_UPLOAD_BYTES = 20_000_000


def upload_fingerprint(request: BatchRequest, text: str) -> str:
    """The fingerprint of a batch from an upload: the request with the file's SHA-256 in place of its
    upload id (an upload with the same id and content fingerprints alike either way)."""
    payload = request.fingerprint_payload()
    payload.pop("upload_id", None)
    payload["upload_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return request_fingerprint(payload)


def _replayed(store: BatchesPort, files: BatchFilesPort, starter: BatchStarter, program_id: str, replay: Replayed,
              fingerprint: str, key: str) -> tuple[Batch, list[dict[str, Any]], bool]:
    if replay.fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different batch",
                                  idempotency_key=key)
    batch = store.require(program_id, replay.result["batch_id"])
    if batch.status == BatchStatus.QUEUED:  # the first answer may have been lost before the run started
        start_run(starter, files, batch, batch.queued_run)
    rejected = []
    if batch.rejected:
        rejected = [{"line": line.line, "reference": line.reference, "field": "", "reason": line.failure_reason}
                    for line in store.lines(program_id, batch.id, statuses=(LineStatus.REJECTED,))]
    return batch, rejected, True


def _rejected_lines(problems: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for p in problems:
        entry = out.setdefault(p["line"], {"reference": p.get("reference"), "reasons": []})
        entry["reasons"].append(f"{p['field']}: {p['reason']}" if p["field"] else p["reason"])
    return {n: {"reference": e["reference"], "reason": "; ".join(e["reasons"])[:1000]} for n, e in out.items()}


def _check_budget(budgets: BudgetPort, program_id: str, need: dict[str, int], what: str, tail: str) -> None:
    short = shortfalls(need, {cur: budgets.available(program_id, cur)[0] for cur in need})
    if short:
        raise BudgetTooLow(f"the budget cannot pay for {what}: " + ", ".join(
            f"{s['currency']} needs {s['needed']} minor units, has {s['available']}" for s in short) + tail,
            shortfalls=short)


def _holding(budgets: BudgetPort, program_id: str, batch_id: str, run: int, need: dict[str, int], now: str, what: str,
             tail: str, write: Callable[[list[dict[str, Any]]], T]) -> T:
    """``write(hold_items)`` — a transaction with the hold's items right after its first item — and
    its result; BudgetTooLow when a balance no longer covers the hold (another batch or reward took
    the money since the check)."""
    low_events = True
    for _ in range(4):
        items, conditions, flags = budget.hold_plan(budgets, program_id, batch_id, run, need, now, low_events)
        try:
            return write(items)
        except StaleCondition as err:
            at = err.index - 1
            if 0 <= at < conditions:  # short now: refused; covered again (money came back): hold again
                _check_budget(budgets, program_id, need, what, tail)
                continue
            if at in flags and low_events:  # another payment raised the low flag meanwhile
                low_events = False
                continue
            raise
    raise Contention(f"the budget kept changing while {what} was being held; retry")


def start_run(starter: BatchStarter, files: BatchFilesPort, batch: Batch, run: int) -> str:
    """Start run ``run``'s execution: STARTED, or EXISTS when it was started before (maybe ended since)."""
    return starter.start_named(run_execution_name(batch.id, run), {
        "program_id": batch.program_id, "batch_id": batch.id, "run": run, "bucket": files.bucket,
        "items_key": files.run_key(batch.program_id, batch.id, run),
        "tolerated_failure_percentage": batch.tolerated_failure_percentage,
    }, "batch")


def current_run(batch: Batch) -> int | None:
    """The run a queued or running batch is on; None when it is on none (its last run ended)."""
    if batch.status == BatchStatus.QUEUED:
        return batch.queued_run
    if batch.status == BatchStatus.RUNNING:
        return batch.runs
    return None


def end_run(store: BatchesPort, budgets: BudgetPort, program_id: str, batch_id: str, run: int, error: dict[str, Any],
            now: str) -> dict[str, Any]:
    """Count the lines and end run ``run`` — running, or queued and never begun — in one transaction
    with ``batch.completed`` (once per run), giving back what the batch still holds from the budget
    (the cost of the lines that did not pay); the batch leaves the sweeper's watch list. Lines left
    pending or processing make it ``halted`` (``error``, when given, is the reason); a retry takes
    them up in the next run."""
    counted = counts(store.counters(program_id, batch_id))
    status = status_after_run(counted)
    reason = None
    if status == BatchStatus.HALTED:
        reason = (f"{error.get('Error')}: {error_detail(error) or error.get('Cause', '')}".strip(": ")
                  if error else "the run ended with lines unfinished")
    batch = store.require(program_id, batch_id)
    data = {"batch_id": batch_id, "run": run, "status": status, "lines": batch.lines, "counts": counted}
    if batch.name:
        data["name"] = batch.name
    event_id = ids.derived_id("evt", batch_id, f"completed:{run}")
    currencies = sorted(batch.cost)
    for _ in range(4):
        release = budget.release_plan(budgets, program_id, batch_id, run, currencies, now)
        try:
            store.transact([store.finish_run_items(program_id, batch_id, run, status, now, reason),
                            event_put(store.table, program_id, EventType.BATCH_COMPLETED, data, now, event_id),
                            store.unwatch_item(program_id, batch_id), *release])
        except StaleCondition as err:
            if err.index >= 3:  # a line still running drew from the hold meanwhile: read it again
                continue
            current = store.require(program_id, batch_id)
            return {"status": current.status, "run": current.runs, "finished": "before"}
        return {"status": status, "run": run, "counts": counted}
    raise Contention(f"batch {batch_id}: its hold kept changing while run {run} was ending")


def retry(store: BatchesPort, files: BatchFilesPort, starter: BatchStarter, budgets: BudgetPort, program_id: str,
          batch_id: str, now: str) -> tuple[Batch, int]:
    """Start a run over the lines not issued: failed lines get a new attempt, lines a halted run left
    pending or processing continue theirs. Returns (batch, lines re-driven)."""
    batch = store.require(program_id, batch_id)
    run = current_run(batch)
    if run is not None:
        name = run_execution_name(batch_id, run)
        if batch.status == BatchStatus.QUEUED and start_run(starter, files, batch, run) == STARTED:
            return batch, -1  # a retry whose run had not begun: started now
        ended = starter.status(name)
        if ended not in CLOSED:
            if batch.status == BatchStatus.QUEUED:  # its execution runs and is about to begin the run
                return batch, -1
            raise BatchRunning(f"batch {batch_id} is {batch.status}; retry once its run has finished",
                               status=batch.status)
        # the run's execution ended without ending the run (it died before its last step): end it
        # now, which gives back what the run held, then retry as after any run
        end_run(store, budgets, program_id, batch_id, run,
                {"Error": "RunExecutionEnded", "Cause": f"execution {name} ended {ended} before the run did"}, now)
        batch = store.require(program_id, batch_id)
    if batch.status not in FINISHED:
        raise BatchRunning(f"batch {batch_id} is {batch.status}; retry once its run has finished",
                           status=batch.status)
    redo = list(store.lines(program_id, batch_id,
                            statuses=(LineStatus.FAILED, LineStatus.PENDING, LineStatus.PROCESSING)))
    if not redo:
        raise NothingToRetry(f"every line of batch {batch_id} is issued or rejected")
    # a line a halted run left processing may have paid already: held again all the same, and what
    # it does not use goes back when the run ends
    need = costs(redo)
    _check_budget(budgets, program_id, need, "the lines to retry", "")
    run = batch.runs + 1
    files.put_run(program_id, batch_id, run, [line.line for line in redo])
    if not _holding(budgets, program_id, batch_id, run, need, now, "the lines to retry", "",
                    lambda hold: store.queue_run(program_id, batch_id, run, now, hold)):
        raise BatchRunning(f"batch {batch_id} was retried at the same moment; see its status")
    batch = store.require(program_id, batch_id)
    start_run(starter, files, batch, run)
    return batch, len(redo)
