"""The steps of a batch run (one Lambda task each; the ASL is infra/batch.asl.json).

``begin`` marks the run started; the Distributed Map calls ``issue_line`` once per line (Step
Functions retries it on transient errors, re-drives it after a lost answer) and ``fail_line`` when
the retries are used up; ``finish`` counts the lines, ends the batch, writes ``batch.completed``
and gives back what the batch still holds from the budget (the cost of the lines that did not pay).

A line's reward runs the payout steps in-process (verify, issue, deliver, complete) — every one of
them idempotent — so re-running a line continues where the last attempt stopped. A line that fails
for good returns its money (the payout ``release`` step), is marked ``failed`` with the reason, and
raises ``LineFailed`` so the Map counts it against the tolerated-failure threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from treue.core.statuses import BatchStatus, ItemType, LineStatus, OrderStatus
from treue.errors import ItemNotFound, LineFailed, MemberNotFound, NotOrderable, RunEnded, StaleCondition
from treue.logic import batches, members, payout, rewards
from treue.logic.models import RewardRequest

if TYPE_CHECKING:
    from treue.core.records import BatchLine, Order
    from treue.logic.ports import (
        BatchesPort,
        BudgetPort,
        GiftCardPort,
        ItemLookup,
        OrdersPort,
        ProgramLookup,
        VaultPort,
    )

# Errors Step Functions retries (the task raises them); anything else fails the line at once
RETRYABLE = ("Contention", "ProviderTimeout", "ProviderUnavailable")


@dataclass
class Deps:
    """What the steps work with (runtime wiring in the handlers, fixtures in tests)."""

    batches: BatchesPort
    orders: OrdersPort
    budgets: BudgetPort
    vault: VaultPort
    provider: GiftCardPort
    program: ProgramLookup  # program id → Program
    find_item: ItemLookup  # item id → raw catalog item or None


def begin(deps: Deps, event: dict[str, Any], now: str) -> dict[str, Any]:
    pid, bid, run = event["program_id"], event["batch_id"], int(event["run"])
    started = deps.batches.begin_run(pid, bid, run, now)
    if not started:  # a re-driven first step, or a run that was ended meanwhile: no lines are issued then
        batch = deps.batches.require(pid, bid)
        if batch.status != BatchStatus.RUNNING or batch.runs != run:
            raise RunEnded(f"batch {bid}: run {run} has ended ({batch.status}); it does not begin again")
    return {"run": event["run"], "started": started}


def issue_line(deps: Deps, event: dict[str, Any], now: str) -> dict[str, Any]:
    """Issue one line of run ``run``: start (or continue) its current attempt's reward."""
    pid, bid, n, run = event["program_id"], event["batch_id"], int(event["line"]), int(event["run"])
    line = deps.batches.line(pid, bid, n)
    if line is None:
        raise LineFailed(f"batch {bid} has no line {n}")
    if line.status in (LineStatus.ISSUED, LineStatus.REJECTED):
        return {"line": n, "status": line.status}
    order = None
    if line.status == LineStatus.FAILED:
        if run <= line.run:  # this run already failed it: a re-drive
            raise LineFailed(line.failure_reason or "failed")
        line, order = _start(deps, line, line.attempt + 1, run, now, source=LineStatus.FAILED)
    elif line.status == LineStatus.PENDING:
        line, order = _start(deps, line, line.attempt, run, now, source=LineStatus.PENDING)
    if line.status != LineStatus.PROCESSING:
        return _settled(line)
    if line.reward_id is None:  # a line moves to processing with its reward's id, in one transaction
        raise LineFailed(f"batch {bid}: line {n} is processing without a reward")
    order = order or deps.orders.require(pid, line.reward_id)
    step = {"program_id": pid, "order_id": order.id, "type": order.type}
    try:
        if order.status == OrderStatus.PENDING:
            payout.verify_hold(deps.orders, step, now)
        if order.type == ItemType.VOUCHER:
            payout.issue_voucher(deps.orders, deps.vault, step, now)
        else:
            payout.issue_gift_card(deps.orders, deps.vault, deps.provider, deps.budgets, step, now)
        payout.deliver(deps.orders, step, now)
        payout.capture(deps.orders, step, now)
    except Exception as err:
        if type(err).__name__ in RETRYABLE:
            raise
        return _fail(deps, line, {"Error": type(err).__name__, "Cause": json.dumps({"errorMessage": str(err)})}, now)
    try:
        _move(deps, line, LineStatus.PROCESSING, LineStatus.ISSUED, line.attempt, now, {"issued_at": now})
    except StaleCondition:  # another try of this line got there first
        return _settled(_line(deps, pid, bid, n))
    return {"line": n, "status": LineStatus.ISSUED, "reward_id": line.reward_id}


def fail_line(deps: Deps, event: dict[str, Any], now: str) -> dict[str, Any]:
    """The line's retries are used up (``event["error"]`` says why): fail it and return its money."""
    line = deps.batches.line(event["program_id"], event["batch_id"], int(event["line"]))
    if line is None or line.status in (LineStatus.ISSUED, LineStatus.FAILED, LineStatus.REJECTED):
        return {"line": event["line"], "status": None if line is None else line.status}
    return _fail(deps, line, event.get("error") or {}, now)


def finish(deps: Deps, event: dict[str, Any], now: str) -> dict[str, Any]:
    """Count the lines, end the run and write ``batch.completed`` (once per run); also the workflow's
    HaltRun step after BeginRun or FinishRun failed (``event["error"]`` says how)."""
    return batches.end_run(deps.batches, deps.budgets, event["program_id"], event["batch_id"], int(event["run"]),
                           event.get("error") or {}, now)


# ---------------------------------------------------------------- internals


def _start(deps: Deps, line: BatchLine, attempt: int, run: int, now: str, source: str
           ) -> tuple[BatchLine, Order | None]:
    """Create the attempt's reward and move the line to processing in one transaction (or find both
    done by an earlier try): (the line, the reward when created here). A line that cannot become a
    reward any more fails with the reason.

    A batch line's reward starts PROCESSING: it holds no points, so there is no hold to verify (what
    the payout's first step does for a single reward), and the budget pays when it is issued."""
    pid, bid = line.program_id, line.batch_id
    rid = batches.line_reward_id(bid, line.line, attempt)
    program = deps.program(pid)
    request = RewardRequest.model_validate(line.request)
    try:
        member = None
        if request.recipient.member_id:
            member = members.get(deps.orders.store, pid, request.recipient.member_id)
        order = rewards.build(program, deps.find_item(request.item_id), request, member, now, f"batch:{bid}")
    except (ItemNotFound, NotOrderable, MemberNotFound) as err:  # the catalog or the member changed since
        reason = "member_not_found" if isinstance(err, MemberNotFound) else "not_orderable"
        try:
            _move(deps, line, source, LineStatus.FAILED, attempt, now, {"failure_reason": reason, "run": run,
                                                                "failure_detail": err.detail[:300]})
        except StaleCondition:
            pass  # another try of this line settled it
        raise LineFailed(f"{reason}: {err.detail}") from err
    order = replace(order, id=rid, batch_id=bid, batch_line=line.line, attempt=attempt,
                    client_reference=f"{bid}:{line.reference}", status=OrderStatus.PROCESSING,
                    history=[*order.history, {"status": OrderStatus.PROCESSING, "at": now,
                                              "reason": "reward: paid from the budget"}])
    fields = {"reward_id": rid, "run": run, "failure_reason": None}
    moved = deps.batches.line_move(pid, bid, line.line, source, LineStatus.PROCESSING, attempt, now, fields)
    try:
        created = deps.orders.create_batch_reward(order, moved)
    except StaleCondition:  # another try of this line moved it first
        created = False
    if not created:
        return _line(deps, pid, bid, line.line), None
    started = replace(line, reward_id=rid, run=run, failure_reason=None, status=LineStatus.PROCESSING,
                      attempt=attempt, updated_at=now)
    return started, order


def _line(deps: Deps, program_id: str, batch_id: str, n: int) -> BatchLine:
    """Line ``n`` as stored now (it was read before: lines are not deleted)."""
    line = deps.batches.line(program_id, batch_id, n)
    if line is None:
        raise LineFailed(f"batch {batch_id} has no line {n}")
    return line


def _settled(line: BatchLine) -> dict[str, Any]:
    if line.status == LineStatus.FAILED:
        raise LineFailed(line.failure_reason or "failed")
    return {"line": line.line, "status": line.status, "reward_id": line.reward_id}


def _fail(deps: Deps, line: BatchLine, error: dict[str, Any], now: str) -> dict[str, Any]:
    """End the line's reward FAILED (money returned, provider order canceled) and the line failed.

    A reward that was delivered (or completed) before the line failed (its task timed out, or
    contention kept it from marking the line) cannot fail any more: the release changes nothing, the
    reward is completed and the line is issued after all."""
    pid = line.program_id
    reason = payout.FAILURE_REASONS.get(error.get("Error", ""), "internal_error")
    if line.reward_id and deps.orders.get(pid, line.reward_id) is not None:
        step = {"program_id": pid, "order_id": line.reward_id, "error": error}
        out = payout.release(deps.orders, deps.provider, deps.budgets, step, now)
        if not out["released"]:
            return _delivered_after_all(deps, line, step, now)
        reason = out.get("reason") or reason
    source = line.status
    try:
        _move(deps, line, source, LineStatus.FAILED, line.attempt, now, {"failure_reason": reason})
    except StaleCondition:
        pass  # another try of this line settled it
    raise LineFailed(reason)


def _delivered_after_all(deps: Deps, line: BatchLine, step: dict[str, Any], now: str) -> dict[str, Any]:
    """The line's reward was delivered: complete it (if its capture had not run) and issue the line."""
    payout.capture(deps.orders, step, now)
    try:
        _move(deps, line, line.status, LineStatus.ISSUED, line.attempt, now, {"issued_at": now})
    except StaleCondition:  # another try of this line got there first
        return _settled(_line(deps, line.program_id, line.batch_id, line.line))
    return {"line": line.line, "status": LineStatus.ISSUED, "reward_id": line.reward_id}


def _move(deps: Deps, line: BatchLine, source: str, to: str, attempt: int, now: str,
          fields: dict[str, Any]) -> None:
    deps.batches.transact(deps.batches.line_move(line.program_id, line.batch_id, line.line, source, to,
                                                 attempt, now, fields))
