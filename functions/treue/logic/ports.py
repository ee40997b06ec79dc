"""The ports of the logic layer: what a logic function receives, as ``typing.Protocol`` classes.

Logic never builds its dependencies: the handlers (through ``treue.runtime``), the CLI, the twin and
the tests pass them in, the real stores and providers or fakes, and each is typed here by the
methods logic calls on it, nothing more. A class conforms by its methods alone (no base class to
inherit); mypy checks that the real ones do (``tests/unit/test_ports.py``) and that logic calls
nothing else on them (``make test``).

Everything here is for the type checker: logic modules import this module under ``TYPE_CHECKING``
only, so no function loads it, and it imports nothing from ``treue.store`` or ``treue.providers`` at
run time (the value types in the signatures, such as the gift card request and issuance, are
imported for the type checker only).

Webhook endpoints, events, batches, batch lines and orders (rewards too) are typed records
(``treue.core.records``), as are vouchers and donations (``treue.core.issued_records``) and report
jobs (``treue.core.report_records``); what else logic reads and writes of a store is a plain dict
here: ``Record``. A transaction item, as the stores build them for one another's transactions, is an
``Item``.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from treue.core.issued_records import Donation, Voucher
    from treue.core.keys import ApiKeyRecord
    from treue.core.ledger import Posting
    from treue.core.money import Movement
    from treue.core.programs import Program
    from treue.core.records import Batch, BatchLine, Order, WebhookEndpoint, WebhookSecret
    from treue.core.report_records import Report
    from treue.core.statuses import EventType
    from treue.logic.rules import Rule
    from treue.providers.giftcards import Issuance, IssueRequest

Record = dict[str, Any]  # a stored record as logic reads and writes it
Item = dict[str, Any]  # one item of a DynamoDB transaction, built by a store
Page = tuple[builtins.list[Record], str | None]  # one page of a listing and the cursor of the next (None: last)

# Lookups passed as plain functions
ItemLookup = Callable[[str], Record | None]  # catalog item id → the raw catalog item, None when unknown
MemberLookup = Callable[[builtins.list[str]], Mapping[str, Record]]  # member ids → the members found, by id
ProgramLookup = Callable[[str], "Program"]  # program id → the program (ProgramNotFound when unknown)
# (program id, an ISO 8601 time) → the earning rules' versions in force then (``RuleStore.in_force``)
RulesAt = Callable[[str, str], builtins.list["Rule"]]
# (program, member id, now) → the ids of the segments the member is in now (what rules' segment conditions ask)
SegmentsOf = Callable[["Program", str, "datetime"], frozenset[str]]
Render = Callable[[str, Record, str], tuple[bytes, str]]  # (report type, result, format) → (body, content type)
Download = Callable[[str], tuple[str, str]]  # result file key → (pre-signed URL, its expiry)
# One page of a program-wide listing in time order (``treue.store.reports.Reports.chunk``):
# (gsi1pk, start, end, limit, the plain key to continue after) → (items, the key after the last, None at the end)
ReportPage = Callable[[str, str | None, str | None, int, dict[str, str] | None],
                      tuple[builtins.list[Record], dict[str, str] | None]]


class Replayed(Protocol):
    """An idempotency guard found in place (``treue.store.table.Replay``)."""

    @property
    def fingerprint(self) -> str:
        """The first request's fingerprint."""
        ...

    @property
    def result(self) -> Record:
        """The first request's answer (what a replay answers)."""
        ...


# ---------------------------------------------------------------- the ledger and the programs


class TierPort(Protocol):
    """A member's purchase counters and tier state (``treue.store.tiers.TierCounters``, part of ``dynamodb.Store``)."""

    def get_member(self, program_id: str, member_id: str) -> Record | None: ...

    def tier_state(self, program_id: str, member_id: str) -> Record | None: ...

    def month_counters(self, program_id: str, member_id: str, first: str, last: str) -> dict[str, Record]: ...

    def month_item(self, program_id: str, member_id: str, month: str, adds: dict[str, int],
                   categories: Sequence[str], room: tuple[str, int] | None = ...) -> Item: ...

    def tier_put(self, program_id: str, member_id: str, read_version: int, state: Record) -> Item: ...

    def tier_change_items(self, program_id: str, member_id: str, read_version: int, state: Record,
                          event_type: EventType, event: Record, now: str) -> builtins.list[Item]: ...

    def tiers_due(self, shard: int, now: str, limit: int = ..., after: Record | None = ...
                  ) -> tuple[builtins.list[Record], Record | None]: ...

    def transact_first(self, items: builtins.list[Item]) -> bool: ...


class LedgerPort(TierPort, Protocol):
    """Members, their balances and postings (``treue.store.ledger.LedgerStore``, ``dynamodb.Store``), with the
    purchase counters and tier state accrual writes in the same transaction."""

    def enroll(self, program_id: str, member: Record, identifiers: dict[str, str],
               idempotency: tuple[str, str] | None = ..., welcome: Sequence[Posting] = ...,
               extra: builtins.list[Item] | None = ..., result: Record | None = ...) -> Replayed | None: ...

    def list_referrals(self, program_id: str, member_id: str, limit: int, cursor: str | None) -> Page: ...

    def referral_paid_item(self, program_id: str, referrer_id: str, referee_id: str, role: str, points: int,
                           now: str) -> Item: ...

    def get_entry(self, program_id: str, member_id: str, posting_id: str) -> Record | None: ...

    def event_item(self, program_id: str, type_: str, data: Record, now: str) -> Item: ...

    def progress(self, program_id: str, member_id: str) -> dict[str, int] | None: ...

    def get_member(self, program_id: str, member_id: str) -> Record | None: ...

    def find_member_id(self, program_id: str, kind: str, value: str) -> str | None: ...

    def post(self, program_id: str, member_id: str, idempotency: tuple[str, str, str], result: Record,
             posting: Posting | None, now: str, extra: builtins.list[Item] | None = ...,
             more: Sequence[Posting] = ..., counts: Mapping[str, int] | None = ...,
             expect_updated_at: str | None = ...) -> Replayed | None: ...

    def get_balance(self, program_id: str, member_id: str) -> dict[str, int] | None: ...

    def balance_state(self, program_id: str, member_id: str) -> Record | None: ...

    def buckets(self, program_id: str, member_id: str) -> dict[str, int]: ...

    def drop_buckets(self, program_id: str, member_id: str, dates: Sequence[str]) -> None: ...

    def pending_items(self, program_id: str, member_id: str, due_by: str | None = ...) -> builtins.list[Record]: ...

    def pending_item(self, program_id: str, member_id: str, sk: str) -> Record | None: ...

    def pending_take_item(self, program_id: str, member_id: str, sk: str, points: int, left: int) -> Item: ...

    def due_members(self, kind: str, before: str, after: str | None = ..., limit: int = ...
                    ) -> builtins.list[tuple[str, str, str]]: ...

    def list_entries(self, program_id: str, member_id: str, limit: int, cursor: str | None) -> Page: ...

    def rule_uses(self, program_id: str, member_id: str, wanted: Sequence[tuple[str, str]]
                  ) -> dict[tuple[str, str], int]: ...

    def rule_use_items(self, program_id: str, member_id: str, uses: Sequence[tuple[str, str, int, int | None]]
                       ) -> builtins.list[Item]: ...


class ProgramPort(Protocol):
    """Programs and their API keys (``treue.store.dynamodb.Store``)."""

    def put_program(self, program: Program) -> None: ...

    def get_program(self, program_id: str) -> Program | None: ...

    def put_api_key(self, record: ApiKeyRecord) -> None: ...


class ProgramSettingsPort(Protocol):
    """A program's settings and their versions (``treue.store.programs.ProgramStore``)."""

    def current(self, program_id: str) -> Program | None: ...

    def write_version(self, read: Program, new: Program, changes: Record) -> bool: ...

    def version(self, program_id: str, version: int) -> Record | None: ...

    def versions(self, program_id: str, limit: int, cursor: str | None) -> Page: ...


class RuleStorePort(Protocol):
    """Earning rules and their versions as the rules API writes and reads them (``treue.store.rules.RuleStore``)."""

    def create(self, program_id: str, current: Record, idempotency: tuple[str, str], answer: Record
               ) -> Replayed | None: ...

    def write_version(self, program_id: str, read_version: int, new: Record) -> bool: ...

    def retire(self, program_id: str, read: Record, at: str, actor: str) -> bool: ...

    def current(self, program_id: str, rule_id: str) -> Record | None: ...

    def version(self, program_id: str, rule_id: str, version: int) -> Record | None: ...

    def history(self, program_id: str, rule_id: str) -> tuple[Record | None, builtins.list[Record]]: ...

    def page(self, program_id: str, limit: int, cursor: str | None, status: str | None = ...,
             trigger: str | None = ...) -> Page: ...


class OccasionsPort(Protocol):
    """The programs with birthday or anniversary rules, the daily walk's progress, and the members' pages
    (``treue.store.occasions.OccasionStore``)."""

    def programs(self) -> builtins.list[Record]: ...

    def save(self, program_id: str, changed_at: str, now: str, *, done: str | None = ..., walking: str | None = ...,
             after: str | None = ...) -> bool: ...

    def members(self, program_id: str, after: str | None, limit: int) -> Page: ...

    def profiles(self, program_id: str, member_ids: builtins.list[str]) -> dict[str, Record]: ...


class UsagePlanPort(Protocol):
    """The API's usage plan (``treue.store.usage_plans.UsagePlan``): a program's requests are rate
    limited, and accepted at all, once it has a key there."""

    def enroll(self, program_id: str) -> str: ...


# ---------------------------------------------------------------- orders, rewards and the budget


class OrdersPort(Protocol):
    """Orders and rewards, vouchers and donations (``treue.store.orders.OrderStore``)."""

    @property
    def store(self) -> LedgerPort:
        """The ledger on the same table (members and balances)."""
        ...

    @property
    def table(self) -> str:
        """The table's name (for the event items logic adds to a transaction)."""
        ...

    def replay_of(self, program_id: str, kind: str, reference: str) -> Replayed | None: ...

    def create(self, order: Order, hold: Posting, idempotency: tuple[str, str], result: Record,
               more: Sequence[Item] = ...) -> Replayed | None: ...

    def create_reward(self, order: Order, idempotency: tuple[str, str, str], result: Record) -> Replayed | None: ...

    def cash_refund_item(self, program_id: str, order_id: str, refunded: Record, now: str) -> Item: ...

    def create_batch_reward(self, order: Order, more: builtins.list[Item]) -> bool: ...

    def get(self, program_id: str, order_id: str) -> Order | None: ...

    def require(self, program_id: str, order_id: str) -> Order: ...

    def order_update(self, program_id: str, order_id: str, to: str | None, allowed_from: tuple[str, ...], now: str,
                     reason: str | None = ..., fields: Record | None = ...) -> Item: ...

    def transact(self, items: builtins.list[Item]) -> None: ...

    def settle(self, order: Order, posting: Posting, kind: str, update: Item, now: str,
               more: builtins.list[Item] = ...) -> Replayed | None: ...

    def claim_release(self, program_id: str, order_id: str, claim: Record, now: str) -> Order | None: ...

    def claim_cancel(self, program_id: str, order_id: str, claim: Record, stale_before: str) -> bool: ...

    def unclaim_cancel(self, program_id: str, order_id: str, claim_id: str) -> None: ...

    def unwatch_item(self, program_id: str, order_id: str) -> Item: ...

    def record_reveal(self, program_id: str, order_id: str, reveal_id: str, actor: str, now: str,
                      count: int) -> None: ...

    def voucher_put(self, program_id: str, code_hash: str, voucher: Voucher) -> Item: ...

    def voucher_void(self, program_id: str, code_hash: str, now: str, reason: str) -> Item: ...

    def get_voucher(self, program_id: str, code_hash: str) -> Voucher | None: ...

    def voucher_change(self, program_id: str, code_hash: str, to: str, allowed_from: tuple[str, ...], fields: Record,
                       extra_condition: str = ..., extra_values: Record | None = ...) -> Voucher | None: ...

    def donation_items(self, program_id: str, donation: Donation) -> builtins.list[Item]: ...


class BudgetPort(Protocol):
    """The program budgets' money ledger (``treue.store.budget.BudgetStore``)."""

    @property
    def table(self) -> str: ...

    def fund(self, move: Movement, idempotency: tuple[str, str], answer: Record) -> Replayed | None: ...

    def available(self, program_id: str, currency: str) -> tuple[int, int]:
        """(available balance, low-balance threshold) in minor units."""
        ...

    def available_with_flag(self, program_id: str, currency: str) -> tuple[int, int, bool]:
        """(available balance, low-balance threshold, whether the low flag is raised)."""
        ...

    def draw(self, order: Order, funds: Record, moves: builtins.list[Movement], need: int,
             low_event: Item | None, now: str, batch_id: str | None = ...) -> None: ...

    def movement_items(self, moves: builtins.list[Movement]) -> builtins.list[Item]: ...

    def hold_items(self, moves: builtins.list[Movement], batch_id: str) -> builtins.list[Item]: ...

    def held_by(self, program_id: str, batch_id: str, currencies: builtins.list[str]) -> dict[str, int]: ...

    def release_items(self, moves: builtins.list[Movement], batch_id: str, remaining: dict[str, int]
                      ) -> builtins.list[Item]: ...

    def raise_flag_item(self, program_id: str, currency: str, now: str) -> Item: ...

    def lower_flag_item(self, program_id: str, currency: str) -> Item: ...


class VaultPort(Protocol):
    """Reward codes and webhook secrets at rest (``treue.store.secrets.CodeVault``)."""

    def seal(self, code: str, program_id: str, order_id: str) -> str: ...

    def open(self, sealed: str, program_id: str, order_id: str) -> str: ...

    def lookup_hash(self, program_id: str, compact_code: str) -> str: ...


class GiftCardPort(Protocol):
    """A gift card provider (``treue.providers.simulated.SimulatedProvider``); the order id is the
    idempotency key of every call."""

    def issue(self, request: IssueRequest) -> Issuance: ...

    def status(self, program_id: str, order_id: str) -> Issuance | None: ...

    def cancel(self, program_id: str, order_id: str) -> Issuance | None: ...


class CharityPort(Protocol):
    """The charity adapter (``treue.providers.charities.RecordingCharityAdapter``)."""

    def donate(self, order: Order, now: str) -> Donation:
        """The donation record (receipt) of ``order``; the same order always gives the same id."""
        ...


# ---------------------------------------------------------------- workflows


class WorkflowStarter(Protocol):
    """Starts an order's or a reward's payout execution (``treue.store.workflow.PayoutStarter``)."""

    def start(self, order: Order) -> object:
        """Start the payout execution named after the order id; an existing one counts as started."""
        ...


class PayoutExecutions(WorkflowStarter, Protocol):
    """Payout executions, started and looked up by order id (``treue.store.workflow.PayoutStarter``)."""

    def status(self, name: str) -> str | None:
        """RUNNING or how it ended (SUCCEEDED, FAILED, TIMED_OUT, ABORTED); None when there is none."""
        ...


class BatchStarter(Protocol):
    """Batch run executions, by name (``treue.store.workflow.Starter``)."""

    def start_named(self, name: str, payload: Record, what: str) -> str:
        """STARTED, or EXISTS when an execution of that name was started before."""
        ...

    def status(self, name: str) -> str | None: ...


# ---------------------------------------------------------------- batches and the sweeper


class BatchesPort(Protocol):
    """Batches and their lines (``treue.store.batches.BatchStore``)."""

    @property
    def table(self) -> str: ...

    def replay_of(self, program_id: str, idempotency_key: str) -> Replayed | None: ...

    def put_lines(self, batch: Batch, lines: builtins.list[BatchLine]) -> None: ...

    def delete_lines(self, batch: Batch, lines: builtins.list[BatchLine]) -> None: ...

    def create(self, batch: Batch, lines: builtins.list[BatchLine], idempotency: tuple[str, str, str],
               result: Record, hold: Sequence[Item] = ...) -> Replayed | None: ...

    def get(self, program_id: str, batch_id: str) -> Batch | None: ...

    def require(self, program_id: str, batch_id: str) -> Batch: ...

    def counters(self, program_id: str, batch_id: str) -> builtins.list[Record]: ...  # count shards

    def line(self, program_id: str, batch_id: str, line: int) -> BatchLine | None: ...

    def lines(self, program_id: str, batch_id: str, after: int = ..., limit: int | None = ...,
              statuses: tuple[str, ...] = ...) -> Iterable[BatchLine]: ...

    def line_move(self, program_id: str, batch_id: str, line: int, source: str, to: str, attempt: int,
                  now: str, fields: Record | None = ...) -> builtins.list[Item]: ...

    def queue_run(self, program_id: str, batch_id: str, run: int, now: str, hold: Sequence[Item] = ...) -> bool: ...

    def begin_run(self, program_id: str, batch_id: str, run: int, now: str) -> bool: ...

    def finish_run_items(self, program_id: str, batch_id: str, run: int, status: str, now: str,
                         reason: str | None) -> Item: ...

    def unwatch_item(self, program_id: str, batch_id: str) -> Item: ...

    def transact(self, items: builtins.list[Item]) -> None: ...


class BatchFilesPort(Protocol):
    """A batch's files: uploads and each run's list of lines (``treue.store.batches.BatchFiles``)."""

    @property
    def bucket(self) -> str: ...

    def run_key(self, program_id: str, batch_id: str, run: int) -> str: ...

    def put_run(self, program_id: str, batch_id: str, run: int, lines: builtins.list[int]) -> str: ...

    def read_upload(self, program_id: str, upload_id: str, max_bytes: int) -> str | None: ...


class Watched(Protocol):
    """A record on the sweeper's watch list (``treue.store.watchlist.Watched``)."""

    @property
    def kind(self) -> str:
        """``order`` (orders and rewards) or ``batch``."""
        ...

    @property
    def program_id(self) -> str: ...

    @property
    def record_id(self) -> str: ...


class WatchlistPort(Protocol):
    """What the sweeper looks at (``treue.store.watchlist.Watchlist``)."""

    def open_before(self, cutoff: str, per_program: int) -> Mapping[str, Sequence[Watched]]: ...

    def unwatch(self, kind: str, program_id: str, record_id: str) -> None: ...


# ---------------------------------------------------------------- report jobs, webhooks, queue senders


class ReportJobsPort(Protocol):
    """Report job records (``treue.store.report_jobs.ReportJobs``)."""

    def create(self, report: Report, idempotency: tuple[str, str], answer: Record,
               expires_at: int) -> Replayed | None: ...

    def get(self, program_id: str, report_id: str) -> Report | None: ...

    def start(self, program_id: str, report_id: str, now: str) -> bool: ...

    def checkpoint(self, program_id: str, report_id: str, step: int, fields: Record) -> bool: ...


class ReportFilesPort(Protocol):
    """A report job's state and result files (``treue.store.report_jobs.ReportFiles``)."""

    def folder(self, program_id: str, report_id: str) -> str: ...

    def get_json(self, key: str) -> Record: ...

    def put_json(self, key: str, data: Record) -> None: ...

    def put_result(self, key: str, body: bytes, content_type: str) -> None: ...

    def delete(self, key: str) -> None: ...


class ReportQueuePort(Protocol):
    """The queue of report job steps (``treue.store.report_jobs.ReportQueue``)."""

    def send(self, program_id: str, report_id: str, step: int) -> None: ...


class WebhooksPort(Protocol):
    """Webhook endpoints (``treue.store.webhooks.WebhookStore``)."""

    def create(self, endpoint: WebhookEndpoint) -> None: ...

    def list(self, program_id: str) -> builtins.list[WebhookEndpoint]: ...

    def require(self, program_id: str, endpoint_id: str) -> WebhookEndpoint: ...

    def set_secrets(self, program_id: str, endpoint_id: str, sealed: tuple[WebhookSecret, ...], now: str) -> None: ...


class SenderBindings(Protocol):
    """Accrual queue senders bound to programs (``treue.store.queue_senders.QueueSenderStore``)."""

    def get(self, principal_id: str, consistent: bool = ...) -> Record | None: ...

    def list(self, program_id: str) -> builtins.list[Record]: ...

    def put(self, binding: Record, new: bool) -> None: ...

    def delete(self, program_id: str, principal_id: str, now: str) -> bool: ...
