"""The sweeper: nothing stays stuck.

An order or reward holds its points (or is accepted against the budget) in one transaction, and its
payout execution is started right after; a batch is accepted (or retried) with its cost held, and its
run's execution started right after. A function that dies in between leaves a record no workflow
owns: an order PENDING with its points held, a batch ``queued`` with its budget held. A workflow can
also end without ending its record (an execution aborted, timed out, or whose compensation ran out
of retries). The sweeper runs on a schedule and settles each record that has been open longer than
a grace period:

    execution      order / reward                         batch (its current run)
    none           PENDING: start it (same name: once)    queued: start it (same name: once)
    RUNNING        left alone                             left alone
    ended          FAILED, points / money released        run ended: lines counted, the hold released,
                   (what was issued undone)               completed_with_failures or halted; retry works

Open records come from the watch list (``treue.store.watchlist``): per program its oldest few, the
programs served in turn, so one program with many stuck records does not hold up the others. Every
action is idempotent and conditioned (the execution name, the settle guard, the run's condition), so
two sweepers at once, or a sweeper racing the workflow, settle each record once.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from treue.core import times
from treue.core.statuses import ORDER_FINAL, BatchStatus, ExecutionStatus, OrderStatus
from treue.errors import OrderNotPayable
from treue.logic import batches, payout
from treue.store.workflow import CLOSED

if TYPE_CHECKING:
    from treue.logic.ports import (
        BatchesPort,
        BatchFilesPort,
        BatchStarter,
        BudgetPort,
        GiftCardPort,
        OrdersPort,
        PayoutExecutions,
        Watched,
        WatchlistPort,
    )

GRACE = timedelta(minutes=5)  # far above the API's 29 s: an order this old is not between two steps
PER_PROGRAM = 20  # records of one program per run
MAX_RECORDS = 400  # records per run (each one or two calls); the rest are taken up by the next run
MIN_SECONDS_LEFT = 10.0  # stop when the invocation has less than this left
FINAL_ORDER = ORDER_FINAL


@dataclass
class Deps:
    """What the sweeper works with (runtime wiring in the handler, moto in tests)."""

    watchlist: WatchlistPort
    orders: OrdersPort
    batches: BatchesPort
    budgets: BudgetPort
    provider: GiftCardPort
    files: BatchFilesPort  # batch files (the run's items file name)
    payouts: PayoutExecutions  # payout executions: start(order), status(name)
    batch_runs: BatchStarter  # batch executions: start_named(name, input, what), status(name)


def sweep(deps: Deps, now: str, grace: timedelta = GRACE, per_program: int = PER_PROGRAM,
          max_records: int = MAX_RECORDS, seconds_left: Callable[[], float] = lambda: float("inf")
          ) -> dict[str, int]:
    """Settle what has been open since before ``now - grace``; counts per kind and outcome
    (``order_started``, ``order_released``, ``order_completed``, ``order_running``, ``order_final``, ``batch_started``,
    ``batch_ended``, ``batch_running``, ``batch_final``; ``deferred``: left for the next run)."""
    cutoff = times.iso(times.parse(now) - grace, "milliseconds")
    found = deps.watchlist.open_before(cutoff, per_program)
    todo = fair_order(found)
    report: Counter[str] = Counter()
    for done, watched in enumerate(todo):
        if done >= max_records or seconds_left() < MIN_SECONDS_LEFT:
            report["deferred"] += len(todo) - done
            break
        if watched.kind == "order":
            outcome = sweep_order(deps, watched.program_id, watched.record_id, now)
        else:
            outcome = sweep_batch(deps, watched.program_id, watched.record_id, now)
        report[f"{watched.kind}_{outcome}"] += 1
    return dict(report)


def stuck_orders(report: dict[str, int]) -> int:
    """Orders and rewards the run found stuck: never started, or their execution ended before them."""
    return report.get("order_started", 0) + report.get("order_released", 0) + report.get("order_completed", 0)


def stuck_batches(report: dict[str, int]) -> int:
    return report.get("batch_started", 0) + report.get("batch_ended", 0)


def fair_order(found: Mapping[str, Sequence[Watched]]) -> list[Watched]:
    """One record of each program in turn (programs in random order), each program's oldest first."""
    programs = list(found)
    random.shuffle(programs)
    out: list[Watched] = []
    for i in range(max((len(v) for v in found.values()), default=0)):
        out.extend(found[p][i] for p in programs if i < len(found[p]))
    return out


def sweep_order(deps: Deps, program_id: str, order_id: str, now: str) -> str:
    """``final`` (off the list), ``running``, ``started`` (had no execution), ``released`` or ``completed``
    (delivered before its execution ended)."""
    order = deps.orders.get(program_id, order_id)
    if order is None or order.status in FINAL_ORDER:
        deps.watchlist.unwatch("order", program_id, order_id)
        return "final"
    execution = deps.payouts.status(order_id)
    if execution == ExecutionStatus.RUNNING:
        return "running"
    if execution is None and order.status == OrderStatus.PENDING:
        deps.payouts.start(order)  # named after the order: a start racing this one cannot start a second
        return "started"
    # the execution ended (or its history expired) and left the order open: compensate as the
    # workflow's ReleaseHold does (undo what was issued, money back, held points back)
    why = f"ended {execution}" if execution else "is gone"
    error = {"Error": "PayoutExecutionEnded",
             "Cause": json.dumps({"errorMessage": f"the payout execution {why} before the order did"})}
    subject = {"program_id": program_id, "order_id": order_id}
    try:
        result = payout.release(deps.orders, deps.provider, deps.budgets, {**subject, "error": error}, now)
    except OrderNotPayable:  # settled meanwhile (another sweeper)
        if deps.orders.require(program_id, order_id).status not in FINAL_ORDER:
            raise
        return "released"
    if not result["released"] and result["status"] == OrderStatus.ISSUED:
        # delivered before its execution ended: it cannot fail any more, so it is completed as its
        # Capture step would have done (held points → redeemed), never released
        payout.capture(deps.orders, subject, now)
        return "completed"
    return "released"


def sweep_batch(deps: Deps, program_id: str, batch_id: str, now: str) -> str:
    """``final`` (off the list), ``running``, ``started`` (its queued run had no execution) or ``ended``."""
    batch = deps.batches.get(program_id, batch_id)
    run = None if batch is None else batches.current_run(batch)
    if batch is None or run is None:
        deps.watchlist.unwatch("batch", program_id, batch_id)
        return "final"
    name = batches.run_execution_name(batch_id, run)
    execution = deps.batch_runs.status(name)
    if execution == ExecutionStatus.RUNNING:
        return "running"
    if execution is None and batch.status == BatchStatus.QUEUED:
        batches.start_run(deps.batch_runs, deps.files, batch, run)
        return "started"
    why = f"ended {execution}" if execution in CLOSED else "is gone"
    out = batches.end_run(deps.batches, deps.budgets, program_id, batch_id, run,
                          {"Error": "RunExecutionEnded", "Cause": f"execution {name} {why} before run {run} did"},
                          now)
    return "final" if out.get("finished") == "before" else "ended"  # "before": another sweeper ended it
