"""The twin's own lifecycle, each test with a twin of its own: a SEED keeps the demo program's id and
keys, the logs hold one run, and Ctrl-C (SIGINT to the terminal's whole process group) or SIGTERM stops
it with "stopped", exit 0 and no traceback, also while it is still starting."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT
from treue.client import TreueClient
from treue.core.ids import SeededSource, new_id

pytestmark = pytest.mark.e2e


def _start(synthesized, state_dir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    with open(state_dir / "twin.out", "w") as out:  # the twin writes to its own copy of the file descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "infra.twin", "--port", "0", "--template", str(synthesized),
             "--state-dir", str(state_dir), *args],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "functions"), **(env or {})},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,  # its own group, as in a terminal
        )


def _group_left(pgid: int) -> list[str]:
    """The processes still in the group (the twin's workers and helpers)."""
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                left.append(entry.name)
    return left


def _stop(proc: subprocess.Popen, sig: int, group: bool = True) -> int:
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        return proc.wait(90)
    finally:
        deadline = time.monotonic() + 15
        while _group_left(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _group_left(proc.pid)
        if left:
            os.killpg(proc.pid, signal.SIGKILL)
        assert not left, f"processes of the twin left running: {left}"


def _no_traceback(state_dir: Path) -> None:
    for path in [state_dir / "twin.out", *sorted((state_dir / "logs").glob("*.log"))]:
        text = path.read_text()
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, f"{path.name}:\n{text[-3000:]}"


def test_a_seeded_twin_keeps_its_program_and_keys_and_ctrl_c_stops_it(synthesized, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "orders.log").write_text("a line of an earlier run\n")
    (logs / "treue-ordersfunction520dba95.log").write_text("a log of an older twin\n")
    proc = _start(synthesized, tmp_path, env={"TREUE_SEED": "lifecycle"})
    state_file = tmp_path / "local.json"
    deadline = time.monotonic() + 180
    try:
        while not state_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "twin.out").read_text()
            time.sleep(0.2)
        state = json.loads(state_file.read_text())
        source = SeededSource("lifecycle")
        program = new_id("prg", source, "program")
        assert state["program_id"] == program
        for scope, key in state["api_keys"].items():
            assert key.startswith(f"trk_{new_id('key', source, f'{program}:{scope}')}_")
        assert TreueClient(state["url"], state["api_keys"]["partner"]).list_catalog_items().status == 200
        assert "seed 'lifecycle'" in (tmp_path / "twin.out").read_text()
        assert not (logs / "treue-ordersfunction520dba95.log").exists()
        assert "earlier run" not in (logs / "orders.log").read_text()
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert _stop(proc, signal.SIGINT) == 0
    out = (tmp_path / "twin.out").read_text()
    assert out.rstrip().endswith("Treue twin stopped."), out[-2000:]
    _no_traceback(tmp_path)
    assert not state_file.exists()


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["ctrl-c", "sigterm"])
def test_stopped_while_starting_it_says_so_and_leaves_nothing_running(synthesized, tmp_path, sig, group):
    proc = _start(synthesized, tmp_path)
    deadline = time.monotonic() + 120
    try:  # stop it while its function workers start: their logs are there, its state file not yet
        while not list((tmp_path / "logs").glob("*.log")):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "twin.out").read_text()
            time.sleep(0.02)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert _stop(proc, sig, group) == 0
    out = (tmp_path / "twin.out").read_text()
    assert "Treue twin stopped" in out, out[-2000:]
    _no_traceback(tmp_path)
    assert not (tmp_path / "local.json").exists()
