import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "functions"))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Treue")

import hashlib  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

from infra.twin import iam  # noqa: E402

# Every boto3 call made while a function's handler runs in this process is checked against that
# function's role from the synthesized template (tests/integration/conftest.py says which function
# runs). Installed before any botocore session exists, so every session carries the check.
ENFORCER = iam.Enforcer(iam.from_environment)
iam.install(ENFORCER)


KEEP_SYNTHS = 4


def _synth_inputs_digest() -> str:
    """A digest of everything the synthesized template is made from."""
    digest = hashlib.sha256()
    files = [ROOT / "cdk.json", ROOT / "pyproject.toml"]
    for folder in ("infra", "functions"):
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".json")
                        and "__pycache__" not in p.parts)
    files += sorted(p for p in (ROOT / "functions" / "treue" / "static").glob("*") if p.is_file())  # Swagger UI
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def synthesized() -> Path:
    """Synthesize the CDK app once per session (cdk-nag runs and fails synth on any finding); a template
    synthesized from the same sources before is reused (.treue/synth/<digest of infra/ and functions/>)."""
    outdir = ROOT / ".treue" / "synth" / _synth_inputs_digest()
    template = outdir / "Treue.template.json"
    if template.exists():
        return template
    building = outdir.with_name(outdir.name + f".{os.getpid()}")
    env = {**os.environ, "CDK_OUTDIR": str(building)}
    done = subprocess.run(
        [sys.executable, "-m", "infra.app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    try:
        building.rename(outdir)
    except OSError:  # another session synthesized the same sources meanwhile
        shutil.rmtree(building, ignore_errors=True)
    kept = sorted((p for p in outdir.parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in kept[:-KEEP_SYNTHS]:  # templates of sources long gone
        shutil.rmtree(old, ignore_errors=True)
    return template
