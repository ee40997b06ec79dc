"""Every shell block of the README, run as written against the session's twin, twice.

Each ```bash / ```sh block runs with ``bash -euo pipefail`` from a directory laid out like the repository root
(the twin's ``.treue/local.json``, ``.venv``, ``catalog/``), after the Quickstart's "set these first" block
(the one marked ``<!-- readme-test: setup -->``). A ``curl`` first on PATH runs the real one and logs every
HTTP answer with the README line it came from: an answer outside 2xx fails the test unless the command
declares it on its last line (``# → 409``). A block that cannot run here is marked
``<!-- readme-test: skip (reason) -->`` just above its fence; any other shell block runs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELL = {"bash", "sh"}
NOT_RUN = {"", "json", "python", "text", "csv", "yaml", "toml", "http", "diff", "mermaid"}  # never run
MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>[a-z-]+)\s*(?:\((?P<reason>[^)]+)\))?\s*-->$")
EXPECTED = re.compile(r"#.*→\s*(\d{3})\b")  # `# → 409` on a command's last line: the answer it shows
RUN_TIMEOUT = 240  # seconds for one block (its own waits are at most 60 s)

# the test's curl: the real one, with the status of each answer and the README line it came from logged;
# a later -w overrides an earlier one, so the README's own format comes first and the log line follows it
CURL = r"""#!/usr/bin/env bash
format=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -w|--write-out) format="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
errors=$(mktemp)
status=0
"$TREUE_README_REAL_CURL" "${args[@]}" -w "${format}%{stderr}@@treue-readme %{http_code} %{url_effective}\n" \
  2>"$errors" || status=$?
grep '^@@treue-readme ' "$errors" | sed "s/^@@treue-readme /${TREUE_README_LINE:-0} /" >> "$TREUE_README_LOG"
grep -v '^@@treue-readme ' "$errors" >&2
rm -f "$errors"
exit "$status"
"""


@dataclass
class Block:
    start: int  # README line number of the block's first line (after the fence)
    lang: str
    lines: list[str]
    section: str
    kind: str | None = None  # None (run it), "setup" or "skip"
    reason: str | None = None

    @property
    def name(self) -> str:
        return f"README.md:{self.start} ({self.section})"

    def code(self) -> list[str]:
        """The lines without their comments (roughly: enough to look for leftovers)."""
        out = []
        for line in self.lines:
            if line.lstrip().startswith("#"):
                continue
            out.append(re.split(r"\s#\s", line, maxsplit=1)[0])
        return out


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks, section, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            section = line.lstrip("#").strip()
        if line.startswith("```"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = MARKER.match(before.strip())
            blocks.append(Block(i + 2, line[3:].strip(), lines[i + 1:end], section,
                                marker["kind"] if marker else None, marker["reason"] if marker else None))
            i = end + 1
            continue
        i += 1
    return blocks


def shell_blocks() -> list[Block]:
    return [b for b in readme_blocks(README.read_text()) if b.lang in SHELL]


def test_every_shell_block_runs_or_says_why_not():
    blocks = readme_blocks(README.read_text())
    unknown = [f"{b.name}: ```{b.lang}" for b in blocks if b.lang not in SHELL | NOT_RUN]
    assert not unknown, f"a fence this test neither runs nor knows to be documentation: {unknown}"
    shell = [b for b in blocks if b.lang in SHELL]
    markers = [b for b in blocks if b.kind]
    assert all(b.lang in SHELL for b in markers), [b.name for b in markers if b.lang not in SHELL]
    assert [b.kind for b in markers if b.kind not in ("setup", "skip")] == []
    assert [b.name for b in shell if b.kind == "skip" and not (b.reason or "").strip()] == [], \
        "a skipped block says why, e.g. <!-- readme-test: skip (needs an AWS account) -->"
    assert len([b for b in shell if b.kind == "setup"]) == 1, "one block sets the variables every other block uses"
    assert len([b for b in shell if b.kind is None]) >= 8  # the quickstart, finance, brands, batches, webhooks, CLI


def test_runnable_blocks_carry_no_placeholders_fixed_dates_or_silent_curls():
    problems = []
    setup = next((b for b in shell_blocks() if b.kind == "setup"), None)
    assert setup, "no block marked <!-- readme-test: setup -->"
    defined = set(re.findall(r"export (TREUE_[A-Z]+)=", "\n".join(setup.lines)))
    assert defined == {"TREUE_URL", "TREUE_KEY", "TREUE_FINANCE", "TREUE_ADMIN", "TREUE_PROGRAM"}
    for block in shell_blocks():
        if block.kind:
            continue
        code = "\n".join(block.code())
        for leftover in re.findall(r"\S*…\S*|\$TREUE\b|\$PARTNER_KEY\b|<[a-z_ ]+>", code):
            problems.append(f"{block.name}: placeholder {leftover!r}")
        for date in re.findall(r"\b20\d\d-\d\d-\d\d\b", code):
            problems.append(f"{block.name}: fixed date {date} (use $(date -u +%F))")
        for call in re.findall(r"\bcurl\b[^\n]*", code):
            if not call.startswith("curl -sS "):
                problems.append(f"{block.name}: `{call[:40]}…` is not `curl -sS` (errors must show)")
        for line in block.code():  # an answer printed on the terminal ends its line
            if line.lstrip().startswith("curl ") and "-w '\\n'" not in line and " > " not in line:
                problems.append(f"{block.name}: `{line.strip()[:40]}…` prints no newline after the answer (-w '\\n')")
        used = set(re.findall(r"\$\{?(TREUE_[A-Z]+)", code))
        guarded = set(re.findall(r"\$\{(TREUE_[A-Z]+):\?", code))
        if used - guarded:
            problems.append(f"{block.name}: uses {sorted(used - guarded)} without a `: \"${{VAR:?…}}\"` guard")
        if re.search(r"^\s*(until|while)\b", code, re.M):
            problems.append(f"{block.name}: an until/while wait has no timeout: `for i in $(seq N)`")
    assert not problems, "\n".join(problems)


@dataclass
class Ran:
    block: Block
    run: int
    done: subprocess.CompletedProcess
    seconds: float
    answers: list[tuple[int, int, str]]  # README line, HTTP status, URL


class Shell:
    """A directory laid out like the repository root for the README's commands, and the logging curl."""

    def __init__(self, twin, base: Path) -> None:
        self.twin, self.base = twin, base
        self.bin = base / "bin"
        self.bin.mkdir()
        (self.bin / "curl").write_text(CURL)
        (self.bin / "curl").chmod(0o755)
        self.real_curl = shutil.which("curl")
        assert self.real_curl, "the README needs curl"
        self.setup = next(b for b in shell_blocks() if b.kind == "setup")

    def cwd(self, block: Block) -> Path:
        where = self.base / f"line-{block.start}"
        if not where.exists():
            (where / ".treue").mkdir(parents=True)
            (where / ".treue" / "local.json").write_text(self.twin.state_file.read_text())
            (where / ".venv").symlink_to(ROOT / ".venv")
            (where / "catalog").symlink_to(ROOT / "catalog")
        return where

    def env(self, log: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TREUE_")}  # only the README sets them
        env.update(PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}", TREUE_README_LOG=str(log),
                   TREUE_README_REAL_CURL=self.real_curl,
                   # .venv/bin/treue runs this checkout's code, as the twin does (not wherever .venv was installed from)
                   PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "functions"), env.get("PYTHONPATH")) if p))
        return env

    def run(self, block: Block, run: int, with_setup: bool = True) -> Ran:
        parts = ([self.setup] if with_setup else []) + [block]
        script, origin = ["trap 'TREUE_README_LINE=$LINENO; export TREUE_README_LINE' DEBUG"], [0]
        for part in parts:
            script += part.lines
            origin += [part.start + n for n in range(len(part.lines))]
        tag = f"{block.start}-{run}" + ("" if with_setup else "-alone")
        path, log = self.base / f"block-{tag}.sh", self.base / f"curl-{tag}.log"
        path.write_text("\n".join(script) + "\n")
        log.write_text("")
        started = time.monotonic()
        done = subprocess.run(["bash", "-euo", "pipefail", "-o", "functrace", str(path)], cwd=self.cwd(block),
                              env=self.env(log), capture_output=True, text=True, timeout=RUN_TIMEOUT)
        seconds = time.monotonic() - started
        answers = []
        for entry in log.read_text().splitlines():
            line, status, url = entry.split(" ", 2)
            answers.append((origin[int(line) - 1] if 0 < int(line) <= len(origin) else 0, int(status), url))
        return Ran(block, run, done, seconds, answers)


def command_span(lines: list[str], number: int) -> tuple[int, int]:
    """The first and last README line of the command on README line ``number`` (continued with backslashes)."""
    first = number
    while first > 1 and lines[first - 2].rstrip().endswith("\\"):
        first -= 1
    last = number
    while lines[last - 1].rstrip().endswith("\\"):
        last += 1
    return first, last


def expected_status(lines: list[str], number: int) -> int | None:
    found = EXPECTED.search(lines[command_span(lines, number)[1] - 1])
    return int(found[1]) if found else None


def documents(stdout: str) -> list:
    """The JSON answers a block printed, one after another (a CSV table is kept as its rows)."""
    docs, text, decoder = [], stdout.strip(), json.JSONDecoder()
    while text:
        if not text.startswith(("{", "[")):
            end = text.find("\n{")
            table, text = (text, "") if end < 0 else (text[:end], text[end:].strip())
            docs.append(list(csv.DictReader(io.StringIO(table))))
            continue
        doc, end = decoder.raw_decode(text)
        docs.append(doc)
        text = text[end:].strip()
    return docs


def problems_of(ran: Ran, readme_lines: list[str]) -> list[str]:
    problems = []
    where = f"{ran.block.name}, run {ran.run}"
    if ran.done.returncode != 0:
        problems.append(f"{where}: exit {ran.done.returncode}\n--- stderr\n{ran.done.stderr[-3000:]}"
                        f"\n--- stdout\n{ran.done.stdout[-2000:]}")
    for line, status, url in ran.answers:
        expected = expected_status(readme_lines, line) if line else None
        if expected is not None and status != expected:
            problems.append(f"{where}: README line {line} says → {expected}, the twin answered {status} ({url})")
        elif expected is None and not 200 <= status < 300:
            problems.append(f"{where}: README line {line} got HTTP {status} ({url}) and does not say it expects it")
    for n in range(ran.block.start, ran.block.start + len(ran.block.lines)):  # a declared answer was asked for
        if readme_lines[n - 1].lstrip().startswith("#") or not EXPECTED.search(readme_lines[n - 1]):
            continue
        first, last = command_span(readme_lines, n)
        if not any(first <= line <= last for line, _, _ in ran.answers):
            problems.append(f"{where}: README line {n} declares an answer, but no request was made there")
    return problems


def test_every_readme_shell_block_runs_twice_against_one_twin(twin, tmp_path):
    readme_lines = README.read_text().splitlines()
    blocks = shell_blocks()
    runnable = [b for b in blocks if b.kind is None]
    skipped = [b for b in blocks if b.kind == "skip"]
    print("skipped README blocks:\n" + "\n".join(f"  {b.name}: {b.reason}" for b in skipped))
    shell = Shell(twin, tmp_path)
    started = time.monotonic()
    results: list[Ran] = []
    try:
        for run in (1, 2):
            for block in runnable:
                results.append(shell.run(block, run))
    finally:  # the CLI block switches a provider fault on and off: never leave it on for later tests
        twin.treue("simulate", "fault", "--program", twin.state["program_id"], "--brand", "Stadtkino",
                   "--mode", "off")
    total = time.monotonic() - started
    print(f"{len(runnable)} blocks twice in {total:.1f} s: "
          + ", ".join(f"{r.block.start}/{r.run} {r.seconds:.1f} s" for r in results))
    problems = [p for ran in results for p in problems_of(ran, readme_lines)]
    assert not problems, "\n\n".join(problems)

    # newcomers copy one section: without the Quickstart's variables a block says so before any request
    for block in runnable:
        if not re.search(r"\$\{?TREUE_", "\n".join(block.code())):
            continue
        alone = shell.run(block, 0, with_setup=False)
        assert alone.done.returncode != 0 and "run the export lines of the Quickstart first" in alone.done.stderr, \
            (block.name, alone.done.stderr[-500:])
        assert alone.answers == [], (block.name, alone.answers)

    by_section = {}
    for ran in results:
        by_section.setdefault(ran.block.section, []).append(ran)
    for ran in by_section["Quickstart (against the running twin)"]:
        check_quickstart(twin, documents(ran.done.stdout))
    for ran in by_section["A worked example (against the running twin)"]:
        if ran.block.lang == "bash":
            check_finance_example(documents(ran.done.stdout))


def check_quickstart(twin, docs):
    purchase_answer, replay, balance, statement, found, bonus, order, codes = docs
    assert purchase_answer["points_earned"] == 49 and not purchase_answer["replayed"]
    assert replay == {**purchase_answer, "replayed": True}
    assert balance == {"available": 49, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                       "lifetime_earned": 49, "lifetime_redeemed": 0}
    assert statement["entries"][0]["reference"] == purchase_answer["transaction_id"]
    assert len(found["items"]) == 1
    assert bonus["balance"]["available"] == 2549
    assert order["status"] == "COMPLETED" and order["points"] == 2500
    assert codes["codes"][0]["code"].startswith("SIM-") and codes["order_id"] == order["order_id"]
    _, _, after = twin.request("GET", f"/v1/members/{order['member_id']}/balance")
    assert after == {"available": 49, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                     "lifetime_earned": 2549, "lifetime_redeemed": 2500}


def check_finance_example(docs):
    funding, replay, threshold, budget, payouts, trial, recon, kpis = docs
    assert funding["amount"] == {"value": 100_000, "currency": "EUR"} and not funding["replayed"]
    assert replay["funding_id"] == funding["funding_id"] and replay["replayed"]
    assert threshold == {"currency": "EUR", "low_balance_threshold": 50_000}
    assert budget["budgets"][0]["currency"] == "EUR" and budget["movements"][0]["id"] == funding["funding_id"]
    assert payouts and all(row["currency"] for row in payouts)
    assert trial["balanced"] and recon["differences"] == []
    assert kpis["members"] >= 1 and kpis["liability"]["currency"] == "EUR"
