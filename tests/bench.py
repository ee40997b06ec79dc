"""``make bench``: cold-start and DynamoDB round-trip figures (printed, never asserted by time).

1. Cold init per function: a fresh interpreter imports the handler module and creates its first
   client; divided by the floor, a fresh interpreter doing ``import boto3`` + one client. Median of runs.
2. DynamoDB round trips of enroll and accrue on a warm function (moto, calls counted at the client).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
FUNCTIONS = {
    "authorizer": ("treue.handlers.authorizer", True),
    "enrollment": ("treue.handlers.enrollment", True),
    "accrual": ("treue.handlers.accrual", True),
    "accrual_queue": ("treue.handlers.accrual_queue", True),
    "docs": ("treue.handlers.docs", False),
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


if __name__ == "__main__":
    cold_starts()
    print()
    round_trips()
