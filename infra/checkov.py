"""checkov on the synthesized template, from its own virtualenv.

checkov pins many dependencies of its own, so it never goes into the project's .venv: ``.venv-checkov``
beside it holds exactly ``CHECKOV_VERSION``, made at first use (``make test`` makes it before the tests;
tests/infra/test_checkov.py makes it when it is absent). ``python -m infra.checkov [template]`` installs
it if needed and, given a template, prints the failed checks. A lock file (``.venv-checkov.lock``) lets
test runs started at the same time make it once.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKOV_VERSION = "3.3.30"
VENV = ROOT / ".venv-checkov"
STAMP = VENV / ".installed"  # holds the installed version: another pin reinstalls


def executable() -> Path:
    return VENV / "bin" / "checkov"


def ensure(venv_dir: Path = VENV) -> Path:
    """Create the checkov virtualenv with the pinned version unless it is there already; the checkov path."""
    stamp, checkov = venv_dir / STAMP.name, venv_dir / "bin" / "checkov"

    def installed() -> bool:
        return stamp.exists() and stamp.read_text().strip() == CHECKOV_VERSION and checkov.exists()

    if installed():
        return checkov
    with open(venv_dir.parent / f"{venv_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed():
            stamp.unlink(missing_ok=True)
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
            subprocess.run(
                [str(venv_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 f"checkov=={CHECKOV_VERSION}"],
                check=True,
            )
            stamp.write_text(CHECKOV_VERSION + "\n")
    return checkov


def run(template: Path, checkov: Path | None = None) -> dict:
    """checkov's CloudFormation checks on one template: its JSON report (summary, failed and skipped checks)."""
    template = template.resolve(strict=True)  # checkov runs in the template's folder
    checkov = checkov or ensure()
    done = subprocess.run(
        [str(checkov), "--file", str(template), "--framework", "cloudformation", "--output", "json",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600, cwd=template.parent,
    )
    # exit code 1 means failed checks; anything else but 0 is checkov itself failing
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {done.returncode}: {done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    if isinstance(report, list):  # one report per framework
        [report] = [r for r in report if r.get("check_type") == "cloudformation"]
    return report


def failures(report: dict) -> list[str]:
    """One line per failed check: check id, resource, check name."""
    return [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]


def main(argv: list[str]) -> int:
    checkov = ensure()
    if not argv:
        print(f"{checkov} ({CHECKOV_VERSION})")
        return 0
    report = run(Path(argv[0]), checkov)
    for line in failures(report):
        print(line)
    summary = report["summary"]
    print(f"checkov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed, "
          f"{summary['skipped']} skipped")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
