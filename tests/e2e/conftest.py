"""End-to-end: the local twin in its own process, built from a freshly synthesized template."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from treue.client import TreueClient

ROOT = Path(__file__).resolve().parents[2]


class Client:
    def __init__(self, state: dict, state_file: Path) -> None:
        self.state = state
        self.state_file = state_file
        self.url = state["url"]

    def key(self, scope: str) -> str:
        return self.state["api_keys"][scope]

    def api(self, key: str | None = "partner") -> TreueClient:
        """The API client (treue.client) with a scope's key, a key given as is, or none."""
        return TreueClient(self.url, self.key(key) if key in self.state["api_keys"] else key, timeout=30)

    def request(self, method, path, body=None, key="partner", headers=None, raw: bytes | None = None):
        """(status, headers, body) of one request as given, whatever the status: no retry (the tests look at
        429s and 503s themselves); the body is JSON, the text of CSV, or None when empty."""
        answer = self.api(key).send(method, path, body=body, raw=raw, headers=headers)
        return answer.status, dict(answer.headers), answer.body

    def run_schedule(self, synthesized: Path, handler: str, at) -> dict:
        """Invoke the function whose handler is ``handler`` (e.g. ``treue.handlers.tier_review.handler``) with the
        scheduled event its EventBridge rule would send at ``at``, and answer what it returned."""
        import boto3

        from treue.core import times

        template = json.loads(synthesized.read_text())
        (lid,) = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
                  and r["Properties"].get("Handler") == handler]
        client = boto3.client("lambda", endpoint_url=self.state["aws_endpoint"], region_name=self.state["region"],
                              aws_access_key_id="twin", aws_secret_access_key="twin")
        event = {"version": "0", "id": f"e2e-{at.timestamp()}", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012", "time": times.iso(at),
                 "region": self.state["region"], "resources": [], "detail": {}}
        answer = client.invoke(FunctionName=f"treue-{lid.lower()}", Payload=json.dumps(event).encode())
        assert "FunctionError" not in answer, answer
        return json.loads(answer["Payload"].read())

    def settled_order(self, order_id: str, key: str = "partner", seconds: float = 60) -> dict:
        """The order once its workflow ended it (COMPLETED or FAILED), or as it is after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            status, _, order = self.request("GET", f"/v1/orders/{order_id}", key=key)
            assert status == 200, order
            if order["status"] in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
                return order
            time.sleep(0.2)

    def sqs(self):
        import boto3

        return boto3.client("sqs", endpoint_url=self.state["aws_endpoint"], region_name=self.state["region"],
                            aws_access_key_id="twin", aws_secret_access_key="twin")

    def new_program(self, name: str, currency: str = "EUR", country: str | None = "DE") -> dict:
        """A new program of its own (``treue program create``): its id and keys, once the gateway lets its keys
        in. The twin's gateway, like API Gateway's usage plan, learns a new key within about a second: a
        request before that is a 403 ``program-not-enabled``."""
        extra = ("--country", country) if country else ()
        created = self.treue("program", "create", "--name", name, "--currency", currency, *extra)
        assert created.returncode == 0, created.stderr
        program = json.loads(created.stdout)
        deadline = time.monotonic() + 15
        while True:
            status, _, body = self.request("GET", "/v1/program", key=program["api_keys"]["partner"])
            if status == 200 or time.monotonic() > deadline:
                assert status == 200, body
                return program
            time.sleep(0.2)

    def program_apis(self, name: str) -> dict[str, TreueClient]:
        """A new program of its own (EUR in Germany) and an API client per scope of its keys: a test's members,
        rules and settings then touch no other test's."""
        return {scope: self.api(key) for scope, key in self.new_program(name)["api_keys"].items()}

    def treue(self, *args):
        return subprocess.run([sys.executable, "-m", "treue.cli", "--state", str(self.state_file), *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.fixture(scope="session")
def twin(synthesized, tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("twin")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions")}
    log = open(state_dir / "twin.out", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.twin", "--port", "0", "--template", str(synthesized),
         "--state-dir", str(state_dir), "--visibility-timeout", "1", "--webhook-retry-seconds", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    state_file = state_dir / "local.json"
    deadline = time.monotonic() + 120
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the twin did not start:\n" + (state_dir / "twin.out").read_text()[-4000:])
        time.sleep(0.2)
    yield Client(json.loads(state_file.read_text()), state_file)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    denied = state_dir / "logs" / "iam-denied.log"  # written by the function workers (infra/twin/iam.py)
    assert not denied.exists(), "calls the functions' roles do not allow, on the twin:\n" + denied.read_text()
