"""The twin's function workers: an execution environment whose init is slow or timed out."""

import os
import signal
import sys
import time
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


EXPECTING_HANDLER = '''
class OutOfStock(Exception):
    pass


def handler(event, context):
    if event.get("stock") == 0:
        raise OutOfStock("no cards of 2000 EUR in stock")
    raise KeyError("a bug")
'''


def _pool(tmp_path, monkeypatch, source: str, **kw) -> tuple[workers.FunctionPool, str]:
    module = f"handler_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = SimpleNamespace(handler=f"{module}.handler", name="fn", memory=128, timeout=10)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return workers.FunctionPool(spec, env, str(tmp_path / "fn.log"), concurrency=1, **kw), module


def test_an_error_the_workflow_expects_is_one_log_line_any_other_a_traceback(tmp_path, monkeypatch):
    pool, module = _pool(tmp_path, monkeypatch, EXPECTING_HANDLER, expected_errors=frozenset({"OutOfStock"}))
    log = tmp_path / "fn.log"
    try:
        failed = pool.invoke({"stock": 0})
        assert (failed.ok, failed.error_type) == (False, "OutOfStock")
        assert log.read_text() == "[ERROR] OutOfStock: no cards of 2000 EUR in stock\n"
        broken = pool.invoke({"stock": 1})
        assert (broken.ok, broken.error_type) == (False, "KeyError")
        assert "Traceback" in log.read_text() and "KeyError: 'a bug'" in log.read_text()
    finally:
        pool.stop()
        sys.modules.pop(module, None)


ECHO_HANDLER = '''
import os
import time

time.sleep(float(os.environ.get("INIT_SECONDS", "0")))


def handler(event, context):
    return {"pid": os.getpid()}
'''


def test_ctrl_c_reaches_no_worker_not_even_one_still_starting(tmp_path, monkeypatch, capfd):
    """A terminal's Ctrl-C goes to the whole process group: the twin stops its workers itself."""
    pool, module = _pool(tmp_path, monkeypatch, ECHO_HANDLER)
    pool.env["INIT_SECONDS"] = "1"
    try:
        worker = pool._acquire()  # a new environment; the SIGINT comes while its interpreter starts up
        os.kill(worker.process.pid, signal.SIGINT)
        time.sleep(0.3)
        os.kill(worker.process.pid, signal.SIGINT)  # and again while it imports the handler
        pool._idle.put(worker)
        answered = pool.invoke({})
        assert answered.ok and answered.result["pid"] == worker.process.pid, answered
        os.kill(worker.process.pid, signal.SIGINT)  # and once it is warm
        assert pool.invoke({}).result["pid"] == worker.process.pid
    finally:
        pool.stop()
        sys.modules.pop(module, None)
    assert "KeyboardInterrupt" not in capfd.readouterr().err
    assert "KeyboardInterrupt" not in (tmp_path / "fn.log").read_text()


def test_a_stopped_pool_stops_its_workers_and_starts_no_new_one(tmp_path, monkeypatch):
    pool, module = _pool(tmp_path, monkeypatch, ECHO_HANDLER)
    try:
        assert pool.invoke({}).ok
        started = time.monotonic()
        pool.stop(wait=2)
        assert time.monotonic() - started < 5
        assert not any(w.alive for w in pool._all)
        refused = pool.invoke({})
        assert (refused.ok, refused.error_type) == (False, "Runtime.Stopped")
        assert len(pool._all) == 1  # no new environment was started for it
    finally:
        pool.stop()
        sys.modules.pop(module, None)
