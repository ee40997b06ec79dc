"""`make help` (also what `make` alone does) lists every target with its line, without a virtualenv."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def targets(makefile: str) -> list[str]:
    return re.findall(r"^([A-Za-z0-9_-]+):(?!=)", makefile, re.M)


@pytest.mark.parametrize("goal", [["help"], []])
def test_make_help_lists_every_target_with_its_line(tmp_path, goal):
    if shutil.which("make") is None:
        pytest.skip("no make")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")  # a folder without .venv: help must not make one
    done = subprocess.run(["make", "-s", *goal, "PYTHON=false", "PORT=3456"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".venv").exists()
    listed = dict(re.findall(r"^  (\S+) +(\S.*)$", done.stdout, re.M))
    assert set(listed) == set(targets((ROOT / "Makefile").read_text()))
    for name in ("run", "demo", "test", "synth", "bench", "help"):
        assert listed[name], name
    assert "127.0.0.1:3456" in listed["run"]  # $(PORT) as make has it
