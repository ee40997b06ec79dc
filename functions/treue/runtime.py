"""Per-execution-environment wiring: settings validated once, the store, a program cache, the clock."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from treue.core import times
from treue.core.programs import Program
from treue.errors import ProgramNotFound


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
_store = None
_programs: dict[str, tuple[float, Program]] = {}  # program id → (monotonic read time, program)
_catalog: tuple[float, dict[str, dict[str, Any]], dict[str, Any]] | None = None  # (read time, raw, parsed by id)
_wired: dict[str, Any] = {}


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = _load_settings()
    return _settings


def store():
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


def orders():
    """Order storage (catalog, orders, vouchers, donations) on the same table."""
    if "orders" not in _wired:
        from treue.store.orders import OrderStore

        _wired["orders"] = OrderStore(store())
    return _wired["orders"]


def budgets():
    """Program budgets (money per currency) on the same table."""
    if "budgets" not in _wired:
        from treue.store.budget import BudgetStore

        _wired["budgets"] = BudgetStore(store())
    return _wired["budgets"]


def audit_trail():
    """The audit trail's sealer and reader."""
    if "audit" not in _wired:
        from treue.store.audit import AuditStore

        _wired["audit"] = AuditStore(store())
    return _wired["audit"]


def webhooks():
    """Webhook endpoints of the programs."""
    if "webhooks" not in _wired:
        from treue.store.webhooks import WebhookStore

        _wired["webhooks"] = WebhookStore(store())
    return _wired["webhooks"]


def queue_senders():
    """Accrual queue senders: IAM principal ids bound to programs."""
    if "queue_senders" not in _wired:
        from treue.store.queue_senders import QueueSenderStore

        _wired["queue_senders"] = QueueSenderStore(store())
    return _wired["queue_senders"]


def sender_directory():
    """SenderId → program for the queue consumer, each binding read at most once per ``program_cache_seconds``."""
    if "sender_directory" not in _wired:
        from treue.logic.queue_senders import SenderDirectory

        _wired["sender_directory"] = SenderDirectory(queue_senders(), settings().program_cache_seconds)
    return _wired["sender_directory"]


def events():
    """The programs' event logs."""
    if "events" not in _wired:
        from treue.store.events import EventLog

        _wired["events"] = EventLog(store())
    return _wired["events"]


def batches():
    """Batches (bulk issuance) on the same table."""
    if "batches" not in _wired:
        from treue.store.batches import BatchStore

        _wired["batches"] = BatchStore(store())
    return _wired["batches"]


def watchlist():
    """Orders, rewards and batches not final yet, for the sweeper."""
    if "watchlist" not in _wired:
        from treue.store.watchlist import Watchlist

        _wired["watchlist"] = Watchlist(store())
    return _wired["watchlist"]


def batch_files():
    """The batch bucket: run items files and CSV uploads."""
    if "batch_files" not in _wired:
        from treue.store.batches import BatchFiles

        _wired["batch_files"] = BatchFiles(required("batch_bucket"))
    return _wired["batch_files"]


def report_jobs():
    """Finance report jobs: the report items, their files in the batch bucket, the job queue."""
    if "report_jobs" not in _wired:
        from treue.store.report_jobs import ReportFiles, ReportJobs, ReportQueue

        _wired["report_jobs"] = (ReportJobs(store()), ReportFiles(required("batch_bucket")),
                                 ReportQueue(required("report_queue_url")))
    return _wired["report_jobs"]


def batch_starter():
    if "batch_starter" not in _wired:
        from treue.store.workflow import Starter

        _wired["batch_starter"] = Starter(required("batch_state_machine_arn"))
    return _wired["batch_starter"]


def required(name: str) -> str:
    """A setting a function needs for what it was asked to do; a clear error when the stack left it out."""
    value = getattr(settings(), name)
    if not value:
        raise RuntimeError(f"invalid function configuration: {name.upper()} is required")
    return value


def vault():
    if "vault" not in _wired:
        from treue.store.secrets import CodeVault

        s = settings()
        if not s.codes_key_id or not s.codes_mac_key_id:
            raise RuntimeError("invalid function configuration: CODES_KEY_ID and CODES_MAC_KEY_ID are required")
        _wired["vault"] = CodeVault(s.codes_key_id, s.codes_mac_key_id)
    return _wired["vault"]


def provider():
    """The gift-card provider this deployment is configured with."""
    if "provider" not in _wired:
        from treue.providers.simulated import SimulatedProvider

        _wired["provider"] = SimulatedProvider(store().ddb, settings().table_name)
    return _wired["provider"]


def charities():
    """The charity adapter this deployment records donations with."""
    if "charities" not in _wired:
        from treue.providers.charities import RecordingCharityAdapter

        _wired["charities"] = RecordingCharityAdapter()
    return _wired["charities"]


def starter():
    if "starter" not in _wired:
        from treue.store.workflow import PayoutStarter

        arn = settings().payout_state_machine_arn
        if not arn:
            raise RuntimeError("invalid function configuration: PAYOUT_STATE_MACHINE_ARN is required")
        _wired["starter"] = PayoutStarter(arn)
    return _wired["starter"]


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
