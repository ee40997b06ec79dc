"""Preflight: are the Python and Node.js that Treue needs installed? ``make`` runs this before it builds
anything (``python3 infra/preflight.py [python] [node]``, both by default) and it says what to install.

- Python 3.11 or newer (``requires-python`` in pyproject.toml): the interpreter that runs this script,
  which is the one make creates ``.venv`` with (``make PYTHON=python3.12`` picks another).
- Node.js 22 or 24: the CDK synthesizes the stack through jsii, which supports those releases. Node.js 20
  reached end of life for jsii on 2026-10-30; it still works (jsii's own banner is silenced by the
  Makefile), so it passes with a warning. Older releases fail; others (21, 23, 25 and on) pass with a warning.

It runs on any Python from 3.6 on, so that it can tell an old one what is missing: no newer syntax here.
"""

import re
import shutil
import subprocess
import sys

PYTHON_MIN = (3, 11)
NODE_SUPPORTED = (22, 24)  # the Node.js releases jsii supports
NODE_END_OF_LIFE = {20: "2026-10-30"}  # end of life for jsii: works, with a warning
NODE_OLDEST = 20  # below this, synth is refused
OK, WARN, ERROR = "ok", "warning", "error"

INSTALL_PYTHON = ("Install it from https://www.python.org/downloads/ or your package manager (e.g. "
                  "`apt-get install python3.11`, `brew install python@3.12`), then name it: "
                  "`make run PYTHON=python3.11`.")
INSTALL_NODE = (f"install Node.js {NODE_SUPPORTED[0]} or {NODE_SUPPORTED[1]} from https://nodejs.org or your package "
                "manager (e.g. `brew install node@22`, nvm or fnm)")


def python_verdict(version, executable="python3"):
    """(OK or ERROR, message) for a Python ``version`` tuple such as ``sys.version_info``."""
    found = ".".join(str(part) for part in tuple(version)[:3])
    if tuple(version)[:2] >= PYTHON_MIN:
        return OK, f"Python {found} ({executable})"
    return ERROR, (f"Treue needs Python {PYTHON_MIN[0]}.{PYTHON_MIN[1]} or newer; found {found} ({executable}). "
                   + INSTALL_PYTHON)


def node_verdict(version_output):
    """(OK, WARN or ERROR, message) for the output of ``node --version`` (None: no ``node`` on PATH)."""
    needed = f"Node.js {NODE_SUPPORTED[0]} or {NODE_SUPPORTED[1]} is needed for the CDK (jsii)"
    if version_output is None:
        return ERROR, f"{needed}; found none (no `node` on PATH). To {INSTALL_NODE}."
    text = version_output.strip()
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        return ERROR, f"{needed}; `node --version` answered {text[:80]!r}. To {INSTALL_NODE}."
    major, found = int(match.group(1)), "v" + ".".join(match.groups())
    if major in NODE_SUPPORTED:
        return OK, f"Node.js {found}"
    if major < NODE_OLDEST:
        return ERROR, f"{needed}; found {found}. To {INSTALL_NODE}."
    if major in NODE_END_OF_LIFE:
        return WARN, (f"Node.js {major} reached end of life for jsii on {NODE_END_OF_LIFE[major]}; found {found}. "
                      f"It still works; to stay supported, {INSTALL_NODE}.")
    return WARN, (f"Node.js {major} is not a release jsii supports ({NODE_SUPPORTED[0]} or {NODE_SUPPORTED[1]}); "
                  f"found {found}. Synth may warn or fail; {INSTALL_NODE}.")


def node_version():
    """What ``node --version`` prints, or None when there is no ``node`` on PATH."""
    node = shutil.which("node")
    if node is None:
        return None
    try:
        done = subprocess.run([node, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=30)  # noqa: UP021 (text= is Python 3.7+)
    except (OSError, subprocess.SubprocessError) as err:
        return f"({node} failed: {err})"
    return done.stdout


def main(argv=None):
    checks = list(sys.argv[1:] if argv is None else argv) or ["python", "node"]
    verdicts = []
    for check in checks:
        if check == "python":
            verdicts.append(python_verdict(sys.version_info, sys.executable))
        elif check == "node":
            verdicts.append(node_verdict(node_version()))
        else:
            print(f"preflight: unknown check {check!r} (python, node)", file=sys.stderr)
            return 2
    for level, message in verdicts:
        if level != OK:
            print(f"preflight {level}: {message}", file=sys.stderr)
    return 1 if any(level == ERROR for level, _ in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
