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
from typing import Any


def _target(args) -> tuple[Any, str]:
    from treue.store import targets

    if args.stack:
        return targets.stack(args.stack)
    return targets.twin(Path(args.state or os.environ.get("TREUE_STATE", ".treue/local.json")))


def _store(args):
    from treue.store.dynamodb import Store

    client, table = _target(args)
    return Store(table, ddb=client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="treue", description="Treue operator commands")
    parser.add_argument("--stack", help="a deployed CloudFormation stack (default: the local twin)")
    parser.add_argument("--state", help="the twin's state file (default .treue/local.json)")
    sub = parser.add_subparsers(dest="command", required=True)

    program = sub.add_parser("program", help="programs (tenants)").add_subparsers(dest="action", required=True)
    create = program.add_parser("create", help="create a program and one API key per scope")
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

    cat = sub.add_parser("catalog", help="the reward catalog").add_subparsers(dest="action", required=True)
    load = cat.add_parser("load", help="validate catalog/*.json and load it (items gone from the files are retired)")
    load.add_argument("--dir", default="catalog", help="the catalog folder (default ./catalog)")

    sim = sub.add_parser("simulate", help="the simulated gift-card provider").add_subparsers(dest="action",
                                                                                         required=True)
    fault = sim.add_parser("fault", help="make the simulated provider fail for a brand or one order")
    fault.add_argument("--program", required=True)
    target = fault.add_mutually_exclusive_group(required=True)
    target.add_argument("--brand", help="e.g. 'Nordlicht Books'")
    target.add_argument("--order-key", help="the order's Idempotency-Key")
    fault.add_argument("--mode", required=True, choices=["timeout", "5xx", "out_of_stock", "rejected", "off"])
    fault.add_argument("--times", type=int, help="fail this many calls (default: every call)")

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    kc = key.add_parser("create", help="create an API key (shown once)")
    kc.add_argument("--program", required=True)
    kc.add_argument("--scope", required=True, choices=["partner", "finance", "admin"])
    kr = key.add_parser("revoke", help="revoke an API key at once")
    kr.add_argument("key_id")

    aud = sub.add_parser("audit", help="the hash-chained audit trail").add_subparsers(dest="action", required=True)
    verify = aud.add_parser("verify", help="recompute a program's chain; name the first broken record (exit 1)")
    verify.add_argument("--program", required=True)
    verify.add_argument("--no-seal", action="store_true", help="do not seal pending records before verifying")
    seal = aud.add_parser("seal", help="chain pending audit records now (the stack does it every minute)")
    seal.add_argument("--program", help="one program (default: every program with pending records)")

    fin = sub.add_parser("finance", help="finance exports and checks").add_subparsers(dest="action", required=True)
    export = fin.add_parser("export", help="write the journal (or payouts) of a period as CSV, with progress")
    export.add_argument("--program", required=True)
    export.add_argument("--from", dest="start", required=True, help="date or UTC time, inclusive")
    export.add_argument("--to", dest="end", required=True, help="date (whole day included) or UTC time")
    export.add_argument("--out", required=True, help="the CSV file to write")
    export.add_argument("--report", choices=["journal", "payouts"], default="journal")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    recon = fin.add_parser("reconcile", help="reconcile one day: ledger vs orders vs provider vs budget (exit 1 "
                                             "when there are differences)")
    recon.add_argument("--program", required=True)
    recon.add_argument("--date", required=True, help="UTC day, e.g. 2026-11-24")

    args = parser.parse_args(argv)
    import getpass

    from treue.logic import audit

    with audit.acting(audit.Actor(f"operator:{getpass.getuser()}", "operator")):  # who the audit trail names
        return _run(args)


def _run(args) -> int:
    from treue.errors import TreueError
    from treue.logic import provisioning
    from treue.runtime import now

    try:
        store = _store(args)
        if args.command in ("audit", "finance"):
            return _finance(args, store)
        if args.command == "program":
            fx = {}
            for pair in args.fx:
                cur, _, rate = pair.partition("=")
                fx[cur.upper()] = int(rate)
            out = provisioning.create_program(
                store, args.name, args.currency, now(),
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


def _finance(args, store) -> int:
    from treue.logic import finance
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
        from treue.providers.simulated import SimulatedProvider

        finance.bound(args.date, "date")
        report = finance.reconcile_day(store, SimulatedProvider(store.ddb, store.table), args.program, args.date)
        print(json.dumps(report, indent=2))
        return 1 if report["differences"] else 0
    return _export(args, store)


def _export(args, store) -> int:
    """Stream a period's journal or payouts into a CSV file; the bar follows the rows' time."""
    from datetime import datetime

    from treue.logic import finance
    from treue.store.reports import Reports

    start, end = finance.period(args.start, args.end)
    reports = Reports(store)
    if args.report == "journal":
        columns, rows, to_row = finance.JOURNAL_COLUMNS, reports.journal(args.program, start, end), finance.journal_row
    else:
        columns, rows, to_row = finance.PAYOUT_COLUMNS, reports.orders(args.program, start, end), finance.payout_row
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


def _instant(bound: str) -> float:
    from datetime import UTC, datetime

    text = bound if "T" in bound else bound + "T00:00:00+00:00"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Progress:
    """A one-line progress bar on stderr: how far through the period the export has got."""

    WIDTH = 30

    def __init__(self, start: float, end: float, enabled: bool = True) -> None:
        import time

        self.start, self.end, self.enabled = start, end, enabled
        self._clock = time.monotonic
        self._last = 0.0

    def update(self, at: float, rows: int) -> None:
        if not self.enabled or self._clock() - self._last < 0.1:
            return
        self._last = self._clock()
        self._draw(min(1.0, max(0.0, (at - self.start) / max(1.0, self.end - self.start))), rows)

    def done(self, rows: int) -> None:
        if self.enabled:
            self._draw(1.0, rows)
            sys.stderr.write("\n")

    def _draw(self, share: float, rows: int) -> None:
        filled = int(share * self.WIDTH)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {int(share * 100):3d}%  {rows:,} rows")
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
