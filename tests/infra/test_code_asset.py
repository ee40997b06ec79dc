"""The functions' code asset (infra/code.py): what it carries, and bytecode of the runtime's Python when synth
has that Python, read by Lambda without compiling or even reading the sources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra import code

ROOT = Path(__file__).resolve().parents[2]
LOCAL = f"{sys.version_info[0]}.{sys.version_info[1]}"
TAG = sys.implementation.cache_tag  # cpython-311 here


def assets(template_path: Path) -> dict[str, Path]:
    """Function logical id → its asset folder next to the template."""
    template = json.loads(template_path.read_text())
    return {lid: template_path.parent / f"asset.{r['Properties']['Code']['S3Key'].split('.')[0]}"
            for lid, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
            and "S3Key" in r["Properties"].get("Code", {})}


def files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("path", "left_out"), [
    ("treue/handlers/orders.py", False),
    ("treue/handlers/__pycache__/orders.cpython-311.pyc", True),
    ("treue/core/money.pyc", True),
    (".mypy_cache/3.11/treue/x.json", True),
    ("treue/.mypy_cache/x.json", True),
    ("treue.egg-info/PKG-INFO", True),
    ("treue/cli.py", True),
    ("treue/client.py", True),
    ("treue/store/clients.py", False),  # a name like a left-out file, elsewhere
    ("treue/openapi.py", True),
    ("treue/static/swagger-ui.css", False),  # only with DOCS_ONLY
])
def test_the_exclude_list_reads_as_the_asset_reads_it(path, left_out):
    assert code.excluded(path, code.EXCLUDE) is left_out
    assert code.excluded("treue/static/swagger-ui.css", code.EXCLUDE + code.DOCS_ONLY)
    assert code.excluded("treue/openapi.json", code.EXCLUDE + code.DOCS_ONLY)


def test_only_the_docs_function_carries_the_document_and_no_function_the_build_and_laptop_code(synthesized):
    by_function = assets(synthesized)
    docs = [lid for lid in by_function if lid.startswith("DocsFunction")]
    assert len(docs) == 1
    for lid, folder in by_function.items():
        carried = files(folder)
        assert not carried & {"treue/cli.py", "treue/client.py", "treue/openapi.py"}, lid
        assert ("treue/openapi.json" in carried) is (lid in docs), lid
        assert "treue/handlers/orders.py" in carried
        if code.bytecode_interpreter(code.PYTHON_VERSION) is None:  # this machine: no python3.13
            assert not any("__pycache__" in f for f in carried), lid


def test_the_compiled_asset_is_digested_by_its_sources_and_python(tmp_path):
    top = tmp_path / "functions"
    (top / "pkg").mkdir(parents=True)
    (top / "pkg" / "a.py").write_text("A = 1\n")
    (top / "pkg" / "cli.py").write_text("left out\n")
    first = code.digest(sys.executable, ("pkg/cli.py",), top)
    assert first == code.digest(sys.executable, ("pkg/cli.py",), top)
    (top / "pkg" / "cli.py").write_text("changed, still left out\n")
    assert code.digest(sys.executable, ("pkg/cli.py",), top) == first
    (top / "pkg" / "a.py").write_text("A = 2\n")
    assert code.digest(sys.executable, ("pkg/cli.py",), top) != first


def test_no_interpreter_of_another_version_compiles_the_asset():
    other = "3.99"
    assert code.bytecode_interpreter(other) is None
    assert code.bytecode_interpreter(other, sys.executable) is None  # named, but of another version
    assert code.bytecode_interpreter(LOCAL) == sys.executable
    with pytest.raises(ValueError):
        code.runtime("python3.13")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, synthesized) -> Path:
    """The stack synthesized for this machine's Python (cdk context python_version), so synth compiles."""
    outdir = tmp_path_factory.mktemp("compiled")
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps({"python_version": LOCAL}),
           "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    done = subprocess.run([sys.executable, "-m", "infra.app"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return outdir / "Treue.template.json"


def test_synth_with_the_runtimes_python_ships_unchecked_bytecode_of_every_module(compiled, synthesized):
    template = json.loads(compiled.read_text())
    functions = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
                 and "S3Key" in r["Properties"].get("Code", {})]
    assert {f["Runtime"] for f in functions} == {f"python{LOCAL}"}
    layers = {json.dumps(f["Layers"]) for f in functions}
    assert all(f"PowertoolsPythonV3-python{LOCAL.replace('.', '')}-" in layer for layer in layers)
    plain, built = assets(synthesized), assets(compiled)
    for lid, folder in built.items():
        carried = files(folder)
        sources = {f for f in carried if not f.endswith(".pyc")}
        assert sources == files(plain[lid]), lid  # the same files as the asset without bytecode
        for source in (f for f in sources if f.endswith(".py")):
            parent, _, name = source.rpartition("/")
            pyc = folder / parent / "__pycache__" / f"{name[:-3]}.{TAG}.pyc"
            header = pyc.read_bytes()[:16]
            # PEP 552 flags: bit 0 hash-based, bit 1 check the source; 1 = never compared with the source
            assert int.from_bytes(header[4:8], "little") == 1, source


def test_the_runtime_reads_the_bytecode_without_the_sources(compiled, tmp_path):
    folder = next(iter(assets(compiled).values()))
    task = tmp_path / "task"
    shutil.copytree(folder, task)
    # Lambda unpacks the asset with new file times, and a changed source is not even looked at: the module
    # is what was compiled at synth
    money = task / "treue" / "core" / "money.py"
    money.write_text("raise RuntimeError('the source was compiled instead of the bytecode')\n")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1",
           "AWS_DEFAULT_REGION": "eu-central-1", "TABLE_NAME": "t"}
    probe = ("import treue.core.money as m, treue.handlers.enrollment as h, sys\n"
             "print(m.__cached__.startswith(sys.argv[1]), callable(h.handler))\n")
    done = subprocess.run([sys.executable, "-c", probe, str(task)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]
