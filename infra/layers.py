"""Lambda layers of Python packages that some functions need beyond the Powertools layer, built with pip at synth.

``pdf``: fpdf2, which writes the monthly statement's PDF (``treue.logic.statement_files``), with what it needs
(Pillow, fontTools, defusedxml): about 45 MB unpacked, so only the function that serves statements carries it
(``FunctionSpec.layers`` in infra/stack.py), and that function imports it only for a PDF.

pip installs the pinned requirements as wheels for the functions' platform (Lambda's Python ``3.X`` on x86_64,
Amazon Linux 2023: glibc 2.34, so manylinux wheels up to 2.34) into ``python/``, where Lambda puts a layer's
packages on the path; no source builds (``--only-binary``), so what is built here runs there. With an interpreter
of the runtime's version at hand (as for the functions' code, infra/code.py) the packages are compiled too:
Lambda's /opt is read-only, and without bytecode each cold start that renders a PDF would compile fpdf2 first.
A build is kept in ``.treue/layers/<digest>`` (the digest of the requirements, platform and interpreter), so synth
runs pip once per change of these; pip needs the package index only then.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import code

# Pinned: a layer is what was tested (pyproject.toml's range gives the same version to the local venv and twin)
REQUIREMENTS = {"pdf": ("fpdf2==2.8.9",)}
DESCRIPTIONS = {"pdf": "fpdf2 (with Pillow, fontTools, defusedxml) for the monthly statements' PDF"}
# The manylinux tags Lambda's x86_64 Python runtimes (Amazon Linux 2023, glibc 2.34) run, newest first: pip takes
# only the tags it is given, so each one a wheel may carry is listed
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
CACHE = code.ROOT / ".treue" / "layers"
PIP_TIMEOUT = 600


def digest(requirements: tuple[str, ...], version: str, interpreter: str | None) -> str:
    """What a build depends on: the requirements, the runtime's Python, the platform and the interpreter that
    compiles it (none: no bytecode)."""
    compiler = "none"
    if interpreter is not None:
        compiler = subprocess.run([interpreter, "-c", "import sys; print(sys.version)"], capture_output=True,
                                  text=True, check=True, timeout=30).stdout.strip()
    text = "\0".join((*requirements, version, *PLATFORMS, compiler))
    return hashlib.sha256(text.encode()).hexdigest()


def pip_command(requirements: tuple[str, ...], version: str, target: Path) -> list[str]:
    """pip installing ``requirements`` as wheels for Lambda's platform and Python ``version`` into ``target``."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", version, *platforms,
            "--target", str(target), *requirements]


def build(requirements: tuple[str, ...], version: str, interpreter: str | None, out: Path) -> None:
    """The layer's content in ``out``: ``python/`` with the packages (and their bytecode with ``interpreter``)."""
    packages = out / "python"
    done = subprocess.run(pip_command(requirements, version, packages), capture_output=True, text=True,
                          timeout=PIP_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not build the layer of {', '.join(requirements)} for Lambda's Python "
                           f"{version}: {done.stderr.strip()[-2000:]}")
    shutil.rmtree(packages / "bin", ignore_errors=True)  # the packages' command-line scripts: nothing runs them
    if interpreter is not None:
        subprocess.run([interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        "-s", str(out), "-p", "/opt", str(packages)], check=True, capture_output=True, text=True,
                       timeout=PIP_TIMEOUT)


def cached(name: str, version: str, interpreter: str | None, cache: Path = CACHE) -> Path:
    """The built layer ``name`` for Python ``version`` from the cache, built first when it is not there."""
    requirements = REQUIREMENTS[name]
    folder = cache / f"{name}-{digest(requirements, version, interpreter)[:16]}"
    if not (folder / "python").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=cache))
        try:
            build(requirements, version, interpreter, building)
            try:
                building.rename(folder)
            except OSError:  # another synth built it meanwhile
                pass
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return folder


@jsii.implements(ILocalBundling)
class CachedLayer:
    """Copies a built layer (``cached``) into the asset's output folder, on this machine (no Docker)."""

    def __init__(self, name: str, version: str, interpreter: str | None) -> None:
        self.name, self.version, self.interpreter = name, version, interpreter

    def try_bundle(self, output_dir: str, *, image, **_options) -> bool:  # noqa: ANN001 (jsii's signature)
        shutil.copytree(cached(self.name, self.version, self.interpreter), output_dir, dirs_exist_ok=True)
        return True


def layer(scope: Construct, name: str, runtime: lambda_.Runtime, interpreter: str | None = None
          ) -> lambda_.LayerVersion:
    """The layer ``name`` (``REQUIREMENTS``) for ``runtime``, compiled when an interpreter of its version is at
    hand (``interpreter``, else this one or ``python3.X`` on the PATH: infra/code.py)."""
    version = runtime.name.removeprefix("python")
    python = code.bytecode_interpreter(version, interpreter)
    asset = lambda_.Code.from_asset(
        str(code.ROOT / "infra"),  # not read: the bundling makes the asset (CDK wants a folder all the same)
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=digest(REQUIREMENTS[name], version, python),
        bundling=BundlingOptions(image=DockerImage.from_registry(f"treue-layer-{name}"),
                                 local=CachedLayer(name, version, python)),
    )
    return lambda_.LayerVersion(scope, f"{name.capitalize()}Layer", code=asset, compatible_runtimes=[runtime],
                                compatible_architectures=[lambda_.Architecture.X86_64],
                                description=DESCRIPTIONS[name])
