"""The twin's function workers: an execution environment whose init is slow or timed out."""

import os
import sys
from types import SimpleNamespace

import pytest

from infra.twin import workers

SLOW_HANDLER = '''
import os
import time

MARKER = os.environ["SLOW_START_MARKER"]
if os.path.exists(MARKER):  # only the first environment that starts is slow
    os.remove(MARKER)
    time.sleep(float(os.environ["SLOW_START_SECONDS"]))


def handler(event, context):
    return {"pid": os.getpid(), "echo": event}
'''


@pytest.fixture
def slow_pool(tmp_path, monkeypatch):
    module = f"slow_start_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module}.py").write_text(SLOW_HANDLER)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers start with this process's sys.path
    monkeypatch.setattr(workers, "INIT_SECONDS", 5)
    marker = tmp_path / "first-start-is-slow"
    marker.touch()
    pools = []

    def make(slow_seconds: float) -> workers.FunctionPool:
        spec = SimpleNamespace(handler=f"{module}.handler", name="slow-start", memory=128, timeout=10)
        env = {"SLOW_START_MARKER": str(marker), "SLOW_START_SECONDS": str(slow_seconds),
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        pool = workers.FunctionPool(spec, env, str(tmp_path / "slow-start.log"), concurrency=1)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop()
    sys.modules.pop(module, None)


def test_an_environment_whose_init_timed_out_is_replaced_by_a_fresh_one(slow_pool):
    pool = slow_pool(slow_seconds=12)  # over INIT_SECONDS (5)
    first = pool.invoke({"n": 1})
    assert (first.ok, first.error_type) == (False, "InitTimeout")
    second = pool.invoke({"n": 2})  # a new environment, not the timed-out one again
    assert second.ok and second.result["echo"] == {"n": 2}, second


def test_a_prestarted_environment_that_starts_slowly_is_awaited_not_failed(slow_pool):
    pool = slow_pool(slow_seconds=7)  # over INIT_SECONDS at prestart, within it at the first invocation
    pool.prestart()
    first = pool.invoke({"n": 1})
    assert first.ok and first.result["echo"] == {"n": 1}, first


DENYING_HANDLER = '''
def handler(event, context):
    if event.get("key") == "unknown":
        raise Exception("Unauthorized")  # how a Lambda authorizer answers 401
    raise ValueError("the authorizer broke")
'''


def test_an_authorizers_401_is_one_log_line_a_fault_a_traceback(tmp_path, monkeypatch):
    module = f"denying_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module}.py").write_text(DENYING_HANDLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    log = tmp_path / "authorizer.log"
    spec = SimpleNamespace(handler=f"{module}.handler", name="authorizer", memory=128, timeout=10)
    pool = workers.FunctionPool(spec, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, str(log), concurrency=1)
    try:
        denied = pool.invoke({"key": "unknown"})
        assert (denied.ok, denied.error_message) == (False, "Unauthorized")
        assert log.read_text() == "[ERROR] Exception: Unauthorized\n"
        broken = pool.invoke({"key": "other"})
        assert (broken.ok, broken.error_type) == (False, "ValueError")
        assert "Traceback" in log.read_text() and "the authorizer broke" in log.read_text()
    finally:
        pool.stop()
        sys.modules.pop(module, None)
