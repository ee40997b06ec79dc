"""Function workers: each Lambda function runs in its own processes, like execution environments.

A worker is a fresh interpreter (multiprocessing "spawn") whose environment is exactly what the
template gives the function, plus what the Lambda runtime sets and the AWS endpoint of the twin.
It imports the handler once (cold start) and then serves invocations one at a time.

Workers ignore Ctrl-C (SIGINT reaches the whole process group of a terminal): the twin stops them. They
start with SIGINT and SIGTERM blocked, so not even an interpreter that is still starting up sees one.

An error the workflows expect (``expected_errors``: out of stock, a rejected order, an authorizer's
``Unauthorized``) is one ``[ERROR] Name: message`` line in the function's log; any other error is
logged with its traceback.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from multiprocessing import resource_tracker
from typing import Any

_spawn = mp.get_context("spawn")
INIT_SECONDS = 60  # a worker not ready by then fails its invocation and is discarded
DENIED_LOG = "iam-denied.log"  # next to the function logs: every call a function's role did not allow
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


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
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the twin's to handle: it stops its workers
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked while starting (see _Worker)
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
            message = None
        if message is None:  # stopped (or the twin is gone): exit at once, as an environment is shut down
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        event, request_id = message
        ctx = _Context(meta["name"], meta["memory"], meta["timeout"], request_id)
        try:
            result = handler(event, ctx)
            conn.send(("ok", result))
        except Exception as err:
            # an authorizer's ordinary 401 (the documented way to say it) and the failures a workflow
            # expects by name: one line, as the first line Lambda logs; anything else with its traceback
            if str(err) == "Unauthorized" or type(err).__name__ in meta.get("expected_errors", ()):
                print(f"[ERROR] {type(err).__name__}: {err}", flush=True)
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
    def __init__(self, spec, env: dict[str, str], log_path: str, policy=None,
                 expected_errors: frozenset[str] = frozenset()) -> None:
        self.spec = spec
        parent, child = _spawn.Pipe()
        self.conn = parent
        self.process = _spawn.Process(
            target=_worker_main,
            args=(spec.handler, env, log_path, child,
                  {"name": spec.name, "memory": spec.memory, "timeout": spec.timeout, "policy": policy,
                   "expected_errors": expected_errors}),
            daemon=True,
            name=f"fn-{spec.name}",
        )
        # the new interpreter inherits this thread's signal mask: blocked, a Ctrl-C that comes while it
        # starts up waits until _worker_main ignores it (no KeyboardInterrupt traceback from a starting worker).
        # multiprocessing's resource tracker is started first: starting it unblocks both signals.
        resource_tracker.ensure_running()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        child.close()
        self.ready: tuple[str, Any] | None = None

    def wait_ready(self, final: bool = True) -> None:
        if self.ready is None:
            try:
                if self.conn.poll(INIT_SECONDS):
                    self.ready = self.conn.recv()
                elif final:  # not final: still starting (a loaded machine); the first invocation waits again
                    self.ready = ("init-error", {"errorType": "InitTimeout",
                                                 "errorMessage": f"init took over {INIT_SECONDS} s"})
            except (EOFError, OSError):  # the process ended while starting (stopped, or it crashed)
                self.ready = ("init-error", {"errorType": "Runtime.ExitError",
                                             "errorMessage": "the environment exited during init"})

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

    def request_stop(self) -> None:
        """Ask the worker to exit after the invocation it may be running."""
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass

    def stop(self, kill: bool = False, wait: float = 2) -> None:
        if not kill:
            self.request_stop()
            self.process.join(wait)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2)


class FunctionPool:
    """Up to ``concurrency`` warm workers of one function; new ones start (cold) on demand."""

    def __init__(self, spec, env: dict[str, str], log_path: str, concurrency: int = 2, policy=None,
                 expected_errors: frozenset[str] = frozenset()) -> None:
        self.spec = spec
        self.env = env
        self.policy = policy  # the function's role statements, resolved (infra.twin.iam.FunctionPolicy)
        self.expected_errors = frozenset(expected_errors)  # error names logged as one line, no traceback
        self.log_path = log_path
        self.concurrency = concurrency
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._count = 0
        self._lock = threading.Lock()
        self._all: list[_Worker] = []
        self.closed = False  # stopped: no new workers, invocations fail

    def prestart(self) -> None:
        with self._lock:
            if self.closed:
                return
            self._count += 1
            w = self._new()
        w.wait_ready(final=False)
        self._idle.put(w)

    def _new(self) -> _Worker:
        w = _Worker(self.spec, self.env, self.log_path, self.policy, self.expected_errors)
        self._all.append(w)
        return w

    def _acquire(self) -> _Worker | None:
        if self.closed:
            return None
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self.closed:
                return None
            if self._count < self.concurrency:
                self._count += 1
                return self._new()
        return self._idle.get()

    def invoke(self, event: dict[str, Any]) -> Invocation:
        worker = self._acquire()
        if worker is None:
            return Invocation(False, error_type="Runtime.Stopped", error_message="the twin is stopping")
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

    def begin_stop(self) -> None:
        """No new workers; every worker is asked to exit (after the invocation it may be running)."""
        with self._lock:
            self.closed = True
            workers = list(self._all)
        for w in workers:
            w.request_stop()

    def stop(self, wait: float = 2) -> None:
        """Stop every worker: those not gone within ``wait`` seconds (all of them together) are killed."""
        self.begin_stop()
        deadline = time.monotonic() + wait
        for w in list(self._all):
            w.process.join(max(0.0, deadline - time.monotonic()))
            w.stop(kill=True)
