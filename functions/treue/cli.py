"""``treue``: operator commands that write to DynamoDB directly (the first API key cannot come from the API).

Targets the running local twin (``.treue/local.json``) by default, or a deployed stack with
``--stack NAME`` using the caller's AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from treue.client import TreueClient
    from treue.core.programs import Program
    from treue.store.dynamodb import Store
    from treue.store.usage_plans import UsagePlan

# The commands that act on one program: --program, by default the running twin's program
PROGRAM_COMMANDS = {("program", "enable-api"), ("simulate", "fault"), ("key", "create"), ("audit", "verify"),
                    ("finance", "export"), ("finance", "reconcile"), ("jobs", "run")}
# The scheduled jobs ``treue jobs run`` runs on demand (each is also an EventBridge schedule of the stack)
JOBS = ("expire-points", "activate-pending", "tier-review", "memberships")


EPILOG = """\
--program defaults to the running twin's program (program_id in its state file);
with --stack it is required.

exit codes:
  0  done
  1  a check found a problem (audit chain broken, reconciliation differences),
     or the target refused the command or could not be reached
  2  the command cannot run as given: unknown or malformed program id, --program
     missing, bad arguments; batch submit/retry: some lines failed or it halted
"""


class Misuse(Exception):
    """The command cannot run as given (an unknown or malformed program, --program missing): exit 2."""


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("treue")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed (`make` installs it)
        return "unknown (not installed: run `make` targets, which install it)"


def _state_file(args: argparse.Namespace) -> Path:
    return Path(args.state or os.environ.get("TREUE_STATE", ".treue/local.json"))


def _twin_state(args: argparse.Namespace) -> dict[str, Any]:
    """The running twin's state file; SystemExit when there is none or its AWS endpoint does not answer
    (a state file left behind by a twin that was killed)."""
    import urllib.error
    import urllib.request

    state_file = _state_file(args)
    if not state_file.exists():
        raise SystemExit(f"treue: {state_file} not found: no twin runs here; start one with `make run`, "
                         "or pass --stack NAME")
    state: dict[str, Any] = json.loads(state_file.read_text())
    try:
        with urllib.request.urlopen(state["aws_endpoint"], timeout=3):
            pass
    except urllib.error.HTTPError:
        pass  # it answers
    except (OSError, ValueError) as err:
        raise SystemExit(f"treue: the twin of {state_file} does not answer at {state['aws_endpoint']} ({err}): "
                         "start it with `make run`") from err
    return state


def _target(args: argparse.Namespace) -> tuple[Any, str]:
    from treue.store import targets

    if args.stack:
        return targets.stack(args.stack)
    return targets.twin(_state_file(args))


def _usage_plan(args: argparse.Namespace) -> UsagePlan | None:
    from treue.store import targets

    return targets.usage_plan(None if args.stack else _state_file(args), args.stack)


def _store(args: argparse.Namespace) -> Store:
    from treue.store.dynamodb import Store

    client, table = _target(args)
    return Store(table, ddb=client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="treue", description="Treue operator commands", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"treue {_version()}")
    parser.add_argument("--stack", help="a deployed CloudFormation stack (default: the local twin)")
    parser.add_argument("--state", help="the twin's state file (default $TREUE_STATE, else .treue/local.json)")
    sub = parser.add_subparsers(dest="command", required=True)
    twin_default = "default: the running twin's program; required with --stack"

    program = sub.add_parser("program", help="programs (tenants)").add_subparsers(dest="action", required=True)
    program.add_parser("list", help="every program of the twin or stack (a Scan of the table: on a large deployed "
                                    "table it reads every item)")
    create = program.add_parser("create", help="create a program and one API key per scope, and enable its API "
                                               "access (its own key in the API's usage plan: its rate limit)")
    enable = program.add_parser("enable-api", help="give an existing program its key in the API's usage plan "
                                                   "(programs created before rate limits; idempotent)")
    enable.add_argument("--program", help=twin_default)
    create.add_argument("--name", required=True)
    create.add_argument("--currency", required=True, help="ISO 4217, e.g. EUR")
    create.add_argument("--earn-points", type=int, default=1, help="points earned per --earn-per minor units")
    create.add_argument("--earn-per", type=int, default=100, help="minor units per --earn-points points")
    create.add_argument("--value-points", type=int, default=100, help="points worth --value-minor minor units")
    create.add_argument("--value-minor", type=int, default=100)
    create.add_argument("--country", default="", help="ISO 3166-1 alpha-2 where members are, e.g. DE")
    create.add_argument("--markup-bps", type=int, default=0, help="catalog markup in basis points")
    create.add_argument("--fx", action="append", default=[], metavar="CUR=PPM",
                        help="offer items in CUR: program minor units per million CUR minor units, e.g. USD=920000")

    jobs = sub.add_parser("jobs", help="the scheduled jobs, run now").add_subparsers(dest="action", required=True)
    run = jobs.add_parser("run", help="run a scheduled job for one program now and print what it did as JSON "
                                      "(the schedules run them for every program: expire-points and "
                                      "activate-pending hourly, tier-review and memberships daily)")
    run.add_argument("job", choices=JOBS)
    run.add_argument("--program", help=twin_default)
    run.add_argument("--as-of", help="run as at the end of this day (YYYY-MM-DD, today or earlier; default: now), "
                                     "e.g. to catch up a day a schedule missed")

    cat = sub.add_parser("catalog", help="the reward catalog").add_subparsers(dest="action", required=True)
    load = cat.add_parser("load", help="validate catalog/*.json and load it (items gone from the files are retired)")
    load.add_argument("--dir", default="catalog", help="the catalog folder (default ./catalog)")

    sim = sub.add_parser("simulate", help="the simulated gift-card provider").add_subparsers(dest="action",
                                                                                         required=True)
    fault = sim.add_parser("fault", help="make the simulated provider fail for a brand or one order")
    fault.add_argument("--program", help=twin_default)
    target = fault.add_mutually_exclusive_group(required=True)
    target.add_argument("--brand", help="e.g. 'Nordlicht Books'")
    target.add_argument("--order-key", help="the order's Idempotency-Key")
    fault.add_argument("--mode", required=True, choices=["timeout", "5xx", "out_of_stock", "rejected", "off"])
    fault.add_argument("--times", type=int, help="fail this many calls (default: every call)")

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    kc = key.add_parser("create", help="create an API key (shown once)")
    kc.add_argument("--program", help=twin_default)
    kc.add_argument("--scope", required=True, choices=["partner", "finance", "admin"])
    kr = key.add_parser("revoke", help="revoke an API key at once")
    kr.add_argument("key_id")

    aud = sub.add_parser("audit", help="the hash-chained audit trail").add_subparsers(dest="action", required=True)
    verify = aud.add_parser("verify", help="recompute a program's chain; name the first broken record (exit 1)")
    verify.add_argument("--program", help=twin_default)
    verify.add_argument("--no-seal", action="store_true", help="do not seal pending records before verifying")
    seal = aud.add_parser("seal", help="chain pending audit records now (the stack does it every minute)")
    seal.add_argument("--program", help="one program (default: every program with pending records)")

    fin = sub.add_parser("finance", help="finance exports and checks").add_subparsers(dest="action", required=True)
    export = fin.add_parser("export", help="write the journal (or payouts) of a period as CSV, with progress")
    export.add_argument("--program", help=twin_default)
    export.add_argument("--from", dest="start", required=True, help="date or UTC time, inclusive")
    export.add_argument("--to", dest="end", required=True, help="date (whole day included) or UTC time")
    export.add_argument("--out", required=True, help="the CSV file to write")
    export.add_argument("--report", choices=["journal", "payouts"], default="journal")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    recon = fin.add_parser("reconcile", help="reconcile one day: ledger vs orders vs provider vs budget (exit 1 "
                                             "when there are differences)")
    recon.add_argument("--program", help=twin_default)
    recon.add_argument("--date", required=True, help="UTC day, e.g. 2026-11-24")
    recon.add_argument("--sync-seconds", type=float, default=10.0,
                       help="reconcile here when it takes at most this long, else as a report job in the stack's "
                            "report worker (default 10; 0: always a report job)")
    recon.add_argument("--quiet", action="store_true", help="no progress bar while a report job runs")

    bat = sub.add_parser("batch", help="bulk issuance over the API (a brand's partner or admin key)"
                         ).add_subparsers(dest="action", required=True)
    submit = bat.add_parser("submit", help="issue a CSV of rewards as one batch; a progress bar until it finishes "
                                           "(exit 0 all issued, 2 some failed: see `treue batch retry`)")
    submit.add_argument("file", help="CSV: reference,item_id[,face_value,email,member_id,external_id,name,message,"
                                     "delivery_method,delivery_email]")
    submit.add_argument("--name", help="your name for the batch (default: the file name)")
    submit.add_argument("--partial", action="store_true", help="issue the valid lines, reject the others")
    submit.add_argument("--idempotency-key", help="default: a hash of the file, so resubmitting it is a no-op")
    submit.add_argument("--no-wait", action="store_true", help="answer once accepted")
    retry = bat.add_parser("retry", help="re-drive a batch's failed lines and wait for them")
    retry.add_argument("batch_id")
    retry.add_argument("--no-wait", action="store_true")
    for command in (submit, retry):
        command.add_argument("--url", help="the API (default: the running twin's)")
        command.add_argument("--api-key", help="default: $TREUE_API_KEY, else the twin demo program's partner key")
        command.add_argument("--quiet", action="store_true", help="no progress bar")

    args = parser.parse_args(argv)
    if args.command == "batch":
        return _batch(args)
    import getpass

    from treue.core import audit

    with audit.acting(audit.Actor(f"operator:{getpass.getuser()}", "operator")):  # who the audit trail names
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from treue.errors import TreueError
    from treue.logic import provisioning
    from treue.runtime import now

    try:
        twin = None if args.stack else _twin_state(args)
        _choose_program(args, twin)
        store = _store(args)
        _check_program(args, store, twin)
    except Misuse as err:
        print(f"treue: {err}", file=sys.stderr)
        return 2
    try:
        if args.command in ("audit", "finance"):
            return _finance(args, store)
        if args.command == "jobs":
            try:
                done = _job(args, store)
            except Misuse as err:
                print(f"treue: {err}", file=sys.stderr)
                return 2
            print(json.dumps(done, indent=2))
            return 0
        if args.command == "program":
            out: dict[str, Any]
            if args.action == "list":
                out = {"programs": _programs(store)}
            elif args.action == "enable-api":
                plan = _usage_plan(args)
                if plan is None:
                    print("treue: the target has no usage plan (UsagePlanId output or twin state)", file=sys.stderr)
                    return 1
                out = {"program_id": args.program, "usage_plan_key_id": provisioning.enable_api(store, plan,
                                                                                                 args.program)}
            else:
                fx = {}
                for pair in args.fx:
                    cur, _, rate = pair.partition("=")
                    fx[cur.upper()] = int(rate)
                out = provisioning.create_program(
                    store, args.name, args.currency, now(), usage_plan=_usage_plan(args),
                    earn_points=args.earn_points, earn_per_minor=args.earn_per,
                    value_points=args.value_points, value_minor=args.value_minor,
                    country=args.country.upper(), markup_bps=args.markup_bps, fx_ppm=fx,
                )
        elif args.command == "catalog":
            from treue.logic.catalog import load_dir
            from treue.store.orders import OrderStore

            version, items = load_dir(Path(args.dir))
            out = OrderStore(store).put_catalog(version, [i.model_dump() for i in items], now())
        elif args.command == "simulate":
            from treue.providers.simulated import set_fault

            out = set_fault(store.ddb, store.table, args.program, None if args.mode == "off" else args.mode,
                            brand=args.brand, order_reference=args.order_key, times=args.times)
        elif args.action == "create":
            out = provisioning.create_key(store, args.program, args.scope, now())
        else:
            if not store.revoke_api_key(args.key_id, now()):
                print(f"treue: no API key {args.key_id}", file=sys.stderr)
                return 1
            out = {"key_id": args.key_id, "revoked": True}
    except (ValueError, LookupError) as err:
        print(f"treue: {err}", file=sys.stderr)
        return 1
    except TreueError as err:
        print(f"treue: {err.detail}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0


def _choose_program(args: argparse.Namespace, twin: dict[str, Any] | None) -> None:
    """--program as given, else the running twin's program; Misuse when missing (with --stack) or malformed."""
    from treue.core.ids import well_formed

    if getattr(args, "program", None) is None:
        if (args.command, args.action) not in PROGRAM_COMMANDS:
            return  # e.g. audit seal: every program
        if twin is None:
            raise Misuse(f"--program is required with --stack (`treue --stack {args.stack} program list` shows "
                         "the stack's programs)")
        if not twin.get("program_id"):
            raise Misuse("give --program prg_…: the running twin has no program of its own "
                         "(`treue program list` shows the programs)")
        args.program = twin["program_id"]
    if not well_formed(args.program, "prg"):
        raise Misuse(f"{args.program!r} is not a program id (prg_ and 26 lower-case letters and digits)"
                     f"{_program_hint(args, twin)}")


def _check_program(args: argparse.Namespace, store: Store, twin: dict[str, Any] | None) -> None:
    """Misuse, before anything is read or written, when --program names no program of the target."""
    if getattr(args, "program", None) is None or store.get_program(args.program) is not None:
        return
    where = f"stack {args.stack}" if args.stack else "the running twin"
    raise Misuse(f"no program {args.program} in {where}{_program_hint(args, twin)}")


def _program_hint(args: argparse.Namespace, twin: dict[str, Any] | None) -> str:
    if args.stack:
        return f" (`treue --stack {args.stack} program list` shows them)"
    own = f"the twin's program is {twin['program_id']}; " if twin and twin.get("program_id") else ""
    return f" ({own}`treue program list` shows them all)"


def _programs(store: Store) -> list[dict[str, Any]]:
    """Every program of the table, oldest first: a Scan (programs have no index of their own)."""
    from treue.store.items import from_item

    found = []
    pages = store.ddb.get_paginator("scan").paginate(
        TableName=store.table, FilterExpression="sk = :sk AND begins_with(pk, :pk)",
        ProjectionExpression="#id, #name, currency, country, created_at, #version, updated_at",
        ExpressionAttributeNames={"#id": "id", "#name": "name", "#version": "version"},
        ExpressionAttributeValues={":sk": {"S": "PROGRAM"}, ":pk": {"S": "PROGRAM#"}})
    for page in pages:
        for item in page["Items"]:
            data = from_item(item)
            found.append({"program_id": data["id"], "name": data.get("name"), "currency": data.get("currency"),
                          "country": data.get("country") or None, "created_at": data.get("created_at"),
                          # the settings' version (1 as created; PATCH /v1/program makes the next ones)
                          "version": data.get("version", 1),
                          "updated_at": data.get("updated_at") or data.get("created_at")})
    return sorted(found, key=lambda p: (p["created_at"] or "", p["program_id"]))


def _finance(args: argparse.Namespace, store: Store) -> int:
    from treue.store.audit import AuditStore

    if args.command == "audit":
        trail = AuditStore(store)
        if args.action == "seal":
            sealed = {args.program: trail.seal_program(args.program)} if args.program else trail.seal_pending()
            print(json.dumps({"sealed": sealed}, indent=2))
            return 0
        if not args.no_seal:
            trail.seal_program(args.program)
        result = trail.verify(args.program).as_dict()
        result["pending"] = trail.pending_count(args.program)
        print(json.dumps(result, indent=2))
        if not result["intact"]:
            broken = result["first_broken"]
            print(f"treue: audit chain of {args.program} broken at record {broken['seq']} "
                  f"({broken.get('record_id')}): {broken['problem']}", file=sys.stderr)
            return 1
        return 0
    if args.action == "reconcile":
        report = _reconcile(args, store)
        print(json.dumps(report, indent=2))
        return 1 if report["differences"] else 0
    return _export(args, store)


def _reconcile(args: argparse.Namespace, store: Store) -> dict[str, Any]:
    """The day's reconciliation: computed here while it fits in ``--sync-seconds``, else a report job
    (the same code in the report worker, next to the table), followed until it completes."""
    import time

    from treue.errors import ReportTooLarge
    from treue.logic import finance, report_jobs
    from treue.providers.simulated import SimulatedProvider
    from treue.store.budget import BudgetStore
    from treue.store.orders import OrderStore
    from treue.store.reports import Reports

    params = report_jobs.params_of("reconciliation", args.date, None, None)
    budgets, orders, provider = BudgetStore(store), OrderStore(store), SimulatedProvider(store.ddb, store.table)
    program_id = args.program
    sources = report_jobs.Sources(
        page=Reports(store).chunk,
        point_accounts=lambda: store.program_accounts(program_id),
        money_accounts=lambda: budgets.accounts(program_id),
        holds=lambda: budgets.holds(program_id),
        provider_status=lambda o: provider.status(program_id, o.id),
        donation_of=lambda o: orders.get_donation(program_id, o.donation_id) if o.donation_id else None,
        liability=lambda accounts: finance.liability(_program_of(store, program_id), accounts, ""),
    )
    started = time.monotonic()
    try:
        return report_jobs.run_now("reconciliation", program_id, params, sources, 1000,
                                   lambda: time.monotonic() - started < args.sync_seconds)
    except ReportTooLarge as refused:
        if not args.quiet:
            print(f"treue: {refused.extra['read_so_far']['items']:,} items read in {args.sync_seconds:g} s and not "
                  "done: continuing as a report job", file=sys.stderr)
    return _report_job(args, store, "reconciliation", params)


def _program_of(store: Store, program_id: str) -> Program:
    """The program (``_check_program`` found it before anything was read)."""
    from treue.errors import ProgramNotFound

    found = store.get_program(program_id)
    if found is None:
        raise ProgramNotFound(f"program {program_id} does not exist")
    return found


def _job(args: argparse.Namespace, store: Store) -> dict[str, Any]:
    """``treue jobs run JOB``: the scheduled job's own function, for ``--program`` only, as at now or the end of
    ``--as-of``'s day (never later than now)."""
    from datetime import UTC, datetime, time

    from treue.core import times

    now = datetime.now(UTC)
    moment = now
    if args.as_of:
        try:
            day = datetime.strptime(args.as_of, "%Y-%m-%d").date()
        except ValueError as err:
            raise Misuse(f"--as-of {args.as_of!r} is not a date such as 2026-12-31") from err
        if day > now.date():
            raise Misuse(f"--as-of {args.as_of} lies in the future: a job runs as at today or a day before")
        if day < now.date():
            moment = datetime.combine(day, time(23, 59, 59, 999000), UTC)

    def programs(program_id: str) -> Program:
        return _program_of(store, program_id)

    if args.job in ("expire-points", "activate-pending"):
        from treue.logic import lifecycle

        run = lifecycle.run_expiry if args.job == "expire-points" else lifecycle.run_activation
        return run(store, programs, moment, program_id=args.program)
    if args.job == "memberships":
        from treue.logic import memberships

        return {"job": args.job, "as_of": times.iso(moment), "program_id": args.program,
                **memberships.run_memberships(store, programs, moment, program_id=args.program)}
    from treue.logic import tiers

    return {"job": args.job, "as_of": times.iso(moment), "program_id": args.program,
            **tiers.review_due(store, programs, moment, program_id=args.program)}


def _report_job(args: argparse.Namespace, store: Store, report_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """Queue a report job (as POST /v1/finance/reports does), follow its progress, read its result."""
    import getpass
    import time

    from treue.core.statuses import ReportStatus
    from treue.logic import report_jobs
    from treue.runtime import now
    from treue.store import targets
    from treue.store.report_jobs import ReportFiles, ReportJobs, ReportQueue

    state_file = _state_file(args)
    s3, sqs, bucket, queue_url = targets.report_resources(state_file, args.stack)
    jobs, files = ReportJobs(store), ReportFiles(bucket, s3=s3)
    key = f"cli-{report_type}-{params.get('date')}-{time.time_ns()}"
    report, _ = report_jobs.request(jobs, ReportQueue(queue_url, sqs=sqs), args.program, report_type, params, "json",
                                    key, f"operator:{getpass.getuser()}", now(), int(time.time()))
    bar = Progress(0, 1, enabled=not args.quiet)
    while True:
        found = jobs.get(args.program, report.id)
        if found is None:  # read consistently right after it was written: gone only if deleted meanwhile
            raise SystemExit(f"treue: report {report.id} no longer exists")
        progress = found.progress
        if found.status == ReportStatus.COMPLETED and found.result:
            bar.done(progress.get("items", 0), "items read")
            result: dict[str, Any] = json.loads(files.get_result(found.result["key"]))
            return result
        if found.status == ReportStatus.FAILED:
            bar.done(progress.get("items", 0), "items read")
            raise SystemExit(f"treue: report {found.id} failed: {found.failure_reason}")
        phases = len(report_jobs.phases(report_type, args.program, params)) + 1
        bar.update(progress.get("phase", 0) / phases, progress.get("items", 0), "items read")
        time.sleep(0.5)


def _export(args: argparse.Namespace, store: Store) -> int:
    """Stream a period's journal or payouts into a CSV file; the bar follows the rows' time."""
    from datetime import datetime

    from treue.core.records import Order
    from treue.logic import finance
    from treue.store.reports import Reports

    def payout_row(item: dict[str, Any]) -> dict[str, Any]:
        return finance.payout_row(Order.from_item(item))

    start, end = finance.period(args.start, args.end)
    assert start is not None and end is not None  # --from and --to are required arguments
    reports = Reports(store)
    columns: tuple[str, ...]
    to_row: Callable[[dict[str, Any]], dict[str, Any]]
    if args.report == "journal":
        columns, rows, to_row = finance.JOURNAL_COLUMNS, reports.journal(args.program, start, end), finance.journal_row
    else:
        columns, rows = finance.PAYOUT_COLUMNS, reports.orders(args.program, start, end)
        to_row = payout_row
    bar = Progress(_instant(start), _instant(end), enabled=not args.quiet)
    count = 0
    with open(args.out, "w", newline="", encoding="utf-8") as out:
        out.write(finance.to_csv(columns, []))
        for item in rows:
            out.write(finance.to_csv(columns, [to_row(item)], header=False))
            count += 1
            bar.update(datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).timestamp(), count)
    bar.done(count)
    print(json.dumps({"report": args.report, "rows": count, "out": args.out, "from": start, "to": end}, indent=2))
    return 0


def _api(args: argparse.Namespace) -> TreueClient:
    """The partner API client of the batch commands (treue.client)."""
    from treue.client import TreueClient

    url, key = args.url, args.api_key or os.environ.get("TREUE_API_KEY")
    if not url or not key:
        state_file = _state_file(args)
        if not state_file.exists():
            raise SystemExit("give --url and --api-key (or TREUE_API_KEY), or start the twin with `make run`")
        state = json.loads(state_file.read_text())
        url = url or state["url"]
        key = key or state["api_keys"]["partner"]
    return TreueClient(url, key, timeout=60)


def _batch(args: argparse.Namespace) -> int:
    from treue.client import ApiError, ApiUnreachable

    api = _api(args)
    try:
        return _batch_with(api, args)
    except ApiUnreachable as err:
        raise SystemExit(f"treue: {err}") from None
    except ApiError as err:  # the upload of a large file refused (its pre-signed URL)
        raise SystemExit(f"treue: {args.file if args.action == 'submit' else args.batch_id}: {err}") from None


def _batch_with(api: TreueClient, args: argparse.Namespace) -> int:
    from treue.client import ApiError

    if args.action == "retry":
        try:
            answer = api.retry_batch(args.batch_id)
        except ApiError as err:
            return _refused(err.problem)
        if answer.status != 202:
            return _refused(answer)
        out: dict[str, Any] = answer
        batch_id = args.batch_id
    else:
        status, out, batch_id, _ = _submit(api, args)
        if status == 409 and out.get("type", "").endswith("/idempotency-conflict") and not args.idempotency_key:
            # an upload is fingerprinted by the file's content, so only the options can differ
            print(f"treue: {args.file} was already submitted (Idempotency-Key {_file_key(args)}) with another "
                  "--name or --partial; nothing "
                  "was submitted now. To issue it again as a new batch, give --idempotency-key", file=sys.stderr)
            return 1
        if status != 202:
            return _refused(out)
        if out.get("replayed"):
            print(f"treue: {args.file} was already submitted as {batch_id} on {out.get('created_at')}; "
                  "nothing was submitted now: showing that batch", file=sys.stderr)
        for problem in out.get("rejected_lines", [])[:20]:
            print(f"treue: line {problem['line']} rejected: {problem['reason']}", file=sys.stderr)
    if args.no_wait:
        print(json.dumps(out, indent=2))
        if out.get("replayed") and out.get("status") in FINISHED:
            return 0 if out["status"] == "completed" else 2  # as for a batch waited for
        return 0
    view = _follow(api, batch_id, not args.quiet)
    print(json.dumps(view, indent=2))
    return 0 if view["status"] == "completed" else 2


FINISHED = ("completed", "completed_with_failures", "halted")


def _file_key(args: argparse.Namespace, raw: bytes | None = None) -> str:
    """The batch's Idempotency-Key: --idempotency-key, else a hash of the file's bytes (resubmitting the file
    is a replay)."""
    import hashlib

    if args.idempotency_key:
        given: str = args.idempotency_key
        return given
    return "csv-" + hashlib.sha256(Path(args.file).read_bytes() if raw is None else raw).hexdigest()[:40]


def _submit(api: TreueClient, args: argparse.Namespace) -> tuple[int, dict[str, Any], str | None, bool]:
    """(status, answer or problem, batch id, whether the file went through an upload) of POST /v1/batches."""
    from treue.client import ApiError
    from treue.errors import MalformedRequest
    from treue.logic.batches import MAX_INLINE_LINES, lines_from_csv

    raw = Path(args.file).read_bytes()
    text = raw.decode("utf-8-sig")
    try:
        lines = lines_from_csv(text)
    except MalformedRequest as err:
        raise SystemExit(f"treue: {args.file}: {err.detail}") from err
    key = _file_key(args, raw)
    body: dict[str, Any] = {"name": args.name or Path(args.file).name, "partial": args.partial}
    if len(lines) <= MAX_INLINE_LINES:
        body["lines"] = lines
    else:  # larger files go to a pre-signed S3 URL first
        try:
            upload = api.create_batch_upload({"content_length": len(raw)})
        except ApiError as err:
            return err.status, err.problem, None, True
        if upload.status != 201:
            return upload.status, upload, None, True
        api.upload_batch_file(upload, raw, timeout=300)
        body["upload_id"] = upload["upload_id"]
    try:
        out = api.submit_batch(body, idempotency_key=key)
    except ApiError as err:
        return err.status, err.problem, None, "upload_id" in body
    return out.status, out, out.get("batch_id"), "upload_id" in body


def _refused(problem: dict[str, Any]) -> int:
    print(f"treue: {problem.get('title', 'refused')}: {problem.get('detail', '')}", file=sys.stderr)
    for error in (problem.get("errors") or [])[:50]:
        where = f"line {error['line']}" if "line" in error else error.get("field", "")
        print(f"  {where}: {error.get('field', '')}: {error['reason']}", file=sys.stderr)
    if len(problem.get("errors") or []) > 50:
        print(f"  … and {len(problem['errors']) - 50} more", file=sys.stderr)
    return 1


def _follow(api: TreueClient, batch_id: str, progress: bool) -> dict[str, Any]:
    """Poll the batch until its run has finished, drawing how many lines are settled."""
    import time

    from treue.client import ApiError

    bar = Progress(0, 1, progress)
    while True:
        try:
            view = api.get_batch(batch_id)
        except ApiError as err:
            raise SystemExit(f"treue: batch {batch_id}: {err.problem.get('detail', err.status)}") from None
        counts = view["counts"]
        settled = counts["issued"] + counts["failed"] + counts["rejected"]
        bar.update(settled / max(1, view["lines"]), settled, "lines")
        if view["status"] in FINISHED:
            bar.done(settled, "lines")
            return view
        time.sleep(0.5)


def _instant(bound: str) -> float:
    from datetime import UTC, datetime

    text = bound if "T" in bound else bound + "T00:00:00+00:00"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Progress:
    """A one-line progress bar on stderr: how far an export (through its period) or a batch has got."""

    WIDTH = 30

    def __init__(self, start: float, end: float, enabled: bool = True) -> None:
        import time

        self.start, self.end, self.enabled = start, end, enabled
        self._clock = time.monotonic
        self._last = 0.0

    def update(self, at: float, rows: int, unit: str = "rows") -> None:
        if not self.enabled or self._clock() - self._last < 0.1:
            return
        self._last = self._clock()
        span = self.end - self.start
        self._draw(min(1.0, max(0.0, (at - self.start) / (span if span > 0 else 1.0))), rows, unit)

    def done(self, rows: int, unit: str = "rows") -> None:
        if self.enabled:
            self._draw(1.0, rows, unit)
            sys.stderr.write("\n")

    def _draw(self, share: float, rows: int, unit: str) -> None:
        filled = int(share * self.WIDTH)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {int(share * 100):3d}%  {rows:,} {unit}")
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
