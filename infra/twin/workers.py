"""Function workers: each Lambda function runs in its own processes, like execution environments.

A worker is a fresh interpreter (multiprocessing "spawn") whose environment is exactly what the
template gives the function, plus what the Lambda runtime sets and the AWS endpoint of the twin.
It imports the handler once (cold start) and then serves invocations one at a time.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

_spawn = mp.get_context("spawn")
INIT_SECONDS = 60  # a worker not ready by then fails its invocation and is discarded
DENIED_LOG = "iam-denied.log"  # next to the function logs: every call a function's role did not allow


class _Context:
    def __init__(self, name: str, memory: int, timeout: int, request_id: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory
        self.invoked_function_arn = f"arn:aws:lambda:eu-central-1:123456789012:function:{name}"
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "twin"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _worker_main(handler_path: str, env: dict[str, str], log_path: str, conn, meta: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if meta.get("policy") is not None:  # every AWS call is checked against the function's role, as on AWS
        from infra.twin import iam

        denied_log = os.path.join(os.path.dirname(log_path), DENIED_LOG)

        def note(denial) -> None:  # one file for the whole twin: the e2e suite asserts it stays empty
            with open(denied_log, "a") as f:
                f.write(f"{denial}\n")

        iam.install(iam.Enforcer(iam.already_resolved, function=meta["policy"], on_denial=note))
    module_name, _, func_name = handler_path.rpartition(".")
    try:
        import importlib

        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as err:  # an init error fails every invocation, as on Lambda
        conn.send(("init-error", {"errorType": type(err).__name__, "errorMessage": str(err)}))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        event, request_id = message
        ctx = _Context(meta["name"], meta["memory"], meta["timeout"], request_id)
        try:
            result = handler(event, ctx)
            conn.send(("ok", result))
        except Exception as err:
            if str(err) == "Unauthorized":  # an authorizer's ordinary 401 (the documented way to say it): one line
                print(f"[ERROR] {type(err).__name__}: Unauthorized", flush=True)
            else:
                traceback.print_exc()
            conn.send(("error", {"errorType": type(err).__name__, "errorMessage": str(err)}))


@dataclass
class Invocation:
    ok: bool
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0


class _Worker:
    def __init__(self, spec, env: dict[str, str], log_path: str, policy=None) -> None:
        self.spec = spec
        parent, child = _spawn.Pipe()
        self.conn = parent
        self.process = _spawn.Process(
            target=_worker_main,
            args=(spec.handler, env, log_path, child,
                  {"name": spec.name, "memory": spec.memory, "timeout": spec.timeout, "policy": policy}),
            daemon=True,
            name=f"fn-{spec.name}",
        )
        self.process.start()
        child.close()
        self.ready: tuple[str, Any] | None = None

    def wait_ready(self, final: bool = True) -> None:
        if self.ready is None:
            if self.conn.poll(INIT_SECONDS):
                self.ready = self.conn.recv()
            elif final:  # not final: still starting (a loaded machine); the first invocation waits again
                self.ready = ("init-error", {"errorType": "InitTimeout",
                                             "errorMessage": f"init took over {INIT_SECONDS} s"})

    def invoke(self, event: dict[str, Any], timeout: float) -> Invocation:
        self.wait_ready()
        if self.ready[0] != "ready":  # as on Lambda, a failed init discards the environment: the next is fresh
            self.stop(kill=True)
            return Invocation(False, error_type=self.ready[1]["errorType"], error_message=self.ready[1]["errorMessage"])
        start = time.perf_counter()
        self.conn.send((event, str(uuid.uuid4())))
        if not self.conn.poll(timeout):
            self.stop(kill=True)
            return Invocation(False, error_type="Timeout", error_message=f"timed out after {timeout} s")
        status, payload = self.conn.recv()
        ms = (time.perf_counter() - start) * 1000
        if status == "ok":
            return Invocation(True, result=payload, duration_ms=ms)
        return Invocation(False, error_type=payload["errorType"], error_message=payload["errorMessage"], duration_ms=ms)

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self, kill: bool = False) -> None:
        try:
            if not kill:
                self.conn.send(None)
                self.process.join(2)
        except (BrokenPipeError, OSError):
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2)


class FunctionPool:
    """Up to ``concurrency`` warm workers of one function; new ones start (cold) on demand."""

    def __init__(self, spec, env: dict[str, str], log_path: str, concurrency: int = 2, policy=None) -> None:
        self.spec = spec
        self.env = env
        self.policy = policy  # the function's role statements, resolved (infra.twin.iam.FunctionPolicy)
        self.log_path = log_path
        self.concurrency = concurrency
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._count = 0
        self._lock = threading.Lock()
        self._all: list[_Worker] = []

    def prestart(self) -> None:
        with self._lock:
            self._count += 1
        w = self._new()
        w.wait_ready(final=False)
        self._idle.put(w)

    def _new(self) -> _Worker:
        w = _Worker(self.spec, self.env, self.log_path, self.policy)
        self._all.append(w)
        return w

    def _acquire(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._count < self.concurrency:
                self._count += 1
                return self._new()
        return self._idle.get()

    def invoke(self, event: dict[str, Any]) -> Invocation:
        worker = self._acquire()
        try:
            result = worker.invoke(event, self.spec.timeout)
        except (EOFError, BrokenPipeError, OSError) as err:
            worker.stop(kill=True)
            result = Invocation(False, error_type="Runtime.ExitError", error_message=str(err))
        if worker.alive:
            self._idle.put(worker)
        else:
            with self._lock:
                self._count -= 1
        return result

    def stop(self) -> None:
        for w in self._all:
            w.stop()
