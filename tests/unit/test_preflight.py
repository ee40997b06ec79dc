"""make's preflight: which Python and Node.js versions pass, warn or fail, and what it says to install."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import preflight
from infra.preflight import ERROR, OK, WARN

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("version", "level"),
    [((3, 11, 7), OK), ((3, 12, 1), OK), ((3, 13, 0), OK), ((4, 0, 0), OK), ((3, 10, 13), ERROR), ((3, 6, 15), ERROR),
     ((2, 7, 18), ERROR)],
)
def test_python_311_or_newer_passes(version, level):
    verdict, message = preflight.python_verdict(version, "/usr/bin/python3")
    assert verdict == level
    if level == ERROR:
        found = ".".join(map(str, version))
        assert f"Treue needs Python 3.11 or newer; found {found} (/usr/bin/python3)" in message
        assert "https://www.python.org/downloads/" in message and "PYTHON=" in message


@pytest.mark.parametrize(
    ("output", "level"),
    [("v22.11.0\n", OK), ("v24.1.0", OK), ("v20.20.2\n", WARN), ("v21.7.3", WARN), ("v23.1.0", WARN),
     ("v26.0.0", WARN), ("v18.19.0\n", ERROR), ("v16.20.2", ERROR), ("v0.10.48", ERROR)],
)
def test_node_22_or_24_passes_20_and_others_warn_older_fail(output, level):
    verdict, message = preflight.node_verdict(output)
    assert verdict == level, message
    if level != OK:
        assert "Node.js 22 or 24" in message and "https://nodejs.org" in message
        assert f"found {output.strip()}" in message


def test_node_20_is_end_of_life_for_jsii_but_still_works():
    verdict, message = preflight.node_verdict("v20.20.2")
    assert verdict == WARN
    assert "end of life for jsii on 2026-10-30" in message and "still works" in message


def test_no_node_or_an_unreadable_version_fails_and_says_what_to_install():
    verdict, message = preflight.node_verdict(None)
    assert verdict == ERROR and "no `node` on PATH" in message and "install Node.js 22 or 24" in message
    verdict, message = preflight.node_verdict("command not found")
    assert verdict == ERROR and "'command not found'" in message


def _run(tmp_path, node_says):
    """The script as make runs it, with a `node` on PATH that prints ``node_says`` (None: no node at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if node_says is not None:
        node = bin_dir / "node"
        node.write_text(f"#!/bin/sh\necho {node_says}\n")
        node.chmod(0o755)
    env = {**os.environ, "PATH": str(bin_dir)}
    return subprocess.run([sys.executable, str(ROOT / "infra" / "preflight.py")], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize(
    ("node_says", "code", "says"),
    [("v22.11.0", 0, ""), ("v20.20.2", 0, "preflight warning: Node.js 20 reached end of life"),
     ("v18.19.0", 1, "preflight error: Node.js 22 or 24 is needed for the CDK (jsii); found v18.19.0"),
     (None, 1, "preflight error: Node.js 22 or 24 is needed for the CDK (jsii); found none")],
)
def test_make_preflight_exits_non_zero_only_on_an_error(tmp_path, node_says, code, says):
    done = _run(tmp_path, node_says)
    assert done.returncode == code, done.stderr
    assert says in done.stderr
    if not says:
        assert done.stderr == ""
