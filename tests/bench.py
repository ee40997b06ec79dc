"""``make bench``: cold-start and DynamoDB round-trip figures (printed, never asserted by time).

1. Cold start per function: a fresh interpreter imports the handler module and creates its first
   client, then (against a moto server) handles its first event from events/; divided by the floor, a
   fresh interpreter doing ``import boto3`` + one client (+ one GetItem). Median of BENCH_RUNS (default
   7) fresh interpreters per row, the floor measured in turn with each row's runs, the spread of the
   run-by-run ratios printed; the functions with the variables Lambda sets, the floor with none.
2. DynamoDB round trips of enroll and accrue on a warm function (moto, calls counted at the client).
3. Order latency on the local twin: the answer of ``POST /v1/orders`` and the time until the order is
   COMPLETED (payout workflow in moto's ASL interpreter, tasks in function workers), per reward type.
4. Bulk issuance on the local twin: batches of BENCH_BATCH_SIZES lines (default 100, 1,000, 10,000)
   through ``POST /v1/batches``; the largest with provider failures injected (3% refused for good,
   2% answered 503 once and retried by Step Functions), then retried; every line is then checked to
   be issued exactly once (one live gift card per line at the provider, the budget down by exactly
   the batch's cost).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
FUNCTIONS = {
    "authorizer": ("treue.handlers.authorizer", True),
    "enrollment": ("treue.handlers.enrollment", True),
    "accrual": ("treue.handlers.accrual", True),
    "accrual_queue": ("treue.handlers.accrual_queue", True),
    "docs": ("treue.handlers.docs", False),
    "catalog": ("treue.handlers.catalog", True),
    "orders": ("treue.handlers.orders", True),
    "vouchers": ("treue.handlers.vouchers", True),
    "payout tasks": ("treue.handlers.payout", True),
    "finance": ("treue.handlers.finance", True),
    "audit sealer": ("treue.handlers.audit", False),
}
FLOOR = "import boto3\nboto3.client('dynamodb')\n"
ENV = {
    "PATH": os.environ.get("PATH", ""),
    "PYTHONPATH": str(ROOT / "functions"),
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "TABLE_NAME": "bench",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def measure(code: str, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """A fresh interpreter runs ``code``: the ms from its first statement to its last (wall clock), the CPU ms
    the process spent in them (no waiting: not on the moto server's answers, not for a core of the busy machine),
    and what it printed after ``outcome: `` (the answer to its first event), if anything."""
    timed = (
        "import time\n_t, _c = time.perf_counter(), time.process_time()\n" + code
        + "print(time.perf_counter() - _t, time.process_time() - _c)\n"
    )
    out = subprocess.run([sys.executable, "-c", timed], env=env or ENV, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    lines = out.stdout.strip().splitlines()
    wall, cpu = (float(x) * 1000 for x in lines[-1].split())
    return wall, cpu, "".join(line[9:] for line in lines if line.startswith("outcome: "))


def run(code: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """``measure`` without the CPU time."""
    wall, _, outcome = measure(code, env)
    return wall, outcome


# BENCH_ROWS=catalog,"orders POST": only these rows of the first-event table; BENCH_PROFILE=<folder>: a cProfile
# of each row's first event there (<row>.prof, read with python -m pstats), from a run outside the timed ones
ROWS = {r.strip() for r in os.environ.get("BENCH_ROWS", "").split(",") if r.strip()}
PROFILE = os.environ.get("BENCH_PROFILE", "")
# BENCH_INSTRUCTIONS=1: also each row's instructions (callgrind, one run each: repeatable under any load, unlike the
# times): the function's import with its client over the floor's import and client, and its first event over the
# floor's first call
INSTRUCTIONS = os.environ.get("BENCH_INSTRUCTIONS", "") not in ("", "0")
# Records the AWS calls of a function's first event (every client's operations, in order), printed at exit
CALLS_PROBE = (
    "import atexit, botocore.client\n_calls, _call = [], botocore.client.BaseClient._make_api_call\n"
    "def _counted(self, operation, params):\n    _calls.append(operation)\n    return _call(self, operation, params)\n"
    "botocore.client.BaseClient._make_api_call = _counted\n"
    "atexit.register(lambda: print('calls: ' + ', '.join(_calls)))\n"
)


def aws_calls(code: str, env: dict[str, str], profile: Path | None = None) -> str:
    """The AWS calls a fresh interpreter makes for ``code`` ("1 call: GetItem"); with ``profile``, its cProfile
    goes there too. Outside the timed runs: the probe costs time."""
    if profile:
        profile.parent.mkdir(parents=True, exist_ok=True)
        code = f"import cProfile\ncProfile.run({code!r}, {str(profile)!r})\n"
    out = subprocess.run([sys.executable, "-c", CALLS_PROBE + code], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    names = next((line[7:] for line in out.stdout.splitlines() if line.startswith("calls: ")), "")
    count = len(names.split(", ")) if names else 0
    return f"{count} call{'' if count == 1 else 's'}{': ' + names if names else ''}"


def cold(code: str, env: dict[str, str] | None = None) -> float:
    return run(code, env)[0]


def median_ms(code: str) -> float:
    cold(code)  # warm the file-system cache and .pyc files
    return statistics.median(cold(code) for _ in range(RUNS))


@dataclass
class Row:
    """One table row's runs: the floor's and each side's (a function from .pyc, from the sources …), in turn."""

    floor: list[float] = field(default_factory=list)
    sides: dict[str, list[float]] = field(default_factory=dict)
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    floor_cpu: list[float] = field(default_factory=list)  # the same runs' CPU ms (``measure``)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def ms(self, side: str) -> float:
        return statistics.median(self.sides[side])

    def floor_ms(self) -> float:
        return statistics.median(self.floor)

    def ratio(self, side: str) -> float:
        """The side's median over the floor's median."""
        return self.ms(side) / self.floor_ms()

    def cpu_ratio(self, side: str) -> float:
        """The side's median CPU ms over the floor's: what the function's own work costs beyond the floor's,
        without the time its calls wait for the (moto) server or for a core."""
        return statistics.median(self.cpu[side]) / statistics.median(self.floor_cpu)

    def spread(self, side: str) -> str:
        """The lowest and the highest of the run-by-run ratios (each run's side over the floor of its round)."""
        ratios = [ms / floor for ms, floor in zip(self.sides[side], self.floor, strict=True)]
        return f"{min(ratios):.2f}–{max(ratios):.2f}"

    def answers(self, side: str) -> str:
        """Every answer the side's timed runs got: one, or each with its count when they differ (ids made in a
        run shown by their prefix: ``evt_…``)."""
        import re

        counts: dict[str, int] = {}
        for outcome in (re.sub(r"\b([a-z]{3})_[0-9a-z]{20,}\b", r"\1_…", o) for o in self.outcomes[side]):
            counts[outcome] = counts.get(outcome, 0) + 1
        return next(iter(counts)) if len(counts) == 1 else ", ".join(f"{o} ×{n}" for o, n in counts.items())


Run = tuple[str, dict[str, str]]  # code and environment of one fresh interpreter


def alternate(floor: Run, sides: dict[str, Callable[[int], Run]], runs: int = RUNS) -> Row:
    """``runs`` rounds, each starting the floor and every side once; the order rotates from round to round, so a
    load that comes and goes on the machine reaches a row and its floor alike, and no side always runs right after
    another. A side is a function of the run's number (a write makes its event new each run)."""
    row = Row(sides={name: [] for name in sides}, outcomes={name: [] for name in sides},
              cpu={name: [] for name in sides})
    order = ["", *sides]  # "" is the floor
    for i in range(runs):
        turn = i % len(order)
        for name in order[turn:] + order[:turn]:
            if not name:
                ms, cpu, _ = measure(*floor)
                row.floor.append(ms)
                row.floor_cpu.append(cpu)
                continue
            ms, cpu, outcome = measure(*sides[name](i))
            row.sides[name].append(ms)
            row.cpu[name].append(cpu)
            row.outcomes[name].append(outcome)
    return row


TRACE_ID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def template_function(handler: str, outdir: Path = ROOT / "cdk.out") -> tuple[str, dict]:
    """The synthesized stack's function with this handler (or, given a module, its first function): construct id
    and properties; ("Bench", {}) without a template."""
    import json

    if (outdir / "Treue.template.json").exists():
        resources = json.loads((outdir / "Treue.template.json").read_text())["Resources"]
        for name, resource in resources.items():
            found = resource["Properties"].get("Handler", "") if resource["Type"] == "AWS::Lambda::Function" else ""
            if found == handler or found.startswith(handler + "."):
                return name, resource["Properties"]
    return "Bench", {}


def lambda_environment(handler: str, task_root: Path, outdir: Path = ROOT / "cdk.out") -> dict[str, str]:
    """The variables Lambda itself sets in a function's process (not the stack's): the runtime, the function's
    name, memory and handler from the template, the task root it runs from; with active tracing the X-Ray daemon's
    address (a port nobody answers: the segments are dropped) and the invocation's trace header. The floor gets
    none of them: it is a plain interpreter doing boto3 work."""
    name, props = template_function(handler, outdir)
    runtime = props.get("Runtime", f"python{sys.version_info.major}.{sys.version_info.minor}")
    function = f"Treue-{name}"
    env = {
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props.get("MemorySize", 128)),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]bench",
        "AWS_REGION": ENV["AWS_DEFAULT_REGION"],
        "LAMBDA_TASK_ROOT": str(task_root),
        "TZ": ":UTC",
        "_HANDLER": props.get("Handler", handler),
    }
    if props.get("TracingConfig", {"Mode": "Active"}).get("Mode") == "Active":
        env.update({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                    "_X_AMZN_TRACE_ID": TRACE_ID})
    return env


def cold_starts() -> None:
    rows: list[tuple[str, Row]] = []
    for name, (module, has_client) in FUNCTIONS.items():
        code = f"import {module}\n"
        if has_client:
            code += "import treue.store.table as s\ns.client()\n"
        env = {**ENV, **lambda_environment(module, ROOT / "functions")}
        cold(code, env)  # warm the file-system cache and .pyc files
        rows.append((name, alternate((FLOOR, ENV), {"import": lambda _, c=code, e=env: (c, e)})))
    floors = [ms for _, row in rows for ms in row.floor]
    print(f"Cold init (median of {RUNS} fresh interpreters, each function with the variables Lambda sets); floor = "
          f"import boto3 + one client, measured alternately with each row; spread = lowest–highest ratio of a run")
    print(f"  {'function':<15}{'floor':>6}{'ms':>6}{'ratio':>7}{'spread':>12}{'cpu':>6}   goal <= 1.3")
    for name, row in rows:
        print(f"  {name:<15}{row.floor_ms():>6.0f}{row.ms('import'):>6.0f}{row.ratio('import'):>7.2f}"
              f"{row.spread('import'):>12}{row.cpu_ratio('import'):>6.2f}")
    print(f"  floor over the run: median {statistics.median(floors):.0f} ms, {min(floors):.0f} to {max(floors):.0f}")


# A first event per function (a sample from events/) and the floor's same first call: a cold start as the
# issue counts it, with the work a function defers to its first call. Every answer is checked to be < 500. The
# rows named POST are the writes a partner's first call after a quiet minute is as often as a read.
FIRST_EVENTS = {
    "authorizer": ("treue.handlers.authorizer", "authorizer/request.json"),
    "enrollment": ("treue.handlers.enrollment", "enrollment/get_member.json"),
    "enrollment POST": ("treue.handlers.enrollment", "enrollment/post_member.json"),
    "accrual": ("treue.handlers.accrual", "accrual/get_balance.json"),
    "accrual POST": ("treue.handlers.accrual", "accrual/post_purchase.json"),
    "catalog": ("treue.handlers.catalog", "catalog/list_catalog.json"),
    "orders": ("treue.handlers.orders", "orders/get_order.json"),
    "orders POST": ("treue.handlers.orders", "orders/post_order.json"),
    "finance": ("treue.handlers.finance", "finance/get_budget.json"),
    "vouchers": ("treue.handlers.vouchers", "vouchers/validate.json"),
    "rewards": ("treue.handlers.rewards", "rewards/get_reward.json"),
    "batches": ("treue.handlers.batches", "batches/list_batches.json"),
    "webhooks": ("treue.handlers.webhooks", "webhooks/list_webhooks.json"),
    "queue senders": ("treue.handlers.queue_senders", "queue_senders/list_senders.json"),
    "program": ("treue.handlers.program", "program/get_program.json"),
}
FIRST_CALL = (
    "import boto3\nboto3.client('dynamodb').get_item(TableName={table!r}, "
    "Key={{'pk': {{'S': 'P#bench'}}, 'sk': {{'S': 'PROGRAM'}}}})\n"
)
HANDLE = (
    "import json, importlib, os\n"
    "class Context:\n"
    "    function_name = os.environ['AWS_LAMBDA_FUNCTION_NAME']\n"
    "    memory_limit_in_mb, aws_request_id = int(os.environ['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']), 'bench'\n"
    "    invoked_function_arn = 'arn:aws:lambda:eu-central-1:123456789012:function:' + function_name\n"
    "    def get_remaining_time_in_millis(self): return 30000\n"
    "event = json.loads({event!r})\n"
    "answer = importlib.import_module({module!r}).handler(event, Context())\n"
    "assert 'principalId' in answer or answer['statusCode'] < 500, answer\n"
    "body = {{}} if 'principalId' in answer else json.loads(answer.get('body') or 'null')\n"
    "replayed = ' (replayed)' if isinstance(body, dict) and body.get('replayed') else ''\n"
    "print('outcome:', 'allowed' if 'principalId' in answer else f\"HTTP {{answer['statusCode']}}{{replayed}}\")\n"
)


def fresh(event: dict, n: int) -> dict:
    """The event of a write made new for run ``n``: its transaction id, Idempotency-Key and the member identifiers
    it enrolls get the run's number, so each fresh process writes (a repeat would be answered as a replay, or
    as a conflict). Other events are returned as they are."""
    import copy
    import json

    event = copy.deepcopy(event)
    body = json.loads(event["body"]) if event.get("body") else None
    if isinstance(body, dict) and event["httpMethod"] == "POST":
        if "transaction_id" in body:
            body["transaction_id"] = f"{body['transaction_id']}-run{n}"
        if event["resource"] == "/v1/members":  # enrollment: every identifier is unique within the program
            if "email" in body:
                local, _, domain = body["email"].rpartition("@")
                body["email"] = f"{local}.run{n}@{domain}"
            if "phone" in body:
                body["phone"] = f"+49151{n:08d}"
        event["body"] = json.dumps(body)
    for headers in (event["headers"], event.get("multiValueHeaders") or {}):
        for name in [h for h in headers if h.lower() == "idempotency-key"]:
            value = headers[name]
            headers[name] = [f"{v}-run{n}" for v in value] if isinstance(value, list) else f"{value}-run{n}"
    return event


def as_deployed(functions: Path = ROOT / "functions") -> Path:
    """A copy of functions/ as the deployment asset has it: the sources without ``__pycache__``. Lambda's
    /var/task is read-only, so a function compiles each of its modules at every cold start; run from this copy
    with PYTHONDONTWRITEBYTECODE, a fresh interpreter does the same (the packages keep their .pyc files, as the
    runtime's boto3 and the layer's packages do)."""
    import shutil
    import tempfile

    copy = Path(tempfile.mkdtemp(prefix="treue-asset-")) / "functions"
    shutil.copytree(functions, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return copy


def stack_environment(handler: str, outdir: Path = ROOT / "cdk.out", stand_ins: dict[str, str] | None = None
                      ) -> dict[str, str]:
    """The variables of the function with this handler in the synthesized template: its literals, and for each
    reference (the table, keys, state machine …) the stand-in of that name made on the moto server, if given.
    Without a template: every stand-in."""
    stand_ins = stand_ins or {}
    if not (outdir / "Treue.template.json").exists():
        return dict(stand_ins)
    found = [env for h, env in stack_functions(outdir).values() if h == handler]
    variables = found[0] if found else {}
    return {k: v if isinstance(v, str) else stand_ins[k] for k, v in variables.items()
            if isinstance(v, str) or k in stand_ins}


def first_events() -> None:
    """Cold start with the first event, against a local moto server (both sides make real HTTP calls). Each
    function runs with its environment from the synthesized template and the variables Lambda sets, from the
    checkout (with .pyc files) and from a copy of the sources as deployed (no .pyc: every module compiled, as in
    Lambda). The bench program has what the samples name: a member (enrolled in DE, with points), the catalog, a
    budget, an order, a reward and an issued voucher, so the reads answer 200 and the writes 2xx."""
    sys.path.insert(0, str(ROOT / "functions"))
    sys.path.insert(0, str(ROOT))
    import itertools
    import json
    import logging
    import shutil

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per call

    from infra.twin.serialize import serialize_moto_dynamodb
    from tests.support import api_event, create_table

    serialize_moto_dynamodb()  # as the twin: one call at a time, a write costing what it touches, not the table
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server._server.server_port}"
        floor_env = {**ENV, "AWS_ENDPOINT_URL": endpoint}
        os.environ.update({k: v for k, v in floor_env.items() if k.startswith("AWS_")})
        table = create_table(boto3.client("dynamodb"), "bench-first-event")
        floor_env["TABLE_NAME"] = os.environ["TABLE_NAME"] = table
        kms = boto3.client("kms")  # the vouchers function looks codes up with the codes keys (a MAC of the code)
        mac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
        payout = boto3.client("stepfunctions").create_state_machine(  # started by an order, never run (moto)
            name="bench-payout", roleArn="arn:aws:iam::123456789012:role/bench",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))
        stand_ins = {"TABLE_NAME": table, "CODES_KEY_ID": kms.create_key()["KeyMetadata"]["Arn"],
                     "CODES_MAC_KEY_ID": mac["KeyMetadata"]["Arn"],
                     "PAYOUT_STATE_MACHINE_ARN": payout["stateMachineArn"]}
        os.environ.update(stand_ins)
        from treue import runtime
        from treue.core import keys
        from treue.logic import budget, members, orders, points, provisioning, rewards
        from treue.logic import payout as payout_tasks
        from treue.logic.catalog import load_dir
        from treue.logic.models import Adjustment, Delivery, Enrollment, OrderRequest, Recipient, RewardRequest
        from treue.routes import ROUTES
        from treue.store import clients

        runtime.reset()
        clients.reset()
        now = runtime.now()
        created = provisioning.create_program(runtime.store(), "Bench", "EUR", now, country="DE")
        pid, key = created["program_id"], created["api_keys"]["partner"]
        version, items = load_dir(ROOT / "catalog")
        runtime.orders().put_catalog(version, [i.model_dump() for i in items], now)
        budget.fund(runtime.budgets(), pid, "EUR", 10_000_000, "bench-opening", "bench-opening", "bench", now)
        member, _ = members.enroll(runtime.store(), pid, Enrollment(email="ada@example.com", country="DE"), now)
        program = runtime.program(pid)
        points.adjust(runtime.store(), program, member["id"],
                      Adjustment(points=100_000_000, reason="bench opening balance", reference="bench-opening"),
                      "bench", now)
        gift_card = {"item_id": "nordlicht-books-eur", "delivery": Delivery(method="api")}
        order, _ = orders.place(runtime.orders(), runtime.starter(), program, runtime.catalog().get,
                                OrderRequest(member_id=member["id"], denomination=2500, **gift_card),
                                "bench-order", "bench", now)
        reward, _ = rewards.issue(runtime.orders(), runtime.budgets(), runtime.starter(), program,
                                  runtime.catalog().get, RewardRequest(recipient=Recipient(member_id=member["id"]),
                                                                       face_value=2500, reference="bench-reward",
                                                                       **gift_card), "bench-reward", "bench", now)
        voucher, _ = orders.place(runtime.orders(), runtime.starter(), program, runtime.catalog().get,
                                  OrderRequest(member_id=member["id"], item_id="voucher-5-off",
                                               delivery=Delivery(method="api")), "bench-voucher", "bench", now)
        issuing = {"program_id": pid, "order_id": voucher["order_id"]}  # the payout workflow's tasks, in turn
        payout_tasks.verify_hold(runtime.orders(), issuing, now)
        payout_tasks.issue_voucher(runtime.orders(), runtime.vault(), issuing, now)
        code = orders.reveal(runtime.orders(), runtime.vault(), pid, voucher["order_id"], "bench", now)
        seeded = {"prg_01demo0000000000000000000": pid, "mbr_01demo0000000000000000000": member["id"],
                  "ord_01demo0000000000000000000": order["order_id"],
                  "rwd_01demo00000000000000000000": reward["reward_id"],
                  "ABCD-EFGH-JKLM-NPQRS": code["codes"][0]["code"]}
        scopes = {(r.method, r.path): r.scopes for r in ROUTES}

        def auth(sample: str) -> dict[str, str]:
            """The authorizer's context for a key the sample's route allows (partner where it may)."""
            event = json.loads((ROOT / "events" / sample).read_text())
            allowed = [str(s) for s in scopes[(event["httpMethod"], event["resource"])]]
            scope = "partner" if "partner" in allowed else allowed[0]
            return {"program_id": pid, "key_id": keys.parse(created["api_keys"][scope])[0], "scope": scope}

        def with_seeded(event: dict) -> dict:
            text = json.dumps(event)
            for demo, real in seeded.items():
                text = text.replace(demo, real)
            return json.loads(text)

        deployed = as_deployed()
        numbers = itertools.count()  # a write's run number: unique over the whole table
        floor = (FIRST_CALL.format(table=table), floor_env)

        def side(event: dict, module: str, env: dict[str, str]) -> Callable[[int], Run]:
            """A fresh process handling the event (a write's made new with the next number)."""
            return lambda _: (HANDLE.format(event=json.dumps(fresh(event, next(numbers))), module=module), env)

        print(f"Cold start with the first event (median of {RUNS}; moto server; each function with its environment "
              "from the template and the variables Lambda sets, from the checkout's .pyc and from the sources as "
              "deployed); floor = import boto3 + client + one GetItem, a plain interpreter measured alternately "
              "with each row; spread = lowest–highest ratio of a run; a POST row writes anew in every run")
        print(f"  {'function':<17}{'floor':>6}{'ms':>6}{'ratio':>7}{'spread':>12}{'no .pyc':>9}{'ratio':>7}"
              f"{'spread':>12}{'cpu':>6}   goal <= 1.3; first event → answer; its AWS calls")
        floors: list[float] = []
        for name, (module, sample) in FIRST_EVENTS.items():
            if ROWS and name not in ROWS:
                continue
            if name == "authorizer":
                event = api_event(sample, headers={"Authorization": f"Bearer {key}"})
            else:
                event = with_seeded(api_event(sample, auth=auth(sample)))
            handler = f"{module}.handler"
            stack = {**floor_env, "POWERTOOLS_SERVICE_NAME": "bench",
                     **stack_environment(handler, stand_ins=stand_ins)}
            envs = {"pyc": {**stack, **lambda_environment(handler, ROOT / "functions")},
                    "source": {**stack, **lambda_environment(handler, deployed), "PYTHONPATH": str(deployed)}}
            sides = {kind: side(event, module, env) for kind, env in envs.items()}
            for kind in sides:  # warm the file caches for both (and the answer from the sources too)
                run(*sides[kind](0))
            calls = aws_calls(*sides["pyc"](0), profile=PROFILE and Path(PROFILE) / f"{name.replace(' ', '_')}.prof")
            if INSTRUCTIONS:
                imported = f"import {module}\nimport treue.store.table as s\ns.client()\n"
                counts = [instructions(code, env) for code, env in (
                    (FLOOR, floor_env), (imported, envs["pyc"]), floor, sides["pyc"](0))]
                if counts[0] is not None:
                    print(f"  {name}, instructions (callgrind): import {counts[1] / 1e6:,.0f} M over the floor's "
                          f"{counts[0] / 1e6:,.0f} M ({counts[1] / counts[0]:.2f}); first event "
                          f"{counts[3] / 1e6:,.0f} M over the floor's {counts[2] / 1e6:,.0f} M "
                          f"({counts[3] / counts[2]:.2f})")
            row = alternate(floor, sides)
            floors.extend(row.floor)
            answer = row.answers("pyc")
            if row.answers("source") != answer:
                answer += f" (no .pyc: {row.answers('source')})"
            print(f"  {name:<17}{row.floor_ms():>6.0f}{row.ms('pyc'):>6.0f}{row.ratio('pyc'):>7.2f}"
                  f"{row.spread('pyc'):>12}{row.ms('source'):>9.0f}{row.ratio('source'):>7.2f}"
                  f"{row.spread('source'):>12}{row.cpu_ratio('pyc'):>6.2f}   {sample} → {answer}; {calls}")
        print(f"  floor over the run: median {statistics.median(floors):.0f} ms, "
              f"{min(floors):.0f} to {max(floors):.0f}")
        shutil.rmtree(deployed.parent)
    finally:
        server.stop()


# The stack's functions that are not behind the partner API's resolver (the authorizer's row is above): the
# sample each handles first; a workflow task handles its own (events/<module>/<task>.json)
OTHER_SAMPLES = {
    "treue.handlers.accrual_queue.handler": "accrual_queue/batch.json",
    "treue.handlers.audit.handler": "audit/scheduled.json",
    "treue.handlers.webhook_fanout.handler": "webhook_fanout/stream.json",
    "treue.handlers.webhook_sender.handler": "webhook_sender/delivery.json",
    "treue.handlers.report_worker.handler": "report_worker/step.json",
    "treue.handlers.sweeper.handler": "sweeper/scheduled.json",
    "treue.handlers.docs.handler": "docs/get_openapi.json",
}
HANDLE_OTHER = (
    "import json, importlib, os\n"
    "class Context:\n"
    "    function_name = os.environ['AWS_LAMBDA_FUNCTION_NAME']\n"
    "    memory_limit_in_mb, aws_request_id = int(os.environ['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']), 'bench'\n"
    "    invoked_function_arn = 'arn:aws:lambda:eu-central-1:123456789012:function:' + function_name\n"
    "    def get_remaining_time_in_millis(self): return 30000\n"
    "event = json.loads({event!r})\n"
    "module = importlib.import_module({module!r})\n"
    "try:\n"
    "    answer = getattr(module, {function!r})(event, Context())\n"
    "except Exception as err:  # a task's domain error: the workflow's Catch takes it\n"
    "    if not any(c.__module__ == 'treue.errors' for c in type(err).__mro__):\n"
    "        raise\n"
    "    outcome = type(err).__name__\n"
    "else:\n"
    "    failed = answer.get('batchItemFailures') if isinstance(answer, dict) else None\n"
    "    outcome = f'{{len(failed)}} of {{len(event[\"Records\"])}} failed' if failed else (\n"
    "        f\"HTTP {{answer['statusCode']}}\" if isinstance(answer, dict) and 'statusCode' in answer else\n"
    "        json.dumps(answer)[:80] if isinstance(answer, dict) and 'batchItemFailures' not in answer else 'done')\n"
    "    assert not isinstance(answer, dict) or answer.get('statusCode', 200) < 500, answer\n"
    "print('outcome:', outcome)\n"
)


PAYOUT_ITEMS = {"gift_card": ("nordlicht-books-eur", 2500), "voucher": ("voucher-5-off", None),
                "charity": ("kuestenwald", 500)}  # a payout task sample's order type → catalog item and value


def stack_functions(outdir: Path = ROOT / "cdk.out") -> dict[str, tuple[str, dict]]:
    """The synthesized stack's functions of this package: construct id → (handler, environment as in the
    template, references unresolved)."""
    import json

    template = json.loads((outdir / "Treue.template.json").read_text())
    return {name: (r["Properties"]["Handler"], r["Properties"].get("Environment", {}).get("Variables", {}))
            for name, r in template["Resources"].items()
            if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler", "").startswith("treue.")}


def other_first_events(outdir: Path = ROOT / "cdk.out") -> None:
    """Cold start with the first event of every other function of the stack, each with its environment from the
    synthesized template (the table, queues, bucket and code keys made on a local moto server) and the variables
    Lambda sets, against the same floor as ``first_events``, measured alternately with each row. The sample's
    program is a seeded one, so a function reads real items; a payout task gets a new order in every run, in the
    state the task takes over (a batch task a new batch), and the accrual queue new transaction ids, so each run
    does the work anew."""
    if not (outdir / "Treue.template.json").exists():
        print(f"Cold start of the other functions: no synthesized template in {outdir.name}/ (make synth)")
        return
    sys.path.insert(0, str(ROOT / "functions"))
    sys.path.insert(0, str(ROOT))
    import itertools
    import json
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from infra.twin.serialize import serialize_moto_dynamodb
    from tests.support import create_table

    serialize_moto_dynamodb()  # as the twin: one call at a time, a write costing what it touches, not the table
    functions = stack_functions(outdir)
    template = json.loads((outdir / "Treue.template.json").read_text())["Resources"]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server._server.server_port}"
        base = {**ENV, "AWS_ENDPOINT_URL": endpoint}  # the floor's: a plain interpreter
        os.environ.update({k: v for k, v in base.items() if k.startswith("AWS_")})
        table = create_table(boto3.client("dynamodb"), "bench-other-functions")
        made: dict[str, str] = {}

        def resolve(value) -> str:
            """A template reference → the same kind of resource on the moto server (made once)."""
            if isinstance(value, str):
                return value
            logical = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
            if logical not in made:
                kind, props = template[logical]["Type"], template[logical].get("Properties", {})
                if kind == "AWS::DynamoDB::Table":
                    made[logical] = table
                elif kind == "AWS::SQS::Queue":
                    made[logical] = boto3.client("sqs").create_queue(QueueName=f"bench-{logical}")["QueueUrl"]
                elif kind == "AWS::S3::Bucket":
                    made[logical] = f"bench-{logical.lower()}"
                    boto3.client("s3").create_bucket(Bucket=made[logical], CreateBucketConfiguration={
                        "LocationConstraint": "eu-central-1"})
                elif kind == "AWS::KMS::Key":
                    made[logical] = boto3.client("kms").create_key(
                        KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
                        KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"))["KeyMetadata"]["Arn"]
                elif kind == "AWS::StepFunctions::StateMachine":  # started, never run (moto)
                    made[logical] = boto3.client("stepfunctions").create_state_machine(
                        name=f"bench-{logical}", roleArn="arn:aws:iam::123456789012:role/bench",
                        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
                    )["stateMachineArn"]
                else:
                    raise ValueError(f"no stand-in for {kind} ({logical})")
            return made[logical]

        os.environ["TABLE_NAME"] = table
        for name in ("CODES_KEY_ID", "CODES_MAC_KEY_ID", "PAYOUT_STATE_MACHINE_ARN", "BATCH_STATE_MACHINE_ARN",
                     "BATCH_BUCKET"):  # for the seeding below
            for value in [v[name] for _, v in functions.values() if name in v][:1]:
                os.environ[name] = resolve(value)
        from treue import runtime
        from treue.core import keys
        from treue.logic import batch_run, budget, members, orders, points, provisioning, queue_senders
        from treue.logic import batches as batch_logic
        from treue.logic import payout as payout_tasks
        from treue.logic.catalog import load_dir
        from treue.logic.models import Adjustment, BatchRequest, Delivery, Enrollment, OrderRequest
        from treue.store import clients

        runtime.reset()
        clients.reset()  # a client made for another server (first_events) would call that one
        now = runtime.now()
        program = provisioning.create_program(runtime.store(), "Bench", "EUR", now, country="DE")
        pid = program["program_id"]
        # the accrual queue's sample: its first message's member and sender belong to the seeded program
        member, _ = members.enroll(runtime.store(), pid, Enrollment(email="ada@example.com"), now)
        queue_senders.register(runtime.queue_senders(), pid, "AROA3XFRBF535PLBIFPI4",
                               queue_senders.SenderRegistration(description="bench"), "bench", now)
        key = program["api_keys"]["partner"]
        assert keys.parse(key)
        # the payout tasks' samples: the member has points, the program a catalog and a budget
        version, items = load_dir(ROOT / "catalog")
        runtime.orders().put_catalog(version, [i.model_dump() for i in items], now)
        budget.fund(runtime.budgets(), pid, "EUR", 10_000_000, "bench-opening", "bench-opening", "bench", now)
        points.adjust(runtime.store(), runtime.program(pid), member["id"],
                      Adjustment(points=100_000_000, reason="bench opening balance", reference="bench-opening"),
                      "bench", now)
        numbers = itertools.count()

        def order_for(task: str, kind: str) -> str:
            """A new order of the kind, brought by the payout tasks before ``task`` to the state ``task`` takes
            over (verify_hold: PENDING; issue_*, record_donation, release: PROCESSING; deliver, capture:
            ISSUED)."""
            item, value = PAYOUT_ITEMS[kind]
            placed, _ = orders.place(runtime.orders(), runtime.starter(), runtime.program(pid), runtime.catalog().get,
                                     OrderRequest(member_id=member["id"], item_id=item, face_value=value,
                                                  delivery=Delivery(method="api")),
                                     f"bench-task-{next(numbers)}", "bench", runtime.now())
            event = {"program_id": pid, "order_id": placed["order_id"], "type": kind}
            if task != "verify_hold":
                payout_tasks.verify_hold(runtime.orders(), event, runtime.now())
            if task in ("deliver", "capture"):
                if kind == "voucher":
                    payout_tasks.issue_voucher(runtime.orders(), runtime.vault(), event, runtime.now())
                elif kind == "gift_card":
                    payout_tasks.issue_gift_card(runtime.orders(), runtime.vault(), runtime.provider(),
                                                 runtime.budgets(), event, runtime.now())
                else:
                    payout_tasks.record_donation(runtime.orders(), runtime.charities(), runtime.budgets(), event,
                                                 runtime.now())
            return placed["order_id"]

        def batch_for(task: str) -> str:
            """A new batch of two gift-card lines for the member, its first run begun by the tasks before ``task``
            (begin: queued; issue_line, fail_line: running; finish: its lines issued)."""
            lines = [{"recipient": {"member_id": member["id"]}, "item_id": "nordlicht-books-eur", "face_value": 2500,
                      "reference": f"line-{n}"} for n in (1, 2)]
            batch, _, _ = batch_logic.submit(
                runtime.batches(), runtime.batch_files(), runtime.batch_starter(), runtime.budgets(),
                runtime.program(pid), runtime.catalog().get, lambda wanted: runtime.store().get_members(pid, wanted),
                BatchRequest(lines=lines), f"bench-batch-{next(numbers)}", "bench", runtime.now())
            step = {"program_id": pid, "batch_id": batch.id, "run": 1}
            deps = batch_run.Deps(batches=runtime.batches(), orders=runtime.orders(), budgets=runtime.budgets(),
                                  vault=runtime.vault(), provider=runtime.provider(), program=runtime.program,
                                  find_item=runtime.catalog().get)
            if task != "begin":
                batch_run.begin(deps, step, runtime.now())
            for n in (1, 2) if task == "finish" else ():
                batch_run.issue_line(deps, {**step, "line": n}, runtime.now())
            return batch.id

        def event_for(module: str, function: str, text: str) -> Callable[[int], str]:
            """The sample as run ``n`` handles it: a payout or batch task's with a new order or batch in the state
            the task takes over, the accrual queue's with new transaction ids (a repeat would be a replay); the
            others as they are."""
            def made(n: int) -> str:
                if module == "treue.handlers.batch_tasks":
                    return text.replace("bat_01jdemo0000000000000000000", batch_for(function))
                event = json.loads(text)
                if module == "treue.handlers.payout":
                    event["order_id"] = order_for(function, event["type"])
                for record in event.get("Records", []) if module == "treue.handlers.accrual_queue" else []:
                    try:
                        body = json.loads(record["body"])
                    except ValueError:
                        continue  # the sample's poison message stays one
                    body["purchase"]["transaction_id"] += f"-run{next(numbers)}"
                    record["body"] = json.dumps(body)
                return json.dumps(event)
            return made

        floor = (FIRST_CALL.format(table=table), base)
        print(f"Cold start with the first event, the other functions (median of {RUNS}; moto server; each with its "
              "environment from the template and the variables Lambda sets); floor = import boto3 + client + one "
              "GetItem, a plain interpreter measured alternately with each row; spread = lowest–highest ratio of a run")
        print(f"  {'function':<30}{'floor':>6}{'ms':>6}{'ratio':>7}{'spread':>12}{'cpu':>6}   first event → outcome")
        floors: list[float] = []
        for name, (handler, variables) in sorted(functions.items()):
            module, function = handler.rsplit(".", 1)
            sample = OTHER_SAMPLES.get(handler) or (
                f"{module.rsplit('.', 1)[1]}/{function}.json" if function != "handler" else None)
            if sample is None:
                continue  # an API function: first_events
            env = {**base, **{k: resolve(v) for k, v in variables.items()},
                   **lambda_environment(handler, ROOT / "functions", outdir)}
            text = (ROOT / "events" / sample).read_text()
            for demo in ("prg_01demo0000000000000000000", "prg_01jdemo0000000000000000000"):
                text = text.replace(demo, pid)
            event = event_for(module, function, text)

            def side(n: int, event=event, module=module, function=function, env=env) -> Run:
                return HANDLE_OTHER.format(event=event(n), module=module, function=function), env

            run(*side(-1))  # warm the file caches
            row = alternate(floor, {"pyc": side})
            floors.extend(row.floor)
            label = name.removesuffix("Function" + name.rsplit("Function", 1)[-1]) if "Function" in name else name
            print(f"  {label:<30}{row.floor_ms():>6.0f}{row.ms('pyc'):>6.0f}{row.ratio('pyc'):>7.2f}"
                  f"{row.spread('pyc'):>12}{row.cpu_ratio('pyc'):>6.2f}   {sample} → {row.answers('pyc')}")
        print(f"  floor over the run: median {statistics.median(floors):.0f} ms, "
              f"{min(floors):.0f} to {max(floors):.0f}")
    finally:
        server.stop()


def asset_sizes(outdir: Path = ROOT / "cdk.out") -> None:
    """Deployment asset per function of the synthesized template (the code, without the dependency layer):
    the files as unpacked in the function and as a deflated zip, as CDK uploads it."""
    import io
    import json
    import zipfile

    if not (outdir / "Treue.template.json").exists():
        print(f"Deployment asset per function: no synthesized template in {outdir.name}/ (make synth)")
        return
    template = json.loads((outdir / "Treue.template.json").read_text())
    users: dict[str, list[str]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function" and "S3Key" in resource["Properties"].get("Code", {}):
            digest = resource["Properties"]["Code"]["S3Key"].split(".")[0]
            users.setdefault(digest, []).append(name)
    print("Deployment asset per function, without the layer (goal <= 1 MB)")
    print(f"  {'functions':<11}{'unpacked':>12}{'zip':>12}   asset")
    for digest, names in sorted(users.items(), key=lambda item: -len(item[1])):
        folder = outdir / f"asset.{digest}"
        if not folder.is_dir():
            print(f"  {len(names):<11}{'(not staged)':>24}   {digest[:12]}")
            continue
        buffer, unpacked = io.BytesIO(), 0
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                unpacked += path.stat().st_size
                archive.write(path, path.relative_to(folder))
        shown = ", ".join(n[:24] for n in names[:2]) + (" …" if len(names) > 2 else "")
        print(f"  {len(names):<11}{unpacked / 1e6:>10.2f}MB{len(buffer.getvalue()) / 1e6:>10.2f}MB   {shown}")


def round_trips() -> None:
    sys.path.insert(0, str(ROOT / "functions"))
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")})
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    import boto3
    from moto import mock_aws

    from tests.support import LambdaContext, api_event, create_table

    with mock_aws():
        os.environ["TABLE_NAME"] = create_table(boto3.client("dynamodb", region_name="eu-central-1"))
        from treue import runtime
        from treue.core import keys
        from treue.handlers import accrual, enrollment
        from treue.logic import provisioning
        from treue.store import table

        runtime.reset()
        created = provisioning.create_program(runtime.store(), "Bench", "EUR", runtime.now())
        auth = {"program_id": created["program_id"], "key_id": keys.parse(created["api_keys"]["partner"])[0],
                "scope": "partner"}
        calls: list[str] = []
        table.client().meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
        )

        def measure(label, module, event):
            calls.clear()
            response = module.handler(event, LambdaContext())
            assert response["statusCode"] < 300, response
            print(f"  {label:<34}{len(calls):>3}  {', '.join(calls)}")
            return response

        print("DynamoDB round trips per request (warm function)")
        event = api_event("enrollment/post_member.json", auth=auth, body={"email": "bench@example.com"})
        event["headers"].pop("Idempotency-Key")
        import json

        member = json.loads(measure("enroll", enrollment, event)["body"])
        mid = member["id"]

        def buy(txn):
            return api_event("accrual/post_purchase.json", auth=auth, path=f"/v1/members/{mid}/purchases",
                             path_parameters={"member_id": mid},
                             body={"transaction_id": txn, "amount": {"value": 1500, "currency": "EUR"},
                                   "occurred_at": "2026-11-01T10:00:00Z"})

        measure("accrue (first call: program read)", accrual, buy("b-0"))
        measure("accrue (program cached)", accrual, buy("b-1"))
        measure("accrue replay", accrual, buy("b-1"))


def finance_scaling(sizes=(100, 400, 1600)) -> None:
    """Sealing, verifying and reading the books as the number of postings grows (moto, in-process)."""
    sys.path.insert(0, str(ROOT / "functions"))
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")})
    import boto3
    from moto import mock_aws

    from infra.twin.serialize import serialize_moto_dynamodb
    from tests.support import create_table

    serialize_moto_dynamodb()  # as the twin runs moto: one call at a time, transactions cost what they touch
    print("Audit trail and finance reads against moto, in-process (ms; per 1,000 postings in brackets)")
    print(f"  {'postings':>9}{'write':>14}{'seal':>14}{'verify':>14}{'journal':>14}{'reconcile':>14}")
    for size in sizes:
        with mock_aws():
            os.environ["TABLE_NAME"] = create_table(boto3.client("dynamodb", region_name="eu-central-1"))
            from treue import runtime
            from treue.handlers import report_views
            from treue.logic import members, points, provisioning, report_jobs
            from treue.logic.models import Enrollment, Purchase
            from treue.store.reports import Reports

            runtime.reset()
            store = runtime.store()
            now = runtime.now()
            program = store.get_program(provisioning.create_program(store, "Bench", "EUR", now)["program_id"])
            mids = [members.enroll(store, program.id, Enrollment(external_id=f"b{i}"), now)[0]["id"]
                    for i in range(20)]
            t0 = time.perf_counter()
            for i in range(size):
                points.accrue(store, program, mids[i % 20], Purchase(
                    transaction_id=f"t{i}", amount={"value": 1000, "currency": "EUR"},
                    occurred_at="2026-11-01T00:00:00Z"), "bench", now)
            write = time.perf_counter() - t0
            trail = runtime.audit_trail()
            t0 = time.perf_counter()
            trail.seal_program(program.id)
            seal = time.perf_counter() - t0
            t0 = time.perf_counter()
            assert trail.verify(program.id).intact
            verify = time.perf_counter() - t0
            t0 = time.perf_counter()
            rows = sum(1 for _ in Reports(store).journal(program.id))
            journal = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = report_jobs.run_now("reconciliation", program.id, {"date": now[:10]},
                                         report_views.sources(program.id), 1000, lambda: True)
            reconcile = time.perf_counter() - t0
            assert rows == size and report["differences"] == []

            def cell(seconds: float, n: int = size) -> str:
                return f"{seconds * 1000:>7.0f} ({seconds * 1e6 / n:>4.0f})"

            print(f"  {size:>9}{cell(write)}{cell(seal)}{cell(verify)}{cell(journal)}{cell(reconcile)}")


def sealer_throughput(programs: int = int(os.environ.get("BENCH_SEAL_PROGRAMS", "4")),
                      backlog: int = int(os.environ.get("BENCH_SEAL_BACKLOG", "300"))) -> None:
    """The audit sealer's handler over a backlog spread over several programs (moto, in-process): records
    sealed per second, and each program's share of a run capped at half the backlog (fairness)."""
    sys.path.insert(0, str(ROOT / "functions"))
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")})
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    import boto3
    from moto import mock_aws

    from infra.twin.serialize import serialize_moto_dynamodb
    from tests.support import LambdaContext, create_table

    serialize_moto_dynamodb()  # as the twin: transactions cost what they touch, not a copy of the table
    with mock_aws():
        os.environ["TABLE_NAME"] = create_table(boto3.client("dynamodb", region_name="eu-central-1"))
        from treue import runtime
        from treue.core import audit
        from treue.handlers import audit as sealer
        from treue.logic import provisioning
        from treue.store.table import audit_put

        runtime.reset()
        store = runtime.store()
        pids = [provisioning.create_program(store, f"Bench {i}", "EUR", runtime.now())["program_id"]
                for i in range(programs)]

        def fill() -> int:
            for pid in pids:
                for i in range(backlog // programs):
                    record = audit.new_record(pid, "bench.record", "bench", f"r{i}", runtime.now(), {"i": i})
                    store.ddb.put_item(**audit_put(store.table, record)["Put"])
            return sum(runtime.audit_trail().pending_count(pid) for pid in pids)

        waiting = fill()
        capped = runtime.audit_trail().seal_pending(max_records=waiting // 2)
        print(f"Audit sealer, {programs} programs: a run capped at {waiting // 2} of {waiting} waiting records "
              f"sealed per program: {[capped.get(pid, 0) for pid in pids]}")
        waiting = sum(runtime.audit_trail().pending_count(pid) for pid in pids) + fill()
        t0 = time.perf_counter()
        sealed = sealer.handler({}, LambdaContext())["sealed"]
        seconds = time.perf_counter() - t0
        total = sum(sealed.values())
        print(f"  one handler run: {total} of {waiting} records in {seconds:.1f} s = {total / seconds:.0f} records/s "
              f"on moto in-process; the schedule's old cap was 5,000 records/min = 83 records/s")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def twin_orders(per_type: int = int(os.environ.get("BENCH_ORDERS", "15"))) -> None:
    import json
    import tempfile
    import time
    import uuid

    sys.path.insert(0, str(ROOT / "functions"))
    from treue.client import TreueClient

    state_dir = Path(tempfile.mkdtemp(prefix="treue-bench-"))
    proc = subprocess.Popen([sys.executable, "-m", "infra.twin", "--port", "0", "--state-dir", str(state_dir)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "functions")})
    try:
        state_file = state_dir / "local.json"
        deadline = time.monotonic() + 120
        while not state_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the twin did not start")
            time.sleep(0.2)
        state = json.loads(state_file.read_text())
        partner = TreueClient(state["url"], state["api_keys"]["partner"], timeout=30)
        admin = TreueClient(state["url"], state["api_keys"]["admin"], timeout=30)

        member = partner.enroll_member({"email": "bench@example.com"})["id"]
        admin.adjust_member_points(member, {"points": 10**7, "reason": "bench", "reference": "b"})
        kinds = {
            "gift card": {"item_id": "nordlicht-books-eur", "denomination": 1000},
            "voucher": {"item_id": "voucher-5-off"},
            "donation": {"item_id": "kuestenwald", "face_value": 500},
        }
        print(f"Order latency on the twin ({per_type} sequential orders per type; p50 / p95 in ms)")
        print(f"  {'reward':<12}{'POST /v1/orders':>20}{'until COMPLETED':>20}")
        for label, fields in kinds.items():
            accepted_ms, completed_ms = [], []
            for _ in range(per_type):
                body = {"member_id": member, "delivery": {"method": "api"}, **fields}
                t0 = time.perf_counter()
                order = partner.create_order(body, idempotency_key=uuid.uuid4().hex)
                accepted_ms.append((time.perf_counter() - t0) * 1000)
                while partner.get_order(order["order_id"])["status"] not in ("COMPLETED", "FAILED"):
                    time.sleep(0.01)
                completed_ms.append((time.perf_counter() - t0) * 1000)
            print(f"  {label:<12}{_percentile(accepted_ms, .5):>10.0f} / {_percentile(accepted_ms, .95):<7.0f}"
                  f"{_percentile(completed_ms, .5):>10.0f} / {_percentile(completed_ms, .95):<7.0f}")
    finally:
        proc.terminate()
        proc.wait(20)


def start_twin(*args: str) -> tuple[subprocess.Popen, dict]:
    import json
    import tempfile

    state_dir = Path(tempfile.mkdtemp(prefix="treue-bench-"))
    proc = subprocess.Popen([sys.executable, "-m", "infra.twin", "--port", "0", "--state-dir", str(state_dir), *args],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "functions")})
    state_file = state_dir / "local.json"
    deadline = time.monotonic() + 120
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the twin did not start")
        time.sleep(0.2)
    return proc, json.loads(state_file.read_text())


def twin_batches(sizes: tuple[int, ...] = tuple(int(n) for n in os.environ.get(
        "BENCH_BATCH_SIZES", "100,1000,10000").split(","))) -> None:
    import uuid

    import boto3

    sys.path.insert(0, str(ROOT / "functions"))
    from treue.client import TreueClient
    from treue.logic.batches import line_reward_id
    from treue.providers.simulated import set_fault

    # the audit sealer at its deployed rate (1 min; the twin's default of 5 s is for watching the demo):
    # moto answers index queries by scanning the table (231 ms at 150,000 items), and the sealer makes 5
    proc, state = start_twin("--schedule-seconds", "60")
    ddb = boto3.client("dynamodb", endpoint_url=state["aws_endpoint"], region_name=state["region"],
                       aws_access_key_id="twin", aws_secret_access_key="twin")
    pid, table = state["program_id"], state["table"]

    clients = {scope: TreueClient(state["url"], key, timeout=120) for scope, key in state["api_keys"].items()}

    def call(method, path, body=None, scope="partner", headers=None):
        """(status, body) of one request, whatever the status (treue.client, no retry)."""
        answer = clients[scope].send(method, path, body=body, headers=headers)
        return answer.status, answer.body if answer.body is not None else {}

    def wait(batch_id):
        while True:
            _, view = call("GET", f"/v1/batches/{batch_id}")
            if view["status"] in ("completed", "completed_with_failures", "halted"):
                return view
            time.sleep(0.5)

    def budget():
        _, out = call("GET", "/v1/finance/budget?currency=EUR", scope="finance")
        return next(b for b in out["budgets"] if b["currency"] == "EUR")["available"]

    try:
        status, out = call("POST", "/v1/finance/fundings", scope="admin", headers={"Idempotency-Key": "bench"},
                           body={"amount": {"value": 10 ** 9, "currency": "EUR"}, "reference": "bench"})
        assert status in (200, 201), out
        print("Bulk issuance on the twin (gift cards, 20 lines at a time; accept = POST /v1/batches answer)")
        print(f"  {'lines':>7}{'accept ms':>11}{'run s':>9}{'ms/line':>9}{'lines/s':>9}"
              f"{'failed':>8}{'retry s':>9}  exactly once")
        for n in sizes:
            faulty = n >= 1000 and n == max(sizes)
            brands = [("kaffeekranz-eur", 500), ("stadtkino-eur", 1000)]
            lines = [{"reference": f"b{n}-{i:06d}", "item_id": brands[i % 2][0], "face_value": brands[i % 2][1],
                      "recipient": {"email": f"p{i}@example.com"}} for i in range(1, n + 1)]
            if faulty:  # a share of lines fails: 3% refused for good, 2% a 503 that a retry of the task heals
                set_fault(ddb, table, pid, "rejected", brand="Kaffeekranz", times=n * 3 // 100)
                set_fault(ddb, table, pid, "5xx", brand="Stadtkino", times=n * 2 // 100)
            before = budget()
            t0 = time.perf_counter()
            status, accepted = call("POST", "/v1/batches", {"lines": lines, "name": f"bench {n}"},
                                    headers={"Idempotency-Key": uuid.uuid4().hex})
            assert status == 202, accepted
            accept_ms = (time.perf_counter() - t0) * 1000
            view = wait(accepted["batch_id"])
            run_s = time.perf_counter() - t0
            failed = view["counts"]["failed"]
            retry_s = 0.0
            if failed:
                set_fault(ddb, table, pid, None, brand="Kaffeekranz")
                set_fault(ddb, table, pid, None, brand="Stadtkino")
                t1 = time.perf_counter()
                status, out = call("POST", f"/v1/batches/{accepted['batch_id']}/retry")
                assert status == 202, out
                view = wait(accepted["batch_id"])
                retry_s = time.perf_counter() - t1
            once = _exactly_once(call, ddb, table, pid, accepted["batch_id"], n, line_reward_id)
            paid = before - budget()
            if paid != accepted["cost"][0]["value"]:  # face value + fee of every line, once
                once = f"NO: the budget paid {paid}, the lines cost {accepted['cost'][0]['value']}"
            elif view["counts"]["issued"] != n:
                once = f"NO: {view['counts']}"
            print(f"  {n:>7,}{accept_ms:>11.0f}{run_s:>9.1f}{run_s * 1000 / n:>9.1f}{n / run_s:>9.1f}"
                  f"{failed:>8}{retry_s:>9.1f}  {once}")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _exactly_once(call, ddb, table, pid, batch_id, n, line_reward_id) -> str:
    """Every line issued once: its current reward has a live card at the provider, every earlier
    attempt's reward has none (never issued, or canceled when it failed)."""
    lines, cursor = [], None
    while True:
        _, page = call("GET", f"/v1/batches/{batch_id}/lines?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        lines += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if len(lines) != n or any(x["status"] != "issued" for x in lines):
        return f"NO: {len(lines)} lines, {sum(x['status'] == 'issued' for x in lines)} issued"
    for x in lines:
        for attempt in range(1, x["attempt"] + 1):
            rid = line_reward_id(batch_id, x["line"], attempt)
            got = ddb.get_item(TableName=table, Key={"pk": {"S": f"P#{pid}#SIMGC#{rid}"}, "sk": {"S": "ISSUANCE"}})
            live = "Item" in got and got["Item"]["status"]["S"] == "ISSUED"
            if live != (attempt == x["attempt"] and rid == x["reward_id"]):
                return f"NO: line {x['line']} attempt {attempt}: {'a' if live else 'no'} live card"
    return "yes"


def report_jobs_bench(sizes: tuple[int, ...] = tuple(int(n) for n in os.environ.get(
        "BENCH_REPORT_SIZES", "1000,10000").split(","))) -> None:
    """A day's reconciliation of N orders (moto, in-process): the synchronous route (its 29 s request
    budget) and the report job (worker invocations of 300 s through the report queue). Orders, their
    hold and capture postings and the members' balances are written straight through the store."""
    sys.path.insert(0, str(ROOT / "functions"))
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")})
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    import json

    import boto3
    from moto import mock_aws

    from infra.twin.serialize import serialize_moto_dynamodb
    from tests.support import LambdaContext, api_event, create_table

    class Invocation(LambdaContext):
        def __init__(self, seconds: float) -> None:
            self.deadline = time.monotonic() + seconds

        def get_remaining_time_in_millis(self) -> int:
            return max(0, int((self.deadline - time.monotonic()) * 1000))

    serialize_moto_dynamodb()
    print("Reconciliation of one day's orders (moto in-process; each order: hold + capture postings)")
    print(f"  {'orders':>8}{'seed s':>9}{'sync route':>31}{'job s':>9}{'invocations':>13}{'pages':>7}  "
          "job result = synchronous code's answer")
    for size in sizes:
        with mock_aws():
            region = "eu-central-1"
            ddb = boto3.client("dynamodb", region_name=region)
            os.environ["TABLE_NAME"] = create_table(ddb)
            boto3.client("s3", region_name=region).create_bucket(
                Bucket="bench-reports", CreateBucketConfiguration={"LocationConstraint": region})
            sqs = boto3.client("sqs", region_name=region)
            queue = sqs.create_queue(QueueName="bench-reports")["QueueUrl"]
            os.environ.update({"BATCH_BUCKET": "bench-reports", "REPORT_QUEUE_URL": queue})
            from treue import runtime
            from treue.core import keys
            from treue.handlers import finance as finance_fn
            from treue.handlers import report_worker
            from treue.logic import provisioning
            from treue.store import clients
            from treue.store.items import to_item
            from treue.store.schema import journal_keys, member_pk

            clients.reset()
            runtime.reset()
            store = runtime.store()
            now = runtime.now()
            day = now[:10]
            created = provisioning.create_program(store, "Bench", "EUR", now)
            pid = created["program_id"]
            auth = {"program_id": pid, "key_id": keys.parse(created["api_keys"]["finance"])[0], "scope": "finance"}
            t0 = time.perf_counter()
            items = []
            for i in range(size):
                oid, mid = f"ord_bench{i:017d}", f"mbr_bench{i % 500:017d}"
                at = f"{day}T00:00:{i % 60:02d}.{i % 1000:03d}Z"
                items.append({"pk": f"P#{pid}#ORDER#{oid}", "sk": "ORDER", "gsi1pk": f"P#{pid}#ORDERS",
                              "gsi1sk": f"{at}#{oid}", "id": oid, "program_id": pid, "member_id": mid,
                              "type": "voucher", "status": "COMPLETED", "points": 500, "currency": "EUR",
                              "item_id": "voucher-5-off", "item": {"name": "5 EUR off"}, "quantity": 1,
                              "face_value": 500, "created_at": at})
                for kind, debit, credit in (("hold", "member:available", "member:held"),
                                            ("capture", "member:held", "program:redeemed")):
                    eid = f"pst_{kind}{i:017d}"
                    items.append({"pk": member_pk(pid, mid), "sk": f"ENTRY#{eid}", **journal_keys(pid, at, eid),
                                  "id": eid, "type": kind, "points": 500, "debit": debit, "credit": credit,
                                  "member_id": mid, "order_id": oid, "created_at": at})
            for start in range(0, len(items), 25):
                ddb.batch_write_item(RequestItems={os.environ["TABLE_NAME"]: [
                    {"PutRequest": {"Item": to_item(x)}} for x in items[start:start + 25]]})
            seed = time.perf_counter() - t0

            t0 = time.perf_counter()
            event = api_event("finance/get_reconciliation.json", auth=auth, query={"date": day})
            sync = finance_fn.handler(event, Invocation(29))
            sync_seconds = time.perf_counter() - t0
            sync_cell = f"{sync['statusCode']} {json.loads(sync['body']).get('type', '').rsplit('/', 1)[-1] or 'ok'}"

            event = api_event("finance/post_report.json", auth=auth, body={"type": "reconciliation", "date": day},
                              headers={"Idempotency-Key": f"bench-{size}"})
            report_id = json.loads(finance_fn.handler(event, LambdaContext())["body"])["report_id"]
            t0 = time.perf_counter()
            invocations = 0
            while True:
                out = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"]).get("Messages", [])
                if not out:
                    break
                m = out[0]
                record = {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "attributes": m["Attributes"], "eventSource": "aws:sqs"}
                assert not report_worker.handler({"Records": [record]}, Invocation(300))["batchItemFailures"]
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
                invocations += 1
            job_seconds = time.perf_counter() - t0
            jobs, files, _ = runtime.report_jobs()
            report = jobs.get(pid, report_id)
            assert report.status == "completed" and report.result, report
            result = json.loads(files.get_result(report.result["key"]))
            if sync["statusCode"] == 200:
                expected = json.loads(sync["body"])
            else:  # the synchronous code without the request's time limit
                from treue.handlers import report_views
                from treue.logic import report_jobs

                expected = report_views.as_json("reconciliation", report_jobs.run_now(
                    "reconciliation", pid, {"date": day}, report_views.sources(pid), 1000, lambda: True))
            same = "yes" if result == expected else "NO"
            assert result["checked"]["orders"] == size and result["differences"] == []
            print(f"  {size:>8,}{seed:>9.1f}{sync_cell + f' {sync_seconds:.1f} s':>31}{job_seconds:>9.1f}"
                  f"{invocations:>13}{report.progress['pages']:>7}  {same}")


# ---------------------------------------------------------------- cost of 1M accruals
# AWS list prices for Europe (Frankfurt), eu-central-1, in USD, on-demand, without free tiers. Taken on
# 2026-12-03 as last known from the pricing pages named on each line (this machine has no internet, and the
# stored documentation has the pages' US East rates only): check them against the pages before quoting a total.
API_GATEWAY_REST_PER_MILLION = 3.70  # aws.amazon.com/api-gateway/pricing: REST API calls, first 333 million
LAMBDA_REQUESTS_PER_MILLION = 0.20  # aws.amazon.com/lambda/pricing: requests
LAMBDA_GB_SECOND = 0.0000166667  # aws.amazon.com/lambda/pricing: duration, x86, first 6 billion GB-seconds
SQS_REQUESTS_PER_MILLION = 0.40  # aws.amazon.com/sqs/pricing: standard queue requests (each 64 KB chunk one)
DYNAMODB_WRU_PER_MILLION = 0.7625  # aws.amazon.com/dynamodb/pricing/on-demand: write request units
DYNAMODB_RRU_PER_MILLION = 0.1525  # aws.amazon.com/dynamodb/pricing/on-demand: read request units
CLOUDWATCH_LOGS_PER_GB = 0.63  # aws.amazon.com/cloudwatch/pricing: Logs, standard data ingested
XRAY_TRACES_PER_MILLION = 5.00  # aws.amazon.com/xray/pricing: traces recorded
DATA_OUT_PER_GB = 0.09  # aws.amazon.com/ec2/pricing/on-demand: data transfer out to the internet, first 10 TB
LOG_EVENT_OVERHEAD = 26  # bytes CloudWatch Logs counts per log event besides its message
# X-Ray's default sampling rule (docs.aws.amazon.com/xray/latest/devguide/xray-console-sampling.html), as (fixed
# rate, reservoir per second): the first request each second, then 5% of the rest. Lambda samples so where no
# upstream trace header decided (the queue consumer, the audit sealer; no sampling rule applies to Lambda); the
# API stage by the stack's rule when the template has one (stage_settings), and its functions follow the stage.
DEFAULT_SAMPLING = (0.05, 1)
MONTH_SECONDS = 30 * 24 * 3600
# Not measured: API Gateway's execution log of one successful request through the authorizer and a Lambda
# proxy integration, without data trace, by the stage's logging level: about 20 lines of about 100 bytes at
# INFO; none at ERROR (it logs failures only) or OFF
EXECUTION_LOG_BYTES = {"INFO": 2000, "ERROR": 0, "OFF": 0}
SEALER_RUNS_PER_MONTH = MONTH_SECONDS // 60  # the audit sealer's schedule: every minute, records or not


def item_size(item: dict) -> int:
    """An item's size as DynamoDB bills it: each attribute's name in UTF-8 bytes plus its value's size."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":  # about one byte per two significant digits, plus one
        digits = v.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: x}) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(_value_size(x) + 1 for x in v)
    raise ValueError(f"no size for attribute type {kind}")


def read_units(size: int, consistent: bool = False, transactional: bool = False) -> float:
    """Read request units of reading ``size`` bytes at once (an item, or a query's page): one per 4 KB,
    started; half for an eventually consistent read, two for a transactional one."""
    units = max(1, -(-size // 4096))
    return units * 2 if transactional else units if consistent else units / 2


def write_units(size: int, transactional: bool = False) -> int:
    """Write request units of writing one item of ``size`` bytes (the larger of before and after): one per
    KB, started; two for a write in a transaction (a condition check in one counts as a write)."""
    return max(1, -(-size // 1024)) * (2 if transactional else 1)


class UnitCounter:
    """Counts the read and write request units of the calls a DynamoDB client makes: the items' sizes are
    read before and after each write through a second client, the index's writes (it projects every
    attribute) counted for each written item that carries (or carried) the index's keys."""

    WRITES = ("PutItem", "UpdateItem", "DeleteItem")

    def __init__(self, client, raw, table: str) -> None:
        from treue.store import schema

        self.raw, self.table, self.schema = raw, table, schema
        self.rru = self.wru = 0.0
        self.enabled = True
        self.calls: list[str] = []
        self.writes: list[tuple[str, str, int, float]] = []  # (operation, item's sort key, bytes, units)
        self._before: list[tuple[dict, list[tuple[dict, dict | None, bool]]]] = []
        client.meta.events.register("before-parameter-build.dynamodb.*", self._on_before)
        client.meta.events.register("after-call.dynamodb.*", self._on_after)

    def reset(self) -> None:
        self.rru = self.wru = 0.0
        self.calls.clear()
        self.writes.clear()

    def _key(self, item: dict) -> dict:
        return {k: item[k] for k in self.schema.TABLE_KEYS}

    def _item(self, key: dict) -> dict | None:
        return self.raw.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")

    def _writes(self, model_name: str, params: dict) -> list[tuple[dict, bool]]:
        if model_name in self.WRITES:
            return [(params["Key"] if "Key" in params else self._key(params["Item"]), False)]
        if model_name == "TransactWriteItems":
            out = []
            for op in params["TransactItems"]:
                (_, body), = op.items()
                out.append((body["Key"] if "Key" in body else self._key(body["Item"]), True))
            return out
        if model_name == "BatchWriteItem":
            return [(r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"], False)
                    for requests in params["RequestItems"].values() for r in requests]
        return []

    def _page_read(self, name: str, params: dict) -> list[dict]:
        """The items a Query or Scan page read, whole: DynamoDB bills what it reads, before a filter leaves items
        out and whatever attributes a projection returns (the same page again without either)."""
        import re

        again = {k: v for k, v in params.items() if k not in ("ProjectionExpression", "FilterExpression", "Select")}
        used = set(re.findall(r"[#:][A-Za-z0-9_]+", again.get("KeyConditionExpression", "")))
        for kind in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            kept = {k: v for k, v in again.pop(kind, {}).items() if k in used}
            if kept:
                again[kind] = kept
        return (self.raw.query if name == "Query" else self.raw.scan)(**again).get("Items", [])

    def _on_before(self, model, params, **_) -> None:
        if not self.enabled:
            return
        self.calls.append(model.name)
        self._before.append((params, [(self._key(key), self._item(self._key(key)), tx)
                                      for key, tx in self._writes(model.name, params)]))

    def _on_after(self, model, parsed, **_) -> None:
        if not self.enabled:
            return
        params, before = self._before.pop()
        if "Error" in parsed:
            return
        name = model.name
        if name == "GetItem":
            self.rru += read_units(item_size(parsed.get("Item", {})), params.get("ConsistentRead", False))
        elif name in ("Query", "Scan"):
            items = parsed.get("Items", [])
            if "ProjectionExpression" in params or "FilterExpression" in params:
                items = self._page_read(name, params)
            self.rru += read_units(sum(item_size(i) for i in items), params.get("ConsistentRead", False))
        elif name == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                consistent = params["RequestItems"][table].get("ConsistentRead", False)
                self.rru += sum(read_units(item_size(i), consistent) for i in items)
        elif name == "TransactGetItems":
            self.rru += sum(read_units(item_size(r.get("Item", {})), transactional=True)
                            for r in parsed.get("Responses", []))
        for key, old, transactional in before:
            new = self._item(key)
            size = max(item_size(old or {}), item_size(new or {}))
            units = write_units(size, transactional)
            indexed = [i for i in (old, new) if i and self.schema.GSI_PK in i]
            if indexed:  # the index's copy: one write, or a delete and a put when its key moved
                moved = len(indexed) == 2 and (old[self.schema.GSI_PK], old.get(self.schema.GSI_SK)) != (
                    new[self.schema.GSI_PK], new.get(self.schema.GSI_SK))
                units += sum(write_units(item_size(i)) for i in indexed) if moved else write_units(
                    item_size(indexed[-1]))
            self.wru += units
            self.writes.append((name, key[self.schema.SK]["S"].split("#")[0], size, units))


def lambda_usd(invocations: float, billed_ms: float, memory_mb: int) -> float:
    """Per 1M accruals: ``invocations`` per accrual, each billed ``billed_ms`` at ``memory_mb``."""
    gb_seconds = invocations * 1e6 * billed_ms / 1000 * memory_mb / 1024
    return invocations * LAMBDA_REQUESTS_PER_MILLION + gb_seconds * LAMBDA_GB_SECOND


def dynamodb_usd(wru: float, rru: float) -> float:
    return wru * DYNAMODB_WRU_PER_MILLION + rru * DYNAMODB_RRU_PER_MILLION


def logs_usd(lines: float, message_bytes: float) -> float:
    """Per 1M accruals: ``lines`` log events of ``message_bytes`` in all, per accrual."""
    return (message_bytes + lines * LOG_EVENT_OVERHEAD) * 1e6 / 1e9 * CLOUDWATCH_LOGS_PER_GB


def sampled_fraction(per_second: float, sampling: tuple[float, int] = DEFAULT_SAMPLING) -> float:
    """The share of requests a sampling rule of (fixed rate, reservoir) traces when they arrive at random
    (Poisson) at ``per_second``: in each second the first ``reservoir`` (as many as come), then the fixed rate
    of the others."""
    rate, reservoir = sampling
    if per_second <= 0:
        return 1.0 if reservoir else rate
    # E[min(N, reservoir)] for N ~ Poisson(per_second)
    p, in_reservoir = math.exp(-per_second), 0.0
    for n in range(reservoir):
        in_reservoir += (reservoir - n) * p  # each n < reservoir leaves reservoir - n unused: subtract those
        p *= per_second / (n + 1)
    in_reservoir = reservoir - in_reservoir
    return (in_reservoir + rate * (per_second - in_reservoir)) / per_second


def stage_settings(resources: dict) -> dict:
    """The API stage's execution logging and X-Ray sampling in the synthesized template: the logging level
    and data trace of its method settings, and the (fixed rate, reservoir) of a sampling rule of its own
    (the service name ``<api>/<stage>``), else the default rule."""
    [(stage_lid, stage)] = [(k, r) for k, r in resources.items() if r["Type"] == "AWS::ApiGateway::Stage"]
    api = resources[stage["Properties"]["RestApiId"]["Ref"]]["Properties"]["Name"]
    settings = stage["Properties"].get("MethodSettings", [])
    level = next((m.get("LoggingLevel", "OFF") for m in settings if m.get("ResourcePath") == "/*"), "OFF")
    data_trace = any(m.get("DataTraceEnabled") for m in settings)
    service = f"{api}/{stage['Properties']['StageName']}"
    rules = [r["Properties"]["SamplingRule"] for r in resources.values() if r["Type"] == "AWS::XRay::SamplingRule"]
    own = sorted((r for r in rules if r.get("ServiceName") in (service, "*")), key=lambda r: r["Priority"])
    sampling = (own[0]["FixedRate"], own[0]["ReservoirSize"]) if own else DEFAULT_SAMPLING
    return {"logging_level": level, "data_trace": data_trace, "sampling": sampling,
            "rule": own[0].get("RuleName", "the stack's rule") if own else "the default rule"}


def xray_usd(traces: float, fraction: float) -> float:
    return traces * fraction * XRAY_TRACES_PER_MILLION


def sqs_usd(requests: float) -> float:
    return requests * SQS_REQUESTS_PER_MILLION


@dataclass
class PathUsage:
    """What one accrual uses on one path (per accrual: a batch's share where a batch serves several)."""

    name: str
    gateway_requests: float = 0  # API Gateway REST requests
    functions: list[tuple[str, float, float, int]] = field(default_factory=list)  # (name, invocations, ms, MB)
    sqs_requests: float = 0
    wru: float = 0
    rru: float = 0
    sealing: tuple[float, float] = (0, 0)  # (WRU, RRU): the audit sealer chaining the accrual's audit record
    log_lines: float = 0
    log_bytes: float = 0
    traces: list[tuple[str, float, float]] = field(default_factory=list)  # (what, traces started, share recorded)
    bytes_out: float = 0  # answered to the internet


def cost_lines(usage: PathUsage) -> list[tuple[str, str, float]]:
    """(component, what one accrual uses, USD per 1M accruals) for each component of the path, and the total."""
    lines = []
    if usage.gateway_requests:
        lines.append(("API Gateway REST", f"{usage.gateway_requests:g} request",
                      usage.gateway_requests * API_GATEWAY_REST_PER_MILLION))
    for name, invocations, ms, memory in usage.functions:
        billed = billed_ms(ms)
        lines.append((f"Lambda {name} ({memory} MB)", f"{invocations:.3g} × {billed} ms",
                      lambda_usd(invocations, billed, memory)))
    if usage.sqs_requests:
        lines.append(("SQS", f"{usage.sqs_requests:g} requests", sqs_usd(usage.sqs_requests)))
    lines.append(("DynamoDB on-demand", f"{usage.wru:.3g} WRU, {usage.rru:.3g} RRU",
                  dynamodb_usd(usage.wru, usage.rru)))
    if any(usage.sealing):
        lines.append(("DynamoDB, audit sealing", f"{usage.sealing[0]:.3g} WRU, {usage.sealing[1]:.3g} RRU",
                      dynamodb_usd(*usage.sealing)))
    lines.append(("CloudWatch Logs ingestion", f"{usage.log_lines:.3g} lines, {usage.log_bytes:,.0f} B",
                  logs_usd(usage.log_lines, usage.log_bytes)))
    for what, traces, sampled in usage.traces:
        lines.append((f"X-Ray traces, {what}", f"{traces:.3g} × {sampled:.0%} sampled", xray_usd(traces, sampled)))
    if usage.bytes_out:
        lines.append(("Data transfer out", f"{usage.bytes_out:,.0f} B", usage.bytes_out * 1e6 / 1e9 * DATA_OUT_PER_GB))
    lines.append(("total", "", sum(usd for _, _, usd in lines)))
    return lines


def stream_consumer(name: str, ms: float, wru: float, rru: float, lines: float, message_bytes: float, memory: int,
                    rate: float, units_per_event: bool = False) -> dict:
    """What a consumer of the table stream (the webhook fan-out, Progress) adds to one accrual, from one invocation
    on one accrual's event (its duration, request units and log output). Lambda invokes it once per stream batch,
    and a batch is the first event and those of the next second (the mappings' batching window of 1 s), so
    ``1 / (1 + rate)`` invocations per accrual at ``rate`` accruals a second, each billed, logged (with Lambda's own
    START, END and REPORT lines) and sampled by X-Ray's default rule as one. Its request units are per batch too
    (the fan-out reads a program's endpoints once a batch), or with ``units_per_event`` once per event (Progress
    reads each purchase's posting, member and rules)."""
    share = 1 / (1 + rate)
    units = 1 if units_per_event else share
    platform_lines, platform_bytes = platform_log(memory)
    return {"function": (name, share, ms, memory), "wru": units * wru, "rru": units * rru,
            "log_lines": share * (platform_lines + lines), "log_bytes": share * (platform_bytes + message_bytes),
            "traces": (name, share, sampled_fraction(rate * share))}


def billed_ms(ms: float) -> int:
    """Lambda bills each invocation's duration rounded up to the millisecond."""
    return max(1, math.ceil(ms))


def platform_log(memory: int) -> tuple[int, int]:
    """(lines, bytes) Lambda writes itself per invocation: START, END and REPORT (with the X-Ray line)."""
    rid = "8f507cfc-4e5a-4b1c-9a6e-2f1d3c4b5a69"
    lines = [f"START RequestId: {rid} Version: $LATEST", f"END RequestId: {rid}",
             f"REPORT RequestId: {rid}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: {memory} MB\t"
             "Max Memory Used: 98 MB\t\nXRAY TraceId: 1-6756d2a0-2b0c4e5f6a7b8c9d0e1f2a3b\t"
             "SegmentId: 4a5b6c7d8e9f0a1b\tSampled: true\t"]
    return len(lines), sum(len(line) for line in lines)


def access_log_line() -> int:
    """Bytes of one line of the API's access log (the stack's format: JSON with the standard fields)."""
    import json

    return len(json.dumps({"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "ip": "203.0.113.10", "user": "-",
                           "requestTime": "03/Dec/2026:10:00:00 +0000", "httpMethod": "POST",
                           "resourcePath": "/v1/members/{member_id}/purchases", "status": "201",
                           "protocol": "HTTP/1.1", "responseLength": "312"}))


class Captured:
    """What a call writes to stdout and stderr (as Lambda ships it to CloudWatch Logs), at the descriptors."""

    def __enter__(self):
        import tempfile

        sys.stdout.flush()
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.ms = (time.perf_counter() - self.t0) * 1000
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        self.file.seek(0)
        text = self.file.read()
        self.file.close()
        self.lines = len(text.splitlines())
        self.bytes = len(text) - self.lines  # without the newlines
        return False


def accrual_cost(runs: int = int(os.environ.get("BENCH_COST_RUNS", "30"))) -> None:
    """Cost of 1M accruals, through the API and through the queue, from warm durations and the request units
    counted on moto (in-process), at the list prices above."""
    import json
    from datetime import timedelta

    sys.path.insert(0, str(ROOT / "functions"))
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")})
    os.environ.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "Treue",
                       "POWERTOOLS_SERVICE_NAME": "accrual"})
    import boto3
    from moto import mock_aws

    from infra.twin.serialize import serialize_moto_dynamodb
    from tests.support import LambdaContext, api_event, create_table

    serialize_moto_dynamodb()  # as the twin runs moto: a transaction costs what it touches, not a table copy
    # the stack's, if not synthesized
    memory = {"authorizer": 256, "accrual": 512, "accrual_queue": 512, "audit": 512, "webhook_fanout": 512,
              "progress": 512, "points_expire": 1024, "points_activate": 512}
    # without a template: what a stage without settings of its own costs (the default rule, logging at INFO)
    stage = {"logging_level": "INFO", "data_trace": False, "sampling": DEFAULT_SAMPLING,
             "rule": "no synthesized template in cdk.out/ (make synth): assumed the default rule"}
    template = ROOT / "cdk.out" / "Treue.template.json"
    if template.exists():
        resources = json.loads(template.read_text())["Resources"]
        for r in resources.values():
            handler = r["Properties"].get("Handler", "") if r["Type"] == "AWS::Lambda::Function" else ""
            if handler.startswith("treue.handlers.") and handler.split(".")[2] in memory:
                memory[handler.split(".")[2]] = r["Properties"].get("MemorySize", 128)
            if handler.startswith("treue.handlers.points_lifecycle."):  # two functions of one module
                memory[f"points_{handler.rsplit('.', 1)[1]}"] = r["Properties"].get("MemorySize", 128)
        stage = stage_settings(resources)

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        os.environ["TABLE_NAME"] = table = create_table(ddb, "bench-cost")
        dlq = boto3.client("sqs", region_name="eu-central-1").create_queue(QueueName="bench-dlq")["QueueUrl"]
        os.environ["ACCRUAL_DLQ_URL"] = dlq
        from treue import runtime
        from treue.core import keys, times
        from treue.handlers import accrual, accrual_queue, authorizer, webhook_fanout
        from treue.handlers import audit as sealer
        from treue.handlers import program as program_handler
        from treue.handlers import progress as progress_handler
        from treue.logic import members, provisioning, queue_senders
        from treue.logic.models import Enrollment
        from treue.store import table as tables
        from treue.store.events import new_event
        from treue.store.items import to_item

        runtime.reset()
        created = provisioning.create_program(runtime.store(), "Bench", "EUR", runtime.now())
        pid, key = created["program_id"], created["api_keys"]["partner"]
        auth = {"program_id": pid, "key_id": keys.parse(key)[0], "scope": "partner"}
        mid = members.enroll(runtime.store(), pid, Enrollment(email="ada@example.com"), runtime.now())[0]["id"]
        queue_senders.register(runtime.queue_senders(), pid, "AROA3XFRBF535PLBIFPI4",
                               queue_senders.SenderRegistration(description="bench"), "bench", runtime.now())
        counter = UnitCounter(tables.client(), ddb, table)
        gate = api_event("authorizer/request.json", headers={"Authorization": f"Bearer {key}"})
        gate["methodArn"] = "arn:aws:execute-api:eu-central-1:123456789012:abc123/prod/POST/v1/members/x/purchases"

        # a program with tiers (the issue's example, points over a rolling 12 months, but gold from 100,000 points, so
        # the member stays below the top tier as most do): its accruals also read the member's TIER item and months
        # (an upgrade, once a period, writes three items more; a member at the top tier reads no months)
        tiered = provisioning.create_program(runtime.store(), "Bench tiers", "EUR", runtime.now())
        admin = {"program_id": tiered["program_id"], "key_id": keys.parse(tiered["api_keys"]["admin"])[0],
                 "scope": "admin"}
        patched = program_handler.handler(api_event(
            "program/patch_program.json", auth=admin, headers={"If-Match": "*"},
            body={"tiers": {"metric": "points", "period": {"type": "rolling", "months": 12}, "levels": [
                {"id": "bronze", "name": "Bronze", "threshold": 0},
                {"id": "gold", "name": "Gold", "threshold": 100_000, "benefits": {"earn_multiplier_bps": 15000}}]}}),
            LambdaContext())
        assert patched["statusCode"] == 200, patched
        tier_auth = {**admin, "key_id": keys.parse(tiered["api_keys"]["partner"])[0], "scope": "partner"}
        tier_mid = members.enroll(runtime.store(), tiered["program_id"], Enrollment(email="ada@example.com"),
                                  runtime.now())[0]["id"]

        def lifecycle_program(name: str, settings: dict) -> tuple[dict, str, str]:
            """A program with these settings (README "Points over time"): its partner auth, id and a member."""
            made = provisioning.create_program(runtime.store(), name, "EUR", runtime.now())
            made_admin = {"program_id": made["program_id"], "key_id": keys.parse(made["api_keys"]["admin"])[0],
                          "scope": "admin"}
            answer = program_handler.handler(api_event("program/patch_program.json", auth=made_admin,
                                                       headers={"If-Match": "*"}, body=settings), LambdaContext())
            assert answer["statusCode"] == 200, answer
            partner = {**made_admin, "key_id": keys.parse(made["api_keys"]["partner"])[0], "scope": "partner"}
            member = members.enroll(runtime.store(), made["program_id"], Enrollment(email="ada@example.com"),
                                    runtime.now())[0]["id"]
            return partner, made["program_id"], member

        # programs that keep points over time: one with rolling 12-month expiry (each accrual also adds to the
        # member's expiry bucket of its date, in the transaction, and the balance in its answer Queries the
        # buckets), one with pending_days 14 as well (a purchase of yesterday earns pending: its pending item is
        # written too, and the answer Queries the pending items that are due)
        rolling = {"policy": "rolling", "months": 12}
        expiry_auth, _, expiry_mid = lifecycle_program("Bench expiry", {"expiry": rolling})
        pending_auth, _, pending_mid = lifecycle_program("Bench pending", {"pending_days": 14, "expiry": rolling})
        yesterday = times.iso(times.parse(runtime.now()) - timedelta(days=1))
        # every points.earned event the accruals write (by its reference, the transaction id): what the table
        # stream brings the Progress function
        earned: dict[str, dict] = {}

        def keep_events(params, **_) -> None:
            for op in params.get("TransactItems", []):
                item = op.get("Put", {}).get("Item", {})
                if item.get("kind", {}).get("S") == "event" and item.get("type", {}).get("S") == "points.earned":
                    earned[item["data"]["M"]["reference"]["S"]] = item

        tables.client().meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", keep_events)

        def purchase(txn: str, auth: dict = auth, mid: str = mid, occurred_at: str = "2026-11-20T09:58:00Z") -> dict:
            return api_event("accrual/post_purchase.json", auth=auth, path=f"/v1/members/{mid}/purchases",
                             path_parameters={"member_id": mid}, headers={"Idempotency-Key": txn},
                             body={"transaction_id": txn, "amount": {"value": 4999, "currency": "EUR"},
                                   "occurred_at": occurred_at})

        record = json.loads((ROOT / "events" / "accrual_queue" / "batch.json").read_text())["Records"][0]

        def batch(prefix: str, size: int) -> dict:
            records = []
            for n in range(size):
                body = json.loads(record["body"])
                body["purchase"]["transaction_id"] = f"{prefix}-{n}"
                records.append({**record, "messageId": f"{prefix}-{n}", "body": json.dumps(body)})
            return {"Records": records}

        def measure(call, n: int) -> tuple[Captured, float, float]:
            """A call's duration and log output (timed alone), then the request units of the same call for
            another purchase (counting reads the written items before and after each write)."""
            counter.enabled = False
            with Captured() as out:
                call(f"t{n}")
            counter.enabled = True
            counter.reset()
            call(f"c{n}")
            return out, counter.wru, counter.rru

        def run(handler, event: dict) -> None:
            answer = handler(event, context)
            assert "principalId" in answer or not answer.get("batchItemFailures"), answer
            assert answer.get("statusCode", 200) == 200, answer
            assert '"replayed":true' not in answer.get("body", ""), answer  # each purchase accrues anew

        # warm each function (and moto), then measure
        authorizer.handler(gate, LambdaContext())
        accrual.handler(purchase("warm-0"), LambdaContext())
        assert not accrual_queue.handler(batch("queue-warm", 2), LambdaContext())["batchItemFailures"]
        accrual.handler(purchase("warm-tier", tier_auth, tier_mid), LambdaContext())
        accrual.handler(purchase("warm-expiry", expiry_auth, expiry_mid), LambdaContext())
        accrual.handler(purchase("warm-pending", pending_auth, pending_mid, yesterday), LambdaContext())
        gates, accruals, tier_accruals, batches, singles = [], [], [], [], []
        expiry_accruals, pending_accruals = [], []
        context = LambdaContext()
        for n in range(runs):
            gates.append(measure(lambda _: run(authorizer.handler, gate), n))
            accruals.append(measure(lambda tag: run(accrual.handler, purchase(f"api-{tag}")), n))
            tier_accruals.append(measure(lambda tag: run(accrual.handler, purchase(f"tier-{tag}", tier_auth,
                                                                                    tier_mid)), n))
            expiry_accruals.append(measure(lambda tag: run(accrual.handler, purchase(
                f"expiry-{tag}", expiry_auth, expiry_mid)), n))
            pending_accruals.append(measure(lambda tag: run(accrual.handler, purchase(
                f"pending-{tag}", pending_auth, pending_mid, yesterday)), n))
            batches.append(measure(lambda tag: run(accrual_queue.handler, batch(f"q-{tag}", 10)), n))
            singles.append(measure(lambda tag: run(accrual_queue.handler, batch(f"s-{tag}", 1)), n))
        counter.reset()
        accrual.handler(purchase("detail"), context)
        detail = counter.writes[:]
        counter.reset()
        accrual.handler(purchase("detail", tier_auth, tier_mid), context)
        tier_detail = (counter.writes[:], counter.calls[:])
        lifecycle_detail = {}
        for label, args in (("expiry", (expiry_auth, expiry_mid)), ("pending", (pending_auth, pending_mid, yesterday))):
            counter.reset()
            accrual.handler(purchase(f"detail-{label}", *args), context)
            lifecycle_detail[label] = (counter.writes[:], counter.calls[:])
        last = accrual.handler(purchase("api-0"), LambdaContext())  # a replay answers the same bytes

        # The audit sealer chains every accrual's audit record: a run a minute, each sealing the records of
        # that minute (at 1M a month about 23). Timed on one minute's records, its units counted on another's.
        per_run = round(1e6 / SEALER_RUNS_PER_MONTH)

        def sealer_run(tag: str) -> int:
            counter.enabled = False
            for i in range(per_run):
                run(accrual.handler, purchase(f"{tag}-{i}"))
            counter.enabled = tag.startswith("count")
            counter.reset()
            with Captured() as out:
                sealed = sum(sealer.handler({}, LambdaContext())["sealed"].values())
            assert sealed == per_run, (sealed, per_run)
            return out

        counter.enabled = False
        sealer.handler({}, LambdaContext())  # every record so far (and warm)
        seals = []
        for n in range(max(3, runs // 5)):
            timed = sealer_run(f"time-{n}")
            sealer_run(f"count-{n}")
            seals.append((timed, counter.wru, counter.rru))
        sealing_detail = counter.writes[:]

        # the largest an accrual's items get: the longest transaction id accepted (128 characters), an IPv6 caller
        longest = purchase("L" * 128)
        longest["requestContext"]["identity"]["sourceIp"] = "2001:0db8:85a3:0000:0000:8a2e:0370:7334"
        counter.enabled = True
        counter.reset()
        run(accrual.handler, longest)
        largest = counter.writes[:]
        counter.reset()
        sealer.handler({}, LambdaContext())
        largest += counter.writes[:]

        # The table stream brings every accrual's event to the webhook fan-out, subscribed endpoints or not (here
        # none: deliveries depend on what partners subscribe); the stream itself is free to Lambda
        stream = json.loads((ROOT / "events" / "webhook_fanout" / "stream.json").read_text())["Records"][0]

        def fan_out(tag: str) -> None:
            image = to_item(new_event(pid, "points.earned", {"member_id": mid, "points": 49, "posting_id": tag,
                                                             "reference": tag, "reason": "purchase"}, runtime.now()))
            record = {**stream, "dynamodb": {**stream["dynamodb"], "NewImage": image,
                                             "Keys": {"pk": image["pk"], "sk": image["sk"]}}}
            assert webhook_fanout.handler({"Records": [record]}, LambdaContext()) == {"batchItemFailures": []}

        fan_out("warm")
        fanouts = [measure(fan_out, n) for n in range(runs)]

        # Every points.earned event also goes to Progress (its mapping passes only those): per purchase it reads
        # the posting, the rules in force and the member (and the balance when milestone rules exist; here none).
        # Each invocation takes a real accrual's event, the purchases made beforehand, uncounted.
        counter.enabled = False
        for tag in ["warm", *(f"{side}{n}" for n in range(runs) for side in "tc")]:
            run(accrual.handler, purchase(f"progress-{tag}"))

        earned_record = json.loads((ROOT / "events" / "progress" / "stream.json").read_text())["Records"][0]

        def progress_run(tag: str) -> None:
            image = earned[f"progress-{tag}"]
            record = {**earned_record, "dynamodb": {**earned_record["dynamodb"], "NewImage": image,
                                                    "Keys": {"pk": image["pk"], "sk": image["sk"]}}}
            assert progress_handler.handler({"Records": [record]}, LambdaContext()) == {"batchItemFailures": []}

        progress_run("warm")
        progresses = [measure(progress_run, n) for n in range(runs)]
        progress_calls = counter.calls[:]

        # The daily expiry run (PointsExpiry): members with one bucket whose date has passed each (a purchase 400
        # days back in a program with rolling 12-month expiry, credited uncounted), one run over as many members
        # timed, then one over as many others counted (each run expires each member once and drops the bucket)
        from treue.handlers import points_lifecycle

        expiring = int(os.environ.get("BENCH_EXPIRY_MEMBERS", "100"))
        run_auth, run_pid, _ = lifecycle_program("Bench expiry run", {"expiry": rolling})
        schedule = json.loads((ROOT / "events" / "points_lifecycle" / "expire.json").read_text())
        late = times.iso(times.parse(runtime.now()) - timedelta(days=400))

        def expiry_run(tag: str) -> tuple[Captured, float, float, list[str]]:
            counter.enabled = False
            for i in range(expiring):
                member = members.enroll(runtime.store(), run_pid, Enrollment(email=f"{tag}-{i}@example.com"),
                                        runtime.now())[0]["id"]
                run(accrual.handler, purchase(f"{tag}-{i}", run_auth, member, late))
            counter.enabled = tag.startswith("count")
            counter.reset()
            with Captured() as out:
                done = points_lifecycle.expire({**schedule, "time": runtime.now()},
                                               LambdaContext())
            assert done["members"] == expiring and done["expired_points"] > 0, done
            return out, counter.wru, counter.rru, counter.calls[:]

        expiry_run("warm")
        expiry_runs = []
        for n in range(max(2, runs // 5)):
            timed = expiry_run(f"time-{n}")
            counted = expiry_run(f"count-{n}")
            expiry_runs.append((timed[0], counted[1], counted[2]))
        expiry_calls, expiry_writes = counted[3], counter.writes[:]

        # The activation run (PointsActivation, hourly): a purchase of yesterday in the program with pending_days
        # 14 leaves one pending item; the run as at 15 days later activates it (and the points' bucket begins)
        activation_auth, pending_pid, _ = lifecycle_program("Bench activation run",
                                                            {"pending_days": 14, "expiry": rolling})
        activate_schedule = json.loads((ROOT / "events" / "points_lifecycle" / "activate.json").read_text())
        later = times.iso(times.parse(runtime.now()) + timedelta(days=15))

        def activation_run(tag: str) -> tuple[Captured, float, float, list[str]]:
            counter.enabled = False
            for i in range(expiring):
                member = members.enroll(runtime.store(), pending_pid, Enrollment(email=f"{tag}-{i}@example.com"),
                                        runtime.now())[0]["id"]
                run(accrual.handler, purchase(f"{tag}-{i}", activation_auth, member, yesterday))
            counter.enabled = tag.startswith("count")
            counter.reset()
            with Captured() as out:
                done = points_lifecycle.activate({**activate_schedule, "time": later}, LambdaContext())
            assert done["members"] >= expiring and done["activated_points"] > 0, done
            return out, counter.wru, counter.rru, counter.calls[:]

        activation_run("warm")  # and every pending item of the accruals above
        activation_runs = []
        for n in range(max(2, runs // 5)):
            timed = activation_run(f"time-{n}")
            counted = activation_run(f"count-{n}")
            activation_runs.append((timed[0], counted[1], counted[2]))
        activation_calls, activation_writes = counted[3], counter.writes[:]

    def med(samples, pick):
        return statistics.median(pick(s) for s in samples)

    rate = 1e6 / MONTH_SECONDS  # 1M accruals a month, at random times
    auth_lines, auth_bytes = platform_log(memory["authorizer"])
    acc_lines, acc_bytes = platform_log(memory["accrual"])
    execution_log = EXECUTION_LOG_BYTES[stage["logging_level"]]
    if stage["data_trace"]:  # the request's and the answer's bodies too
        execution_log += len(purchase("x")["body"]) + len(last["body"])
    # the sealer's share of one accrual: a run a minute, whatever the accruals (its logs and trace too)
    runs_share = SEALER_RUNS_PER_MONTH / 1e6
    seal_lines, seal_bytes = platform_log(memory["audit"])
    sealing = {
        "functions": [("audit sealer", runs_share, med(seals, lambda s: s[0].ms), memory["audit"])],
        "sealing": (med(seals, lambda s: s[1]) / per_run, med(seals, lambda s: s[2]) / per_run),
        "log_lines": runs_share * (seal_lines + med(seals, lambda s: s[0].lines)),
        "log_bytes": runs_share * (seal_bytes + med(seals, lambda s: s[0].bytes)),
        "traces": ("audit sealer", runs_share, sampled_fraction(1 / 60)),
    }
    # the table stream's consumers: the webhook fan-out (every event) and Progress (points.earned)
    consumers = [stream_consumer(name, med(samples, lambda s: s[0].ms), med(samples, lambda s: s[1]),
                                 med(samples, lambda s: s[2]), med(samples, lambda s: s[0].lines),
                                 med(samples, lambda s: s[0].bytes), memory[key], rate, units_per_event=per_event)
                 for name, key, samples, per_event in (("webhook fan-out", "webhook_fanout", fanouts, False),
                                                       ("progress", "progress", progresses, True))]
    for consumer in consumers:
        sealing["functions"].append(consumer["function"])
        sealing["log_lines"] += consumer["log_lines"]
        sealing["log_bytes"] += consumer["log_bytes"]
    stream_wru, stream_rru = sum(c["wru"] for c in consumers), sum(c["rru"] for c in consumers)
    stream_traces = [c["traces"] for c in consumers]

    def api_path(name: str, samples) -> PathUsage:
        return PathUsage(
            name, gateway_requests=1,
            functions=[("authorizer", 1, med(gates, lambda s: s[0].ms), memory["authorizer"]),
                       ("accrual", 1, med(samples, lambda s: s[0].ms), memory["accrual"]), *sealing["functions"]],
            wru=med(gates, lambda s: s[1]) + med(samples, lambda s: s[1]) + stream_wru,
            rru=med(gates, lambda s: s[2]) + med(samples, lambda s: s[2]) + stream_rru, sealing=sealing["sealing"],
            log_lines=auth_lines + acc_lines + 1 + execution_log // 100 + sealing["log_lines"]
            + med(gates, lambda s: s[0].lines) + med(samples, lambda s: s[0].lines),
            log_bytes=auth_bytes + acc_bytes + access_log_line() + execution_log + sealing["log_bytes"]
            + med(gates, lambda s: s[0].bytes) + med(samples, lambda s: s[0].bytes),
            traces=[("API stage", 1, sampled_fraction(rate, stage["sampling"])), *stream_traces, sealing["traces"]],
            bytes_out=len(last["body"]) + 250 + sum(len(k) + len(v) + 4 for k, values in last.get(
                "multiValueHeaders", {}).items() for v in values),
        )

    api = api_path("POST /v1/members/{member_id}/purchases", accruals)
    with_tiers = api_path("the same, a program with tiers", tier_accruals)
    with_expiry = api_path("the same, a program with rolling 12-month expiry", expiry_accruals)
    with_pending = api_path("the same, with pending_days 14 as well (a purchase of yesterday)", pending_accruals)

    # a lifecycle run, per member: the run's share of its invocation (whatever the members), its request units,
    # its log output; the audit sealer chaining the posting's audit record (as an accrual's); the webhook fan-out
    # for its event (points.expired, points.activated), the stream's batches as full as the run's pace makes them
    fan_ms, fan_wru, fan_rru, fan_lines, fan_bytes = (med(fanouts, pick) for pick in (
        lambda s: s[0].ms, lambda s: s[1], lambda s: s[2], lambda s: s[0].lines, lambda s: s[0].bytes))

    def lifecycle_path(name: str, function: str, samples) -> PathUsage:
        run_ms = med(samples, lambda s: s[0].ms)
        fan = stream_consumer("webhook fan-out", fan_ms, fan_wru, fan_rru, fan_lines, fan_bytes,
                              memory["webhook_fanout"], min(expiring / (run_ms / 1000), 99))  # batches of 100
        own_lines, own_bytes = platform_log(memory[function])
        return PathUsage(
            name, functions=[(function.replace("_", " "), 1 / expiring, run_ms, memory[function]), fan["function"]],
            wru=med(samples, lambda s: s[1]) / expiring + fan["wru"],
            rru=med(samples, lambda s: s[2]) / expiring + fan["rru"], sealing=sealing["sealing"],
            log_lines=(own_lines + med(samples, lambda s: s[0].lines)) / expiring + fan["log_lines"],
            log_bytes=(own_bytes + med(samples, lambda s: s[0].bytes)) / expiring + fan["log_bytes"],
            traces=[(function.replace("_", " "), 1 / expiring, 1.0), fan["traces"]])

    lifecycle_runs = [
        (lifecycle_path(f"the expiry run, per member expired (one due bucket each, {expiring} members a run)",
                        "points_expire", expiry_runs), expiry_runs, expiry_calls, expiry_writes),
        (lifecycle_path(f"the activation run, per purchase activated (one each, {expiring} members a run)",
                        "points_activate", activation_runs), activation_runs, activation_calls, activation_writes)]
    q_lines, q_bytes = platform_log(memory["accrual_queue"])

    def queue(samples, size: int) -> PathUsage:
        share = 1 / size  # one invocation, one receive and one delete per batch
        return PathUsage(
            f"accrual queue, batches of {size}", sqs_requests=1 + 2 * share,
            functions=[("accrual queue", share, med(samples, lambda s: s[0].ms), memory["accrual_queue"]),
                       *sealing["functions"]],
            wru=med(samples, lambda s: s[1]) / size + stream_wru,
            rru=med(samples, lambda s: s[2]) / size + stream_rru, sealing=sealing["sealing"],
            log_lines=(q_lines + med(samples, lambda s: s[0].lines)) / size + sealing["log_lines"],
            log_bytes=(q_bytes + med(samples, lambda s: s[0].bytes)) / size + sealing["log_bytes"],
            traces=[("queue consumer", share, sampled_fraction(rate * share)), *stream_traces,
                    sealing["traces"]])

    print(f"Cost of 1M accruals at list prices (eu-central-1, USD; median of {runs} warm calls on moto in-process)")
    for usage in (api, queue(batches, 10), queue(singles, 1)):
        print(f"  {usage.name}")
        for component, used, usd in cost_lines(usage):
            print(f"    {component:<33}{used:<31}{usd:>8.2f}")
    print("  An accrual's writes (operation: item by sort key, bytes → WRU with the index's copy): " + ", ".join(
        f"{op}: {kind} {size} B → {units:g}" for op, kind, size, units in detail))
    tier_usd, api_usd = cost_lines(with_tiers)[-1][2], cost_lines(api)[-1][2]
    tier_writes, tier_calls = tier_detail
    print(f"  {with_tiers.name} (a member below gold at 100,000 points over 12 months): accrual "
          f"{billed_ms(med(tier_accruals, lambda s: s[0].ms))} ms, "
          f"{med(tier_accruals, lambda s: s[1]):g} WRU and {med(tier_accruals, lambda s: s[2]):g} RRU "
          f"(without tiers {med(accruals, lambda s: s[1]):g} and {med(accruals, lambda s: s[2]):g}); total "
          f"{tier_usd:.2f} ({tier_usd - api_usd:+.2f}); its calls {', '.join(tier_calls)}; writes "
          + ", ".join(f"{kind} {size} B → {units:g}" for _, kind, size, units in tier_writes))
    for usage, samples, (writes, calls) in ((with_expiry, expiry_accruals, lifecycle_detail["expiry"]),
                                            (with_pending, pending_accruals, lifecycle_detail["pending"])):
        usd = cost_lines(usage)[-1][2]
        print(f"  {usage.name}: accrual {billed_ms(med(samples, lambda s: s[0].ms))} ms (without "
              f"{billed_ms(med(accruals, lambda s: s[0].ms))}), {med(samples, lambda s: s[1]):g} WRU and "
              f"{med(samples, lambda s: s[2]):g} RRU (without {med(accruals, lambda s: s[1]):g} and "
              f"{med(accruals, lambda s: s[2]):g}); total {usd:.2f} ({usd - api_usd:+.2f}); its calls "
              f"{', '.join(calls)}; writes "
              + ", ".join(f"{kind} {size} B → {units:g}" for _, kind, size, units in writes))
    for usage, samples, lifecycle_calls, lifecycle_writes in lifecycle_runs:
        calls_per_member: dict[str, int] = {}
        for name in lifecycle_calls:
            calls_per_member[name] = calls_per_member.get(name, 0) + 1
        written: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for op, kind, size, units in lifecycle_writes:
            written.setdefault((op, kind), []).append((size, units))
        print(f"  {usage.name}, per 1M:")
        for component, used, usd in cost_lines(usage):
            print(f"    {component:<33}{used:<31}{usd:>8.2f}")
        run_ms, timeout = med(samples, lambda s: s[0].ms), 900 if "expir" in usage.name else 300
        print(f"    a run: {run_ms:,.0f} ms for {expiring} ({run_ms / expiring:.1f} ms each on moto: "
              f"{timeout * 1000 / (run_ms / expiring):,.0f} in the function's {timeout} s), "
              f"{med(samples, lambda s: s[1]) / expiring:.3g} WRU and {med(samples, lambda s: s[2]) / expiring:.3g}"
              f" RRU each; its calls: " + ", ".join(f"{name} {count / expiring:g}" for name, count in
                                                   calls_per_member.items()) + " each; writes: " + ", ".join(
                  f"{op} {len(v) / expiring:g} × {kind} {max(b for b, _ in v)} B → {v[0][1]:g}"
                  for (op, kind), v in written.items()))
    print(f"  Progress, per purchase's points.earned: {', '.join(progress_calls)}, "
          f"{med(progresses, lambda s: s[2]):g} RRU, {med(progresses, lambda s: s[1]):g} WRU, "
          f"{med(progresses, lambda s: s[0].ms):.1f} ms, {med(progresses, lambda s: s[0].lines):g} log lines")
    kinds: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for op, kind, size, units in sealing_detail:
        kinds.setdefault((op, kind), []).append((size, units))
    print(f"  A sealer run of {per_run} records: " + ", ".join(
        f"{op}: {len(v)} × {kind} {max(s for s, _ in v)} B → {v[0][1]:g}" for (op, kind), v in kinds.items()))
    print("  The same at the longest transaction id (128 characters) from an IPv6 caller, then sealed: " + ", ".join(
        f"{kind} {size} B → {units:g}" for _, kind, size, units in largest))
    rule, (fixed, reservoir) = stage["rule"], stage["sampling"]
    print(f"  From the template: the API stage logs at {stage['logging_level']} "
          f"(data trace {'on' if stage['data_trace'] else 'off'}; execution log {execution_log} B per request, "
          f"not measured) and samples by {rule} ({fixed:.0%} after {reservoir} a second). Assumed: authorizer "
          f"results not cached (the stack's TTL is 0: every request runs it); 1M accruals spread over 30 days "
          f"({rate:.2f}/s); Lambda samples the queue consumer, the stream's consumers and the sealer by the default "
          f"rule (1 a second, then 5%); a stream batch of the fan-out or Progress holds an event and those of the "
          f"next second ({1 + rate:.2f}); no webhook endpoint subscribed; no earning rule (no milestone, referral or "
          f"segment rule); one SendMessage per queued purchase; no free tier.")


# What the cold-start goal leaves to Treue's own code, in instructions (valgrind's callgrind counts them; unlike
# a time they do not move with the machine's load): the floor, the floor with the collector paused as the
# functions pause it in Lambda (treue/__init__.py), then pydantic imported, then its first model validated
# and dumped (its first validator loads about 50 more modules), then one API function's module imported.
PYDANTIC_FIRST_MODEL = (
    "from pydantic import BaseModel, ConfigDict, Field\n"
    "class Answer(BaseModel):\n    model_config = ConfigDict(defer_build=True)\n"
    "    points: int = Field(ge=0)\n    member_id: str | None = None\n"
    "Answer(points=1).model_dump(mode='json')\n"
)
CEILING_STEPS = (
    ("floor: import boto3, one client", FLOOR),
    ("the same, collector paused", "import gc\ngc.disable()\n" + FLOOR),
    ("+ import pydantic (BaseModel, Field)", "import gc\ngc.disable()\n" + FLOOR
     + "from pydantic import BaseModel, ConfigDict, Field\n"),
    ("+ pydantic's first model validated and dumped", "import gc\ngc.disable()\n" + FLOOR + PYDANTIC_FIRST_MODEL),
    ("+ import treue.handlers.webhooks (instead)", "import gc\ngc.disable()\n" + FLOOR
     + "import treue.handlers.webhooks\n"),
)


def instructions(code: str, env: dict[str, str]) -> int | None:
    """Instructions a fresh interpreter executes for ``code`` (callgrind), None without valgrind."""
    import re
    import shutil

    if not shutil.which("valgrind"):
        return None
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
                          code], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def cold_start_ceiling() -> None:
    env = {**ENV, "PYDANTIC_DISABLE_PLUGINS": "__all__", "AWS_DEFAULT_REGION": "eu-central-1"}
    counts = [(label, instructions(code, env)) for label, code in CEILING_STEPS]
    if counts[0][1] is None:
        print("Cold-start ceiling: needs valgrind (Debian's valgrind package), not on this machine")
        return
    floor = counts[0][1]
    print("Cold-start ceiling, in instructions (callgrind; one fresh interpreter each, repeatable whatever the load)")
    for label, count in counts:
        print(f"  {label:<48}{count / 1e6:>8.0f} M {count / floor:>6.2f}")


if __name__ == "__main__":
    if sys.argv[1:] == ["ceiling"]:  # python -m tests.bench ceiling: only the instruction counts
        cold_start_ceiling()
        raise SystemExit(0)
    if sys.argv[1:] == ["reports"]:  # python -m tests.bench reports: only the report job figures
        report_jobs_bench()
        raise SystemExit(0)
    if sys.argv[1:] == ["cold"]:  # python -m tests.bench cold: only the cold-start figures
        cold_start_ceiling()
        print()
        cold_starts()
        print()
        first_events()
        print()
        other_first_events()
        print()
        asset_sizes()
        raise SystemExit(0)
    if sys.argv[1:] == ["cost"]:  # python -m tests.bench cost: only the cost of 1M accruals
        accrual_cost()
        raise SystemExit(0)
    if sys.argv[1:] == ["sealer"]:  # python -m tests.bench sealer: only the sealer figures
        sealer_throughput()
        raise SystemExit(0)
    cold_start_ceiling()
    print()
    cold_starts()
    print()
    first_events()
    print()
    other_first_events()
    print()
    asset_sizes()
    print()
    round_trips()
    print()
    accrual_cost()
    print()
    finance_scaling()
    print()
    sealer_throughput()
    print()
    twin_orders()
    print()
    twin_batches()
