"""The logic layer's ports (``treue.logic.ports``): the real stores and providers fill them.

``conforming`` assigns each real class to its port; mypy checks it, strict (``make test`` runs mypy
over this file, see ``[tool.mypy]`` in pyproject.toml). The tests check the same at run time — every
method a port names exists on the class that fills it and takes the port's parameters — and that
mypy refuses a class that does not conform, so the check can fail.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest

from treue.logic import ports
from treue.providers.charities import RecordingCharityAdapter
from treue.providers.simulated import SimulatedProvider
from treue.store.batches import BatchFiles, BatchStore
from treue.store.budget import BudgetStore
from treue.store.dynamodb import Store
from treue.store.occasions import OccasionStore
from treue.store.orders import OrderStore
from treue.store.programs import ProgramStore
from treue.store.queue_senders import QueueSenderStore
from treue.store.report_jobs import ReportFiles, ReportJobs, ReportQueue
from treue.store.reports import Reports
from treue.store.rules import RuleStore
from treue.store.secrets import CodeVault
from treue.store.table import Replay
from treue.store.usage_plans import UsagePlan
from treue.store.watchlist import Watched, Watchlist
from treue.store.webhooks import WebhookStore
from treue.store.workflow import PayoutStarter, Starter

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:states:eu-central-1:123456789012:stateMachine:payout"


def conforming() -> list[tuple[type, object]]:
    """(port, the real thing) for every port; the annotated assignments are what mypy checks."""
    store = Store("treue-test")
    ledger: ports.LedgerPort = store
    tiers: ports.TierPort = store
    programs: ports.ProgramPort = store
    usage_plan: ports.UsagePlanPort = UsagePlan("plan-id", client=object())  # no AWS call is made
    orders: ports.OrdersPort = OrderStore(store)
    budgets: ports.BudgetPort = BudgetStore(store)
    vault: ports.VaultPort = CodeVault("key", "mac-key")
    provider: ports.GiftCardPort = SimulatedProvider(None, "treue-test")
    charities: ports.CharityPort = RecordingCharityAdapter()
    starter: ports.WorkflowStarter = PayoutStarter(ARN)
    payouts: ports.PayoutExecutions = PayoutStarter(ARN)
    batch_runs: ports.BatchStarter = Starter(ARN)
    batches: ports.BatchesPort = BatchStore(store)
    files: ports.BatchFilesPort = BatchFiles("bucket")
    watched: ports.Watched = Watched("order", "prg_1", "ord_1", "2026-01-01T00:00:00Z")
    watchlist: ports.WatchlistPort = Watchlist(store)
    jobs: ports.ReportJobsPort = ReportJobs(store)
    report_files: ports.ReportFilesPort = ReportFiles("bucket")
    queue: ports.ReportQueuePort = ReportQueue("https://sqs.eu-central-1.amazonaws.com/123456789012/reports")
    webhooks: ports.WebhooksPort = WebhookStore(store)
    bindings: ports.SenderBindings = QueueSenderStore(store)
    settings: ports.ProgramSettingsPort = ProgramStore(store)
    rule_store: ports.RuleStorePort = RuleStore(store, dict)
    occasions: ports.OccasionsPort = OccasionStore(store)
    replayed: ports.Replayed = Replay("fingerprint", {"order_id": "ord_1"})
    page: ports.ReportPage = Reports(store).chunk
    assert callable(page)
    return [
        (ports.LedgerPort, ledger), (ports.TierPort, tiers),
        (ports.ProgramPort, programs), (ports.UsagePlanPort, usage_plan),
        (ports.OrdersPort, orders), (ports.BudgetPort, budgets), (ports.VaultPort, vault),
        (ports.GiftCardPort, provider), (ports.CharityPort, charities), (ports.WorkflowStarter, starter),
        (ports.PayoutExecutions, payouts), (ports.BatchStarter, batch_runs), (ports.BatchesPort, batches),
        (ports.BatchFilesPort, files), (ports.Watched, watched), (ports.WatchlistPort, watchlist),
        (ports.ReportJobsPort, jobs), (ports.ReportFilesPort, report_files), (ports.ReportQueuePort, queue),
        (ports.WebhooksPort, webhooks), (ports.SenderBindings, bindings), (ports.Replayed, replayed),
        (ports.ProgramSettingsPort, settings), (ports.RuleStorePort, rule_store),
        (ports.OccasionsPort, occasions),
    ]


def members(port: type) -> dict[str, object]:
    """The members a port names (its own and its base ports'), by name."""
    found: dict[str, object] = {}
    for base in reversed(port.__mro__):
        if base is object or not getattr(base, "_is_protocol", False) or base.__module__ == "typing":
            continue
        found.update({k: v for k, v in vars(base).items() if not k.startswith("_")})
    return found


def test_every_port_is_filled_by_a_real_class() -> None:
    named = {p for p, _ in conforming()}
    declared = {v for v in vars(ports).values()
                if isinstance(v, type) and getattr(v, "_is_protocol", False) and v.__module__ == ports.__name__}
    assert declared == named, f"ports without a real class here: {sorted(p.__name__ for p in declared - named)}"


@pytest.mark.parametrize("port, real", conforming(), ids=lambda x: x.__name__ if isinstance(x, type) else "")
def test_the_real_class_has_every_member_with_the_ports_parameters(port: type, real: object) -> None:
    for name, member in members(port).items():
        assert hasattr(real, name), f"{type(real).__name__} has no {name} ({port.__name__})"
        if not inspect.isfunction(member):
            continue
        wanted = list(inspect.signature(member).parameters.values())[1:]  # without self
        given = inspect.signature(getattr(real, name)).parameters
        for parameter in wanted:
            assert parameter.name in given, f"{type(real).__name__}.{name} takes no {parameter.name}"
            if parameter.default is not inspect.Parameter.empty:
                assert given[parameter.name].default is not inspect.Parameter.empty, (
                    f"{type(real).__name__}.{name}: {parameter.name} is optional in {port.__name__}")
        extra = [p for n, p in given.items() if n not in {w.name for w in wanted}
                 and p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        assert not extra, f"{type(real).__name__}.{name} needs {[p.name for p in extra]}, which logic never passes"


def _mypy(*args: str) -> tuple[str, int]:
    from mypy import api  # a dev dependency (pyproject.toml), like pytest

    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary", *args])
    return out + err, status


def test_mypy_finds_the_real_classes_conform() -> None:
    out, status = _mypy(str(Path(__file__)))
    assert status == 0, out


def test_mypy_refuses_a_fake_that_does_not_conform(tmp_path: Path) -> None:
    module = tmp_path / "half_vault.py"
    module.write_text(textwrap.dedent("""
        from treue.logic.ports import VaultPort


        class HalfVault:
            def seal(self, code: str, program_id: str, order_id: str) -> str:
                return code

            def open(self, sealed: str, program_id: str) -> str:  # no order_id
                return sealed


        vault: VaultPort = HalfVault()
    """))
    out, status = _mypy(str(module))
    assert status == 1, out
    assert 'Incompatible types in assignment (expression has type "HalfVault", variable has type "VaultPort")' in out
    assert "lookup_hash" in out  # the missing method
