"""`make demo` walks the session's twin from start to end, twice (its program and tiers persist between runs):
exit 0, the walk's key lines, no traceback, no webhook of the demo's left registered and none of the earning
rules it created left in force. A 5-line batch keeps it short and leaves the shared twin's budget to the other
tests (the demo funds what its batch costs, and more)."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROGRAMME = ("Bronze from 0 (1×) · Silver from 300 (1.25×) · Gold from 1,000 (1.5×)",
             "the same Idempotency-Key again: 200, the same rule ",
             "simulate: 100 points, nothing posted",
             "Books count double     v1   line 0 (books)       +40",
             "POST /v1/members/{id}/purchases: 100 points  available=100",
             "completed  referrer +500  referee +250",
             "available: Mary 600 (100 + 500), Emmy 400 (150 + 250)",
             "review 1 again: replayed=True  50 points  available=650",
             "review 2 the same day: 0 points: ",
             "Ada:  Bronze [###########---------] 178/300 to Silver",
             "Mary: Silver [#######-------------] 350/1,000 to Gold",
             "buys for 700.00 EUR: 875 points (base +700  tier:silver +175)",
             "buys for 100.00 EUR: 150 points (base +100  tier:gold +50)",
             "premium   in the top tier gold",
             "targeted Premium coffee triple      +200",
             "nearly: 100 points missing",
             "4 rules retired")


def test_the_demo_walks_the_running_twin_twice_exits_0_and_leaves_no_webhook_or_rule(twin):
    created = []
    for run in (1, 2):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "infra.twin.demo", "--state-dir",
                               str(twin.state_file.parent), "--batch", "5"], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "functions")})
        seconds = time.monotonic() - started
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-6000:]
        assert "Traceback" not in out and "No twin running" not in out
        for line in (f"Twin at {twin.url}, program {twin.state['program_id']}; batch of 5 lines",
                     "replay of the same transaction: 200  replayed=True  available=49",
                     "balance: {'available': 1200, 'pending': 0, 'held': 0",
                     "a 50.00 EUR purchase of 20 days ago: 50 points, available",
                     "a 80.00 EUR purchase of 2 days ago: 80 points, available from ",
                     "treue jobs run expire-points: ",
                     "balance: available 50, pending 80; expiring 50 on ",
                     "15 points reversed from pending 15: pending 65, available still 50",
                     "FAILED     out_of_stock",
                     "5 issued, 0 failed in ",
                     " orders, 0 differences",
                     "intact=True",
                     "1 × batch.completed",
                     "rejected: 0",
                     "removed.",
                     "Demo complete in ",
                     f"the API reference at {twin.url}/docs",
                     f"The twin keeps running at {twin.url}.", *PROGRAMME):
            assert line in done.stdout, line
        if run == 2:  # the tiers the first run set are still there
            assert "already so, nothing written" in done.stdout
            assert "until the new tiers apply" not in done.stdout
        created += re.findall(r"^   201  (rul_\w+)  v1 ", done.stdout, re.M)
        print(f"demo run {run} against the session twin: {seconds:.0f} s")
    assert len(set(created)) == 8, created
    status, _, hooks = twin.request("GET", "/v1/webhooks")
    assert status == 200
    left = [w for w in hooks["items"] if (w.get("description") or "").startswith("make demo")]
    assert left == [], left
    for rule_id in created:
        status, _, rule = twin.request("GET", f"/v1/rules/{rule_id}")
        assert status == 200 and rule["status"] == "retired", rule
