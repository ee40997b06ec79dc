"""The functions' code asset: the sources of functions/, and their bytecode when this machine can make it.

Lambda's /var/task is read-only, so a function whose asset has no ``__pycache__`` compiles every module it
imports at every cold start (the bench's "no .pyc" column: 10 to 130 ms per function here). Bytecode is
only read by the Python version that wrote it (its cache tag, e.g. ``cpython-313``), so the asset carries
it only when an interpreter of the runtime's version is at hand at synth: this one, ``python3.X`` on the
PATH, or the one the cdk context ``bytecode_python`` names. It is compiled as ``unchecked-hash`` .pyc
files: Lambda unpacks the asset with its own file times, so a time-stamped .pyc would be refused as stale
and compiled again, and an unchecked one is read without looking at the source. Without such an
interpreter the asset is the sources alone, as before, and synth says so.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
PYTHON_VERSION = "3.13"  # the functions' runtime unless the cdk context python_version says otherwise
# Never in the asset: caches, the package metadata pip leaves, and what runs on a laptop or at build time:
# the operator CLI, the partners' Python client, the OpenAPI document's builder
EXCLUDE = ("**/__pycache__", "*.pyc", "**/.mypy_cache", "*.egg-info", "treue/cli.py", "treue/client.py",
           "treue/openapi.py")
# Only in the Docs function's asset: the API reference page's files and the OpenAPI document it serves
DOCS_ONLY = ("treue/static", "treue/openapi.json")
TASK_ROOT = "/var/task"  # where Lambda puts the asset: the path tracebacks of the bytecode name


def runtime(version: str) -> lambda_.Runtime:
    """The Lambda runtime of a Python version such as ``"3.13"``."""
    major, _, minor = version.partition(".")
    if major != "3" or not minor.isdigit():
        raise ValueError(f"python_version must read like 3.13, not {version!r}")
    return lambda_.Runtime(f"python{version}", lambda_.RuntimeFamily.PYTHON)


def excluded(relative: str, patterns: tuple[str, ...]) -> bool:
    """Whether a path of functions/ (POSIX, relative) is left out by ``patterns``, read as the asset's
    exclude list is: a pattern without a slash (or after a leading ``**/``) matches a name at any depth,
    one with a slash matches the path from the top, and a folder that matches takes its contents along."""
    parts = relative.split("/")
    for pattern in patterns:
        name = pattern.removeprefix("**/")
        if "/" not in name:
            if any(fnmatch.fnmatchcase(part, name) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase("/".join(parts[:i]), name) for i in range(1, len(parts) + 1)):
            return True
    return False


def sources(patterns: tuple[str, ...], top: Path = FUNCTIONS_DIR) -> list[Path]:
    """The files of the asset, sorted."""
    return sorted(p for p in top.rglob("*") if p.is_file() and not excluded(p.relative_to(top).as_posix(), patterns))


def python_of(interpreter: str) -> str | None:
    """``"3.X"`` of an interpreter, or None when it does not run."""
    if interpreter == sys.executable:
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        done = subprocess.run([interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def bytecode_interpreter(version: str, given: str | None = None) -> str | None:
    """An interpreter of ``version`` to compile the asset with: ``given`` (it must be that version), else
    this one or ``python<version>`` on the PATH; None when there is none."""
    candidates = [given] if given else [sys.executable, shutil.which(f"python{version}")]
    return next((c for c in candidates if c and python_of(c) == version), None)


@jsii.implements(ILocalBundling)
class CompiledSources:
    """Builds the asset on this machine (no Docker): the sources, then ``compileall`` with the runtime's
    Python into each package's ``__pycache__``."""

    def __init__(self, interpreter: str, patterns: tuple[str, ...], top: Path = FUNCTIONS_DIR) -> None:
        self.interpreter, self.patterns, self.top = interpreter, patterns, top

    def try_bundle(self, output_dir: str, *, image, **_options) -> bool:  # noqa: ANN001 (jsii's signature)
        out = Path(output_dir)
        for path in sources(self.patterns, self.top):
            target = out / path.relative_to(self.top)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        subprocess.run([self.interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                        "unchecked-hash", "-s", str(out), "-p", TASK_ROOT, str(out)], check=True,
                       capture_output=True, text=True, timeout=300)
        return True


def digest(interpreter: str, patterns: tuple[str, ...], top: Path = FUNCTIONS_DIR) -> str:
    """The compiled asset's hash: its sources (names and bytes), the exact Python that compiles them and
    the invalidation mode, so the same sources compiled again give the same asset (no redeploy)."""
    version = subprocess.run([interpreter, "-c", "import sys; print(sys.version)"], capture_output=True,
                             text=True, check=True, timeout=30).stdout.strip()
    h = hashlib.sha256(f"unchecked-hash\0{version}\0".encode())
    for path in sources(patterns, top):
        h.update(path.relative_to(top).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def function_code(version: str, extra_exclude: tuple[str, ...] = (), interpreter: str | None = None
                  ) -> tuple[lambda_.Code, bool]:
    """The functions' code for runtime ``version``, and whether it carries bytecode."""
    patterns = EXCLUDE + extra_exclude
    python = bytecode_interpreter(version, interpreter)
    if python is None:
        return lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=list(patterns)), False
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=digest(python, patterns),
        # never used: the local bundling always builds it (CDK asks for an image all the same)
        bundling=BundlingOptions(image=DockerImage.from_registry("treue-compiled-sources"),
                                 local=CompiledSources(python, patterns)),
    ), True
