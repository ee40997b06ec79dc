"""``make bench``: cold-start and DynamoDB round-trip figures (printed, never asserted by time).

1. Cold init per function: a fresh interpreter imports the handler module and creates its first
   client; divided by the floor, a fresh interpreter doing ``import boto3`` + one client. Median of runs.
2. DynamoDB round trips of enroll and accrue on a warm function (moto, calls counted at the client).
3. Order latency on the local twin: the answer of ``POST /v1/orders`` and the time until the order is
   COMPLETED (payout workflow in moto's ASL interpreter, tasks in function workers), per reward type.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
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


def cold(code: str) -> float:
    timed = (
        "import time\n_t = time.perf_counter()\n" + code + "print(time.perf_counter() - _t)\n"
    )
    out = subprocess.run([sys.executable, "-c", timed], env=ENV, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1]) * 1000


def median_ms(code: str) -> float:
    cold(code)  # warm the file-system cache and .pyc files
    return statistics.median(cold(code) for _ in range(RUNS))


def cold_starts() -> None:
    floor = median_ms(FLOOR)
    print(f"Cold init (median of {RUNS} fresh interpreters); floor = import boto3 + one client = {floor:.0f} ms")
    print(f"  {'function':<15}{'ms':>8}{'ratio':>8}   goal <= 1.3")
    for name, (module, has_client) in FUNCTIONS.items():
        code = f"import {module}\n"
        if has_client:
            code += "import treue.store.dynamodb as s\ns.client()\n"
        ms = median_ms(code)
        print(f"  {name:<15}{ms:>8.0f}{ms / floor:>8.2f}")


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
        from treue.handlers import accrual, enrollment
        from treue.logic import keys, provisioning
        from treue.store import dynamodb

        runtime.reset()
        created = provisioning.create_program(runtime.store(), "Bench", "EUR", runtime.now())
        auth = {"program_id": created["program_id"], "key_id": keys.parse(created["api_keys"]["partner"])[0],
                "scope": "partner"}
        calls: list[str] = []
        dynamodb.client().meta.events.register(
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
            from treue.logic import finance, members, points, provisioning
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
            report = finance.reconcile_day(store, runtime.provider(), program.id, now[:10])
            reconcile = time.perf_counter() - t0
            assert rows == size and report["differences"] == []

            def cell(seconds: float, n: int = size) -> str:
                return f"{seconds * 1000:>7.0f} ({seconds * 1e6 / n:>4.0f})"

            print(f"  {size:>9}{cell(write)}{cell(seal)}{cell(verify)}{cell(journal)}{cell(reconcile)}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def twin_orders(per_type: int = int(os.environ.get("BENCH_ORDERS", "15"))) -> None:
    import json
    import tempfile
    import time
    import urllib.request
    import uuid

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

        def call(method, path, body=None, scope="partner", headers=None):
            req = urllib.request.Request(state["url"] + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {state['api_keys'][scope]}",
                                                  "Content-Type": "application/json", **(headers or {})})
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())

        member = call("POST", "/v1/members", {"email": "bench@example.com"})["id"]
        call("POST", f"/v1/members/{member}/adjustments", {"points": 10**7, "reason": "bench", "reference": "b"},
             scope="admin")
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
                order = call("POST", "/v1/orders", body, headers={"Idempotency-Key": uuid.uuid4().hex})
                accepted_ms.append((time.perf_counter() - t0) * 1000)
                while call("GET", f"/v1/orders/{order['order_id']}")["status"] not in ("COMPLETED", "FAILED"):
                    time.sleep(0.01)
                completed_ms.append((time.perf_counter() - t0) * 1000)
            print(f"  {label:<12}{_percentile(accepted_ms, .5):>10.0f} / {_percentile(accepted_ms, .95):<7.0f}"
                  f"{_percentile(completed_ms, .5):>10.0f} / {_percentile(completed_ms, .95):<7.0f}")
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    cold_starts()
    print()
    round_trips()
    print()
    finance_scaling()
    print()
    twin_orders()
