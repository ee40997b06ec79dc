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

    args = parser.parse_args(argv)
    from treue.logic import provisioning
    from treue.runtime import now

    try:
        store = _store(args)
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
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
