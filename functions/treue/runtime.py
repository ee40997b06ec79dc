"""Per-execution-environment wiring: settings validated once, the store, a program cache, the clock."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from treue.core import times
from treue.core.programs import Program
from treue.errors import ProgramNotFound

if TYPE_CHECKING:  # the types only: each accessor imports its module on first use (cold start)
    from treue.logic.queue_senders import SenderDirectory
    from treue.logic.rules import Rule
    from treue.providers.charities import RecordingCharityAdapter
    from treue.providers.simulated import SimulatedProvider
    from treue.store.audit import AuditStore
    from treue.store.batches import BatchFiles, BatchStore
    from treue.store.budget import BudgetStore
    from treue.store.dynamodb import Store
    from treue.store.events import EventLog
    from treue.store.orders import OrderStore
    from treue.store.programs import ProgramStore
    from treue.store.queue_senders import QueueSenderStore
    from treue.store.report_jobs import ReportFiles, ReportJobs, ReportQueue
    from treue.store.rules import RuleStore
    from treue.store.secrets import CodeVault
    from treue.store.segments import SegmentStore
    from treue.store.watchlist import Watchlist
    from treue.store.webhooks import WebhookStore
    from treue.store.workflow import PayoutStarter, Starter


@dataclass(frozen=True)
class Settings:
    """The function's environment, checked once (plain checks: the authorizer needs no pydantic)."""

    table_name: str
    accrual_dlq_url: str | None = None
    program_cache_seconds: int = 60
    catalog_cache_seconds: int = 300
    payout_state_machine_arn: str | None = None
    codes_key_id: str | None = None
    codes_mac_key_id: str | None = None
    gift_card_provider: str = "simulated"
    webhook_queue_url: str | None = None
    webhook_retry_base_seconds: int = 30
    webhook_dlq_url: str | None = None
    allow_local_webhooks: bool = False
    reserved_local_webhook_ports: frozenset[int] = frozenset()  # local ports that never receive webhooks
    batch_bucket: str | None = None
    batch_state_machine_arn: str | None = None
    report_queue_url: str | None = None
    report_page_size: int = 1000

    # field → (lowest, highest) allowed
    BOUNDS = {"program_cache_seconds": (0, 3600), "catalog_cache_seconds": (0, 86400),
              "webhook_retry_base_seconds": (1, 3600), "report_page_size": (1, 1000)}
    PROVIDERS = ("simulated",)

    def __post_init__(self) -> None:
        if len(self.table_name) < 3:
            raise ValueError("table_name: TABLE_NAME must have at least 3 characters")
        for name, (low, high) in self.BOUNDS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name}: {value} is not between {low} and {high}")
        if self.gift_card_provider not in self.PROVIDERS:
            raise ValueError(f"gift_card_provider: {self.gift_card_provider!r} is not one of {self.PROVIDERS}")


def _load_settings() -> Settings:
    env = os.environ.get
    try:
        return Settings(
            table_name=env("TABLE_NAME", ""),
            accrual_dlq_url=env("ACCRUAL_DLQ_URL") or None,
            program_cache_seconds=int(env("PROGRAM_CACHE_SECONDS", "60")),
            catalog_cache_seconds=int(env("CATALOG_CACHE_SECONDS", "300")),
            payout_state_machine_arn=env("PAYOUT_STATE_MACHINE_ARN") or None,
            codes_key_id=env("CODES_KEY_ID") or None,
            codes_mac_key_id=env("CODES_MAC_KEY_ID") or None,
            gift_card_provider=env("GIFT_CARD_PROVIDER", "simulated"),
            webhook_queue_url=env("WEBHOOK_QUEUE_URL") or None,
            webhook_retry_base_seconds=int(env("WEBHOOK_RETRY_BASE_SECONDS", "30")),
            webhook_dlq_url=env("WEBHOOK_DLQ_URL") or None,
            allow_local_webhooks=env("ALLOW_LOCAL_WEBHOOKS", "false").lower() == "true",
            reserved_local_webhook_ports=frozenset(
                int(p) for p in env("WEBHOOK_RESERVED_LOCAL_PORTS", "").split(",") if p.strip()),
            batch_bucket=env("BATCH_BUCKET") or None,
            batch_state_machine_arn=env("BATCH_STATE_MACHINE_ARN") or None,
            report_queue_url=env("REPORT_QUEUE_URL") or None,
            report_page_size=int(env("REPORT_PAGE_SIZE", "1000")),
        )
    except ValueError as err:
        raise RuntimeError(f"invalid function configuration: {err}") from err


_settings: Settings | None = None
_store: Store | None = None
_programs: dict[str, tuple[float, Program]] = {}  # program id → (monotonic read time, program)
_catalog: tuple[float, dict[str, dict[str, Any]], dict[str, Any]] | None = None  # (read time, raw, parsed by id)
_wired: dict[str, Any] = {}  # name → the one instance _wire built for it
_T = TypeVar("_T")


def _wire(name: str, build: Callable[[], _T]) -> _T:
    """The environment's one instance of a dependency, built on first use."""
    if name not in _wired:
        _wired[name] = build()
    return cast(_T, _wired[name])  # only build's result is stored under name


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = _load_settings()
    return _settings


def store() -> Store:
    global _store
    if _store is None:
        from treue.store.dynamodb import Store

        _store = Store(settings().table_name)
    return _store


def program(program_id: str) -> Program:
    """The program's settings, read at most once per ``program_cache_seconds`` per environment."""
    cached = _programs.get(program_id)
    now = time.monotonic()
    if cached and now - cached[0] < settings().program_cache_seconds:
        return cached[1]
    found = store().get_program(program_id)
    if found is None:
        raise ProgramNotFound(f"program {program_id} does not exist")
    _programs[program_id] = (now, found)
    return found


def orders() -> OrderStore:
    """Order storage (catalog, orders, vouchers, donations) on the same table."""
    def build() -> OrderStore:
        from treue.store.orders import OrderStore

        return OrderStore(store())
    return _wire("orders", build)


def budgets() -> BudgetStore:
    """Program budgets (money per currency) on the same table."""
    def build() -> BudgetStore:
        from treue.store.budget import BudgetStore

        return BudgetStore(store())
    return _wire("budgets", build)


def audit_trail() -> AuditStore:
    """The audit trail's sealer and reader."""
    def build() -> AuditStore:
        from treue.store.audit import AuditStore

        return AuditStore(store())
    return _wire("audit", build)


def webhooks() -> WebhookStore:
    """Webhook endpoints of the programs."""
    def build() -> WebhookStore:
        from treue.store.webhooks import WebhookStore

        return WebhookStore(store())
    return _wire("webhooks", build)


def programs() -> ProgramStore:
    """A program's settings and their versions (GET/PATCH /v1/program)."""
    def build() -> ProgramStore:
        from treue.store.programs import ProgramStore

        return ProgramStore(store())
    return _wire("programs", build)


def rules() -> RuleStore[Rule]:
    """The earning rules and their versions (/v1/rules; the rules in force for accruals)."""
    def build() -> RuleStore[Rule]:
        from treue.logic.rules import Rule
        from treue.store.rules import RuleStore

        return RuleStore(store(), Rule.model_validate)
    return _wire("rules", build)


def segments() -> SegmentStore:
    """Custom segments, members' facts and the programs' segment counts."""
    def build() -> SegmentStore:
        from treue.store.segments import SegmentStore

        return SegmentStore(store())
    return _wire("segments", build)


def segments_of(program: Program, member_id: str, now: datetime) -> frozenset[str]:
    """The segments a member is in now (``treue.logic.segment_admin.member_segments``: three reads), for the
    earning rules' segment conditions; accrual and awards call it only when a rule in force asks."""
    from treue.logic import segment_admin
    from treue.logic.segments import segment_ids

    return segment_ids(segment_admin.member_segments(segments(), program, member_id, now)[1])


def queue_senders() -> QueueSenderStore:
    """Accrual queue senders: IAM principal ids bound to programs."""
    def build() -> QueueSenderStore:
        from treue.store.queue_senders import QueueSenderStore

        return QueueSenderStore(store())
    return _wire("queue_senders", build)


def sender_directory() -> SenderDirectory:
    """SenderId → program for the queue consumer, each binding read at most once per ``program_cache_seconds``."""
    def build() -> SenderDirectory:
        from treue.logic.queue_senders import SenderDirectory

        return SenderDirectory(queue_senders(), settings().program_cache_seconds)
    return _wire("sender_directory", build)


def events() -> EventLog:
    """The programs' event logs."""
    def build() -> EventLog:
        from treue.store.events import EventLog

        return EventLog(store())
    return _wire("events", build)


def batches() -> BatchStore:
    """Batches (bulk issuance) on the same table."""
    def build() -> BatchStore:
        from treue.store.batches import BatchStore

        return BatchStore(store())
    return _wire("batches", build)


def watchlist() -> Watchlist:
    """Orders, rewards and batches not final yet, for the sweeper."""
    def build() -> Watchlist:
        from treue.store.watchlist import Watchlist

        return Watchlist(store())
    return _wire("watchlist", build)


def batch_files() -> BatchFiles:
    """The batch bucket: run items files and CSV uploads."""
    def build() -> BatchFiles:
        from treue.store.batches import BatchFiles

        return BatchFiles(required("batch_bucket"))
    return _wire("batch_files", build)


def report_jobs() -> tuple[ReportJobs, ReportFiles, ReportQueue]:
    """Finance report jobs: the report items, their files in the batch bucket, the job queue."""
    def build() -> tuple[ReportJobs, ReportFiles, ReportQueue]:
        from treue.store.report_jobs import ReportFiles, ReportJobs, ReportQueue

        return (ReportJobs(store()), ReportFiles(required("batch_bucket")),
                ReportQueue(required("report_queue_url")))
    return _wire("report_jobs", build)


def batch_starter() -> Starter:
    def build() -> Starter:
        from treue.store.workflow import Starter

        return Starter(required("batch_state_machine_arn"))
    return _wire("batch_starter", build)


def required(name: str) -> str:
    """A setting a function needs for what it was asked to do; a clear error when the stack left it out."""
    value: str | None = getattr(settings(), name)
    if not value:
        raise RuntimeError(f"invalid function configuration: {name.upper()} is required")
    return value


def vault() -> CodeVault:
    def build() -> CodeVault:
        from treue.store.secrets import CodeVault

        s = settings()
        if not s.codes_key_id or not s.codes_mac_key_id:
            raise RuntimeError("invalid function configuration: CODES_KEY_ID and CODES_MAC_KEY_ID are required")
        return CodeVault(s.codes_key_id, s.codes_mac_key_id)
    return _wire("vault", build)


def provider() -> SimulatedProvider:
    """The gift-card provider this deployment is configured with."""
    def build() -> SimulatedProvider:
        from treue.providers.simulated import SimulatedProvider

        return SimulatedProvider(store().ddb, settings().table_name)
    return _wire("provider", build)


def charities() -> RecordingCharityAdapter:
    """The charity adapter this deployment records donations with."""
    def build() -> RecordingCharityAdapter:
        from treue.providers.charities import RecordingCharityAdapter

        return RecordingCharityAdapter()
    return _wire("charities", build)


def starter() -> PayoutStarter:
    def build() -> PayoutStarter:
        from treue.store.workflow import PayoutStarter

        arn = settings().payout_state_machine_arn
        if not arn:
            raise RuntimeError("invalid function configuration: PAYOUT_STATE_MACHINE_ARN is required")
        return PayoutStarter(arn)
    return _wire("starter", build)


def _catalog_cache() -> tuple[float, dict[str, dict[str, Any]], dict[str, Any]]:
    global _catalog
    now_ = time.monotonic()
    if _catalog is None or now_ - _catalog[0] >= settings().catalog_cache_seconds:
        from treue.logic.catalog import parse_item

        raw = {i["id"]: i for i in orders().catalog_items()}
        _catalog = (now_, raw, {k: parse_item(v) for k, v in raw.items()})
    return _catalog


def catalog() -> dict[str, dict[str, Any]]:
    """Every active catalog item by id (as stored), read at most once per ``catalog_cache_seconds``."""
    return _catalog_cache()[1]


def parsed_catalog() -> dict[str, Any]:
    """The same items validated once into catalog models, so a warm function does not re-validate them."""
    return _catalog_cache()[2]


def now() -> str:
    """UTC timestamp with milliseconds, ISO 8601."""
    return times.now()


def reset() -> None:
    """Forget settings, store and caches (tests switch tables between cases)."""
    global _settings, _store, _catalog
    _settings = None
    _store = None
    _catalog = None
    _programs.clear()
    _wired.clear()
