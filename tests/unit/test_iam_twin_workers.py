"""The twin's function workers check their own AWS calls against the function's role (infra/twin/iam.py):
a call the role does not allow fails in the worker as on AWS and is written to logs/iam-denied.log."""

import os
from types import SimpleNamespace

from infra.twin import iam, workers

PROBE = '''
import boto3


def handler(event, context):
    ddb = boto3.client("dynamodb", region_name="eu-central-1", endpoint_url="http://127.0.0.1:9",
                       aws_access_key_id="x", aws_secret_access_key="x")
    try:
        ddb.put_item(TableName="treue-t", Item={"pk": {"S": "a"}, "sk": {"S": "b"}})
    except Exception as err:  # swallowed, as careless code would: the denial log still shows it
        return {"error": type(err).__name__, "code": getattr(err, "response", {}).get("Error", {}).get("Code")}
    return {"error": None}
'''
TABLE = "arn:aws:dynamodb:eu-central-1:123456789012:table/treue-t"


def run_probe(tmp_path, monkeypatch, actions):
    module = f"iam_probe_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module}.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers start with this process's sys.path
    logs = tmp_path / "logs"
    logs.mkdir()
    policy = iam.FunctionPolicy("ProbeFunction", f"{module}.handler", "ProbeRole",
                                [{"Effect": "Allow", "Action": actions, "Resource": TABLE}], {})
    spec = SimpleNamespace(handler=f"{module}.handler", name="probe", memory=128, timeout=20)
    pool = workers.FunctionPool(spec, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, str(logs / "probe.log"),
                                concurrency=1, policy=policy)
    try:
        return pool.invoke({}), logs / workers.DENIED_LOG
    finally:
        pool.stop()


def test_a_worker_refuses_what_its_role_does_not_allow_and_logs_it(tmp_path, monkeypatch):
    result, denied = run_probe(tmp_path, monkeypatch, ["dynamodb:GetItem"])
    assert result.ok and result.result == {"error": "ClientError", "code": "AccessDeniedException"}
    assert denied.read_text() == f"ProbeFunction may not dynamodb:PutItem on {TABLE} (no statement of its role " \
                                 "allows it)\n"


def test_a_worker_lets_through_what_its_role_allows(tmp_path, monkeypatch):
    result, denied = run_probe(tmp_path, monkeypatch, ["dynamodb:PutItem"])
    # allowed, so the call is sent and fails only for want of a server at that address
    assert result.ok and result.result["error"] == "EndpointConnectionError"
    assert not denied.exists()
