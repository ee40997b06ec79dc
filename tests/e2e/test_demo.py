"""`make demo` walks the session's twin from start to end: exit 0, the walk's key lines, no traceback,
and no webhook of the demo's left registered. A 5-line batch keeps it short and leaves the shared
twin's budget to the other tests (the demo funds what its batch costs, and more)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_walks_the_running_twin_exits_0_and_removes_its_webhook(twin):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "infra.twin.demo", "--state-dir", str(twin.state_file.parent),
                           "--batch", "5"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "functions")})
    seconds = time.monotonic() - started
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "Traceback" not in out and "No twin running" not in out
    for line in (f"Twin at {twin.url}, program {twin.state['program_id']}; batch of 5 lines",
                 "replay of the same transaction: 200  replayed=True  available=49",
                 "balance: {'available': 1200, 'held': 0",
                 "FAILED     out_of_stock",
                 "5 issued, 0 failed in ",
                 " orders, 0 differences",
                 "intact=True",
                 "1 × batch.completed",
                 "rejected: 0",
                 "removed.",
                 "Demo complete in ",
                 f"the API reference at {twin.url}/docs",
                 f"The twin keeps running at {twin.url}."):
        assert line in done.stdout, line
    status, _, hooks = twin.request("GET", "/v1/webhooks")
    assert status == 200
    left = [w for w in hooks["items"] if (w.get("description") or "").startswith("make demo")]
    assert left == [], left
    print(f"demo against the session twin: {seconds:.0f} s")
