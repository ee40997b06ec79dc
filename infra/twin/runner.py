"""Start the twin: moto as the AWS endpoint, resources and functions from the template, the gateway,
queue pollers and a seeded demo program; ``.treue/local.json`` tells clients where it all is."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from infra.twin import iam
from infra.twin.gateway import BACKLOG, Gateway, UsageLimits
from infra.twin.lambdas import (
    MOTO_CONFIG,
    ExecutionEnd,
    definition,
    error_names,
    quiet_expected_failures,
    report_execution_ends,
    route_lambda_invocations,
)
from infra.twin.pollers import MotoStreamReader, QueuePoller, Scheduler, StreamPoller
from infra.twin.serialize import serialize_moto_dynamodb
from infra.twin.template import ACCOUNT, REGION, Model, Resolver, load
from infra.twin.workers import DENIED_LOG, FunctionPool

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "twin", "AWS_SECRET_ACCESS_KEY": "twin"}
# The demo program (EUR, Germany) also offers rewards in these currencies, at fixed demo rates
# (EUR minor units per million minor units); a real program sets its own.
DEMO_EXCHANGE_RATES = {"USD": 920_000, "GBP": 1_170_000, "CHF": 1_060_000, "SEK": 87_000}
# The demo program's opening budget per currency, minor units (5,000.00 each)
DEMO_BUDGET = {"EUR": 500_000, "USD": 500_000, "GBP": 500_000, "CHF": 500_000, "SEK": 500_000}


_CDK_HASH = re.compile(r"(?<=[a-z0-9])[0-9A-F]{8}$")  # the hash CDK appends to a construct's logical id
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# files of the logs folder that are not a function's
OWN_LOGS = ("access.log", DENIED_LOG, "workflows.log")


def readable_name(logical_id: str, kind: str = "Function") -> str:
    """A resource's logical id as a short kebab-case name: without CDK's hash and the trailing kind,
    ``OrdersFunction520DBA95`` → ``orders``, ``PayoutIssueGiftCardFunction16EEB7D5`` →
    ``payout-issue-gift-card``, ``PayoutStateMachine0B4DD8AB`` (kind ``StateMachine``) → ``payout``."""
    base = _CDK_HASH.sub("", logical_id)
    if base.endswith(kind) and len(base) > len(kind):
        base = base[: -len(kind)]
    return "-".join(word.lower() for word in _WORDS.findall(base)) or logical_id.lower()


def log_names(logical_ids, taken=OWN_LOGS) -> dict[str, str]:
    """Each function's log file name (``orders.log``), unique: a name already taken (by another
    function, in logical id order, or by the twin's own logs) gets ``-2``, ``-3``… appended."""
    used = set(taken)
    names = {}
    for lid in sorted(logical_ids):
        base = readable_name(lid)
        name, n = f"{base}.log", 2
        while name in used:
            name, n = f"{base}-{n}.log", n + 1
        used.add(name)
        names[lid] = name
    return names


class TwinStopped(Exception):
    """Stopped (Ctrl-C) while starting."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _queue_attributes(props: dict[str, Any], resolver: Resolver, visibility: int | None) -> dict[str, str]:
    attrs = {}
    for name in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
        if name in props:
            attrs[name] = str(props[name])
    if visibility is not None:
        attrs["VisibilityTimeout"] = str(visibility)
    if "RedrivePolicy" in props:
        attrs["RedrivePolicy"] = json.dumps(resolver.resolve(props["RedrivePolicy"]))
    return attrs


class Twin:
    def __init__(
        self,
        template: str | Path,
        port: int = 3000,
        state_dir: str | Path = ".treue",
        aws_port: int | None = None,
        concurrency: int = 2,
        visibility_timeout: int | None = None,
        seed: bool = True,
        schedule_seconds: float = 5,
        webhook_retry_seconds: int | None = None,
        demo_seed: str | None = None,
    ) -> None:
        self.model: Model = load(template)
        self.port = port or free_port()
        self.aws_port = aws_port or free_port()
        self.state_dir = Path(state_dir)
        self.concurrency = concurrency
        self.visibility_timeout = visibility_timeout
        self.seed = seed
        # the demo program's id, key ids and keys from this word (the same on every start), else random
        self.demo_seed = demo_seed or None
        self.schedule_seconds = schedule_seconds  # schedules run at most this far apart locally
        self.schedulers: list[Scheduler] = []
        # What differs locally, set only where the template defines the variable: webhooks may go to
        # 127.0.0.1 (the demo's receiver), and retries may come quicker than the deployed 30 s base.
        self.env_overrides = {"ALLOW_LOCAL_WEBHOOKS": "true"}
        if webhook_retry_seconds:
            self.env_overrides["WEBHOOK_RETRY_BASE_SECONDS"] = str(webhook_retry_seconds)
        self.url = f"http://127.0.0.1:{self.port}"
        self.aws_endpoint = f"http://127.0.0.1:{self.aws_port}"
        self.pools: dict[str, FunctionPool] = {}
        self.pollers: list[QueuePoller | StreamPoller] = []
        self.state: dict[str, Any] = {}
        self.stopping = threading.Event()  # set by Ctrl-C: a start in progress gives up at its next step
        self.expected_errors: frozenset[str] = frozenset()
        self.failure_reasons: dict[str, str] = {}
        self._print_lock = threading.Lock()

    usage_plan_id: str | None = None

    def _usage_limits(self):
        """The template's usage plan, made in moto (programs get their keys there, as deployed) and
        enforced by the gateway per usage identifier; None when the template has none."""
        plan = self.model.usage_plan
        if plan is None:
            return None
        self.usage_plan_id = self.client("apigateway").create_usage_plan(
            name=plan["name"], throttle={"rateLimit": plan["rate"], "burstLimit": plan["burst"]})["id"]
        enrolled: dict[str, Any] = {"at": 0.0, "values": set()}
        lock = threading.Lock()

        def keys() -> set[str]:  # read from moto at most once a second (API Gateway caches keys too)
            with lock:
                if time.monotonic() - enrolled["at"] > 1.0:
                    enrolled["values"] = self._usage_plan().enrolled()
                    enrolled["at"] = time.monotonic()
                return enrolled["values"]

        return UsageLimits(plan["rate"], plan["burst"], keys)

    def _usage_plan(self):
        if self.usage_plan_id is None:
            return None
        sys.path.insert(0, str(FUNCTIONS_DIR))
        from treue.store.usage_plans import UsagePlan

        return UsagePlan(self.usage_plan_id, self.client("apigateway"))

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.aws_endpoint, region_name=REGION,
                            aws_access_key_id="twin", aws_secret_access_key="twin")

    # ------------------------------------------------------------ lifecycle

    def _check_stopping(self) -> None:
        if self.stopping.is_set():
            raise TwinStopped()

    def start(self) -> dict[str, Any]:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        with socket.socket() as probe:  # fail before starting anything when the port is taken
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError as err:
                raise SystemExit(f"port {self.port} is in use (another twin?); set PORT to use another") from err
        self._fresh_logs()  # after the port check: a second twin on a taken port leaves the first one's logs
        from moto.core.config import default_user_config

        serialize_moto_dynamodb()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        os.environ["MOTO_PORT"] = str(self.aws_port)  # moto's ASL interpreter calls back on this port
        for service, config in MOTO_CONFIG.items():  # execute state machines; Lambda without Docker
            default_user_config.setdefault(service, {}).update(config)
        from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

        # keep-alive: botocore reuses its connections (HTTP/1.0 would open a connection and a server
        # thread per call; a batch line makes ~17 calls)
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        # the AWS endpoint takes as many waiting connections as the gateway (werkzeug's default is 128)
        ThreadedWSGIServer.request_queue_size = BACKLOG
        self._expect_workflow_failures()
        self._check_stopping()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        self.moto.start()
        resolver = Resolver(self.model, self.url)
        self._create_tables()
        self._create_queues(resolver)
        self._create_keys()
        self._create_buckets()
        self._create_state_machines(resolver)  # task ARNs are names, known before the workers start
        self._check_stopping()
        self._start_functions(resolver)
        self._check_stopping()
        route_lambda_invocations(self._invoke)
        report_execution_ends(self._report_execution)
        self.gateway = Gateway(self.model.routes, self.pools, self.model.gateway_responses,
                               access_log=self.logs_dir / "access.log")
        self.gateway.usage = self._usage_limits()
        self.gateway.binary_media_types = self.model.binary_media_types
        self.gateway.serve("127.0.0.1", self.port)
        sqs = self.client("sqs")
        for m in self.model.mappings:
            q = self.model.queues[m.queue]
            poller = QueuePoller(sqs, q.url, q.arn, self.pools[m.function], m.batch_size, m.report_batch_item_failures)
            poller.start()
            self.pollers.append(poller)
        ddb, streams = self.client("dynamodb"), self.client("dynamodbstreams")
        for m in self.model.streams:
            arn = ddb.describe_table(TableName=self.model.tables[m.table].name)["Table"]["LatestStreamArn"]
            reader = MotoStreamReader(self.model.tables[m.table].name, ACCOUNT, REGION)  # moto runs in this process
            poller = StreamPoller(streams, arn, self.pools[m.function], m.batch_size, m.report_batch_item_failures,
                                  m.patterns, reader)
            poller.start()
            self.pollers.append(poller)
        for schedule in self.model.schedules:
            scheduler = Scheduler(schedule.rule, self.pools[schedule.function],
                                  min(schedule.seconds, self.schedule_seconds))
            scheduler.start()
            self.schedulers.append(scheduler)
        self._check_stopping()
        self.state = self._describe(resolver)
        self.state["catalog"] = self.load_catalog()
        if self.seed:
            self.state.update(self.seed_program("Demo Café", "EUR", self.demo_seed))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "local.json").write_text(json.dumps(self.state, indent=2) + "\n")
        return self.state

    def stop(self) -> None:
        self.stopping.set()  # no more execution reports: work in flight is dropped with the in-memory data
        for p in [*self.pollers, *self.schedulers]:
            p.stop()
        if getattr(self, "gateway", None) and self.gateway.server:
            self.gateway.server.shutdown()
        pools = list(self.pools.values())
        for pool in pools:  # every worker is asked at once; those not gone within 2 s in all are killed
            pool.begin_stop()
        deadline = time.monotonic() + 2
        for pool in pools:
            pool.stop(wait=max(0.0, deadline - time.monotonic()))
        logging.getLogger("moto").setLevel(logging.CRITICAL)  # tasks of executions in flight fail now
        if getattr(self, "moto", None):
            self.moto.stop()
        state_file = self.state_dir / "local.json"
        if self.state.get("program_id") and state_file.exists():
            if json.loads(state_file.read_text()).get("started_at") == self.state.get("started_at"):
                state_file.unlink()

    # ------------------------------------------------------------ resources

    def _create_tables(self) -> None:
        ddb = self.client("dynamodb")
        for spec in self.model.tables.values():
            p = spec.properties
            args: dict[str, Any] = {
                "TableName": spec.name,
                "KeySchema": p["KeySchema"],
                "AttributeDefinitions": p["AttributeDefinitions"],
                "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if p.get("GlobalSecondaryIndexes"):
                args["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
            if (p.get("StreamSpecification") or {}).get("StreamViewType"):
                args["StreamSpecification"] = {"StreamEnabled": True,
                                               "StreamViewType": p["StreamSpecification"]["StreamViewType"]}
            ddb.create_table(**args)
            ttl = p.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                ddb.update_time_to_live(
                    TableName=spec.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )

    def _create_keys(self) -> None:
        kms = self.client("kms")
        for spec in self.model.keys.values():
            args = {"Description": spec.properties.get("Description", spec.logical_id)}
            for name in ("KeySpec", "KeyUsage"):
                if name in spec.properties:
                    args[name] = spec.properties[name]
            meta = kms.create_key(**args)["KeyMetadata"]
            spec.key_id, spec.arn = meta["KeyId"], meta["Arn"]

    def _create_buckets(self) -> None:
        s3 = self.client("s3")
        for spec in self.model.buckets.values():
            s3.create_bucket(Bucket=spec.name, CreateBucketConfiguration={"LocationConstraint": REGION})

    def _create_state_machines(self, resolver: Resolver) -> None:
        sfn = self.client("stepfunctions")
        for spec in self.model.state_machines.values():
            subs = {k: str(resolver.resolve(v)) for k, v in spec.substitutions.items()}
            spec.arn = sfn.create_state_machine(
                name=spec.name, definition=definition(spec.definition, subs),
                roleArn=f"arn:aws:iam::123456789012:role/{spec.name}", type="STANDARD",
            )["stateMachineArn"]

    def _invoke(self, name: str, payload: Any) -> tuple[bool, Any]:
        """A Lambda task of a state machine: run it in the function's workers."""
        pool = next((p for p in self.pools.values() if p.spec.name == name), None)
        if pool is None:
            return False, {"errorType": "ResourceNotFoundException", "errorMessage": f"no function {name}"}
        result = pool.invoke(payload)
        if result.ok:
            return True, result.result
        return False, {"errorType": result.error_type, "errorMessage": result.error_message}

    def _create_queues(self, resolver: Resolver) -> None:
        sqs = self.client("sqs")
        pending = dict(self.model.queues)
        while pending:  # dead-letter queues before the queues that redrive into them
            progressed = False
            for lid, spec in list(pending.items()):
                try:
                    attrs = _queue_attributes(spec.properties, resolver, self.visibility_timeout)
                except KeyError:
                    continue
                spec.url = sqs.create_queue(QueueName=spec.name, Attributes=attrs)["QueueUrl"]
                spec.arn = sqs.get_queue_attributes(QueueUrl=spec.url, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                del pending[lid]
                progressed = True
            if not progressed:
                raise RuntimeError(f"cannot order queues {list(pending)}")

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def _fresh_logs(self) -> None:
        """The logs folder holds this run's logs only: every ``*.log`` of an earlier run goes (the
        denials file is made again only when a call is denied, which the end-to-end suite checks)."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for old in self.logs_dir.glob("*.log"):
            old.unlink(missing_ok=True)

    def _start_functions(self, resolver: Resolver) -> None:
        logs = self.logs_dir
        names = log_names(self.model.functions)
        policies = iam.load({"Resources": self.model.resources})
        for lid, spec in self.model.functions.items():
            env = {k: str(v) for k, v in resolver.resolve(spec.environment).items()}
            env.update({k: v for k, v in self.env_overrides.items() if k in env})
            if "ALLOW_LOCAL_WEBHOOKS" in env:  # local webhooks, but never to the twin's own gateway or AWS endpoint
                env["WEBHOOK_RESERVED_LOCAL_PORTS"] = f"{self.port},{self.aws_port}"
            env.update(CREDENTIALS)
            env.update(
                {
                    "AWS_ENDPOINT_URL": self.aws_endpoint,
                    "AWS_REGION": REGION,
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
                    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                    "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                    "PYTHONPATH": str(FUNCTIONS_DIR),
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "TZ": "UTC",
                    "LANG": "C.UTF-8",
                }
            )
            policy = policies[lid].resolved(lambda node: iam.resolve_with(resolver, node))
            self.pools[lid] = FunctionPool(spec, env, str(logs / names[lid]), self.concurrency, policy,
                                           self.expected_errors)
        threads = [threading.Thread(target=p.prestart, daemon=True) for p in self.pools.values()]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive() and not self.stopping.is_set():
                t.join(0.2)

    # ------------------------------------------------------------ workflow failures

    def _expect_workflow_failures(self) -> None:
        """The failures the workflows expect: the error names their Retry/Catch name and the payout
        logic maps to an order's failure reason. Each is one line in a function's log, and an execution
        ending in one (or in a Fail state's error) one line on the terminal, not moto's dump."""
        sys.path.insert(0, str(FUNCTIONS_DIR))
        from treue.logic.payout import FAILURE_REASONS

        handled, fail_states = set(), set()
        for spec in self.model.state_machines.values():
            names, failed = error_names(spec.definition)
            handled |= names
            fail_states |= failed
        self.failure_reasons = dict(FAILURE_REASONS)
        self.expected_errors = frozenset(handled | set(FAILURE_REASONS))
        quiet_expected_failures(self.expected_errors | fail_states)

    def execution_line(self, end: ExecutionEnd) -> str:
        """One line for an execution that did not succeed, e.g. ``payout ord_… FAILED out_of_stock
        (IssueGiftCard)``; an unexpected error names the log with its traceback."""
        machine = next((readable_name(lid, "StateMachine") for lid, spec in self.model.state_machines.items()
                        if spec.name == end.state_machine), end.state_machine)
        head = f"{machine} {end.name} {end.status}"
        if end.failed_error:
            reason = self.failure_reasons.get(end.failed_error)
            if reason is None and end.failed_error in self.expected_errors:
                reason = end.failed_error
            if reason is not None:
                return f"{head} {reason} ({end.failed_state})"
            pool = next((p for p in self.pools.values() if p.spec.name == end.failed_function), None)
            where = f"; its log: {pool.log_path}" if pool is not None else ""
            return f"{head} {end.failed_error} ({end.failed_state}{where})"
        if end.error:
            return f"{head} {end.error}" + (f": {end.cause}" if end.cause else "")
        return head

    def _report_execution(self, end: ExecutionEnd) -> None:
        if end.status == "SUCCEEDED" or self.stopping.is_set():
            return
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = f"{at} {self.execution_line(end)}"
        with self._print_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            with (self.logs_dir / "workflows.log").open("a") as f:
                f.write(line + "\n")

    def _describe(self, resolver: Resolver) -> dict[str, Any]:
        queues, dlqs, table, payout, batch, bucket = {}, {}, None, None, None, None
        for name, output in self.model.outputs.items():
            try:
                value = resolver.resolve(output["Value"])
            except KeyError:
                continue
            if name.endswith("DlqUrl"):
                dlqs[name.removesuffix("DlqUrl").lower()] = value
            elif name.endswith("QueueUrl"):
                queues[name.removesuffix("QueueUrl").lower()] = value
            elif name == "TableName":
                table = value
            elif name == "PayoutStateMachineArn":
                payout = value
            elif name == "BatchStateMachineArn":
                batch = value
            elif name == "BatchBucketName":
                bucket = value
        return {
            "url": self.url,
            "aws_endpoint": self.aws_endpoint,
            "region": REGION,
            "table": table,
            "queues": queues,
            "dead_letter_queues": dlqs,
            "payout_state_machine": payout,
            "batch_state_machine": batch,
            "batch_bucket": bucket,
            "usage_plan_id": self.usage_plan_id,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def load_catalog(self) -> dict[str, Any]:
        sys.path.insert(0, str(FUNCTIONS_DIR))
        from treue.logic.catalog import load_dir
        from treue.runtime import now
        from treue.store.dynamodb import Store
        from treue.store.orders import OrderStore

        version, items = load_dir(ROOT / "catalog")
        store = OrderStore(Store(self.state["table"], ddb=self.client("dynamodb")))
        return store.put_catalog(version, [i.model_dump() for i in items], now())

    def seed_program(self, name: str, currency: str, seed: str | None = None) -> dict[str, Any]:
        """The demo program with its keys and budget; with ``seed``, its id, key ids and keys are
        derived from that word (the same on every start: data lives in memory, a restart starts afresh)."""
        sys.path.insert(0, str(FUNCTIONS_DIR))
        from treue.core.ids import SeededSource
        from treue.logic import budget, provisioning
        from treue.runtime import now
        from treue.store.budget import BudgetStore
        from treue.store.dynamodb import Store

        store = Store(self.state["table"], ddb=self.client("dynamodb"))
        created = provisioning.create_program(store, name, currency, now(), usage_plan=self._usage_plan(), country="DE",
                                              fx_ppm=dict(DEMO_EXCHANGE_RATES),
                                              source=SeededSource(seed) if seed else None)
        for cur, amount in DEMO_BUDGET.items():  # the demo program can pay rewards from the start
            budget.fund(BudgetStore(store), created["program_id"], cur, amount, f"demo opening balance {cur}",
                        f"demo-opening-{cur}", "operator:twin", now())
        # moto stamps every SQS message with one fixed SenderId, whoever sends it: on the twin every
        # accrual message comes from that principal, which the demo program registers as its sender
        from moto.sqs.models import DEFAULT_SENDER_ID

        from treue.logic import queue_senders
        from treue.store.queue_senders import QueueSenderStore

        queue_senders.register(QueueSenderStore(store), created["program_id"], DEFAULT_SENDER_ID,
                               queue_senders.SenderRegistration(description="every sender of the twin's SQS (moto)"),
                               "operator:twin", now())
        return {**created, "budget": dict(DEMO_BUDGET), "queue_sender": DEFAULT_SENDER_ID}
