"""``python -m infra.twin``: run the local twin until Ctrl-C (or SIGTERM), then say it stopped.

The twin keeps everything in memory (moto): a restart starts afresh, with a new demo program unless
``--seed`` (``TREUE_SEED``, ``make run SEED=…``) makes its id and keys the same on every start."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from infra.twin.runner import Twin, TwinStopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.twin", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("TREUE_AWS_PORT", "0")) or None)
    parser.add_argument("--template", default="cdk.out/Treue.template.json")
    parser.add_argument("--state-dir", default=".treue")
    parser.add_argument("--concurrency", type=int, default=2, help="execution environments per function")
    parser.add_argument("--visibility-timeout", type=int, default=None,
                        help="override the queues' visibility timeout (seconds), for quick local retries")
    parser.add_argument("--schedule-seconds", type=float, default=5,
                        help="run the stack's schedules (the audit sealer) at most this many seconds apart")
    parser.add_argument("--webhook-retry-seconds", type=int, default=None,
                        help="base of the webhook retry backoff (deployed: 30 s)")
    parser.add_argument("--seed", default=os.environ.get("TREUE_SEED") or None,
                        help="a word: the demo program's id and API keys are derived from it, the same on every "
                             "start (default TREUE_SEED; without one they are random)")
    args = parser.parse_args(argv)
    if not Path(args.template).exists():
        print(f"{args.template} is missing: run `make synth` first", file=sys.stderr)
        return 2
    twin = Twin(args.template, args.port, args.state_dir, args.aws_port, args.concurrency, args.visibility_timeout,
                schedule_seconds=args.schedule_seconds, webhook_retry_seconds=args.webhook_retry_seconds,
                demo_seed=args.seed)
    stop = threading.Event()

    def on_signal(*_) -> None:  # Ctrl-C or SIGTERM: stop (a start in progress gives up at its next step)
        stop.set()
        twin.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state = None
    try:
        try:
            state = twin.start()
        except TwinStopped:
            pass
    finally:
        if state is None:
            twin.stop()
    if state is None:
        print("Treue twin stopped while starting.", flush=True)
        return 0
    try:
        keys = state["api_keys"]
        seeded = f"   (seed {args.seed!r}: this id and these keys on every start)" if args.seed else ""
        print(
            f"Treue twin ready at {state['url']}  (AWS endpoint {state['aws_endpoint']})\n"
            f"  docs      {state['url']}/docs\n"
            f"  program   {state['program_id']}{seeded}\n"
            f"  partner   {keys['partner']}\n"
            f"  finance   {keys['finance']}\n"
            f"  admin     {keys['admin']}\n"
            f"  queue     {state['queues'].get('accrual')}\n"
            f"  state     {Path(args.state_dir) / 'local.json'}   logs {Path(args.state_dir) / 'logs'}/\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        stop.wait()
    finally:
        twin.stop()
    print("Treue twin stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
