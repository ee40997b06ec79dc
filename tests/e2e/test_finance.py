"""Finance on the twin: the demo budget pays gift cards, reports over HTTP (JSON and CSV), the audit
trail sealed by the twin's schedule, and the operator CLI (audit verify, finance export/reconcile)."""

import csv
import io
import json
import time
import uuid

import boto3
import pytest

from tests.e2e.test_rewards import finished, member_with, order

pytestmark = pytest.mark.e2e


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def test_a_gift_card_is_paid_from_the_budget_and_the_books_reconcile(twin):
    status, _, before = twin.request("GET", "/v1/finance/budget?currency=EUR", key="finance")
    assert status == 200
    eur = next(b for b in before["budgets"] if b["currency"] == "EUR")
    member = member_with(twin, 5000)
    accepted = order(twin, member, "atelier-mode-eur", denomination=2500)
    assert finished(twin, accepted["order_id"])["status"] == "COMPLETED"
    _, _, after = twin.request("GET", "/v1/finance/budget?currency=EUR", key="finance")
    eur_after = next(b for b in after["budgets"] if b["currency"] == "EUR")
    assert eur["available"] - eur_after["available"] == 2500 + 38  # face value + 1.5 % fee, rounded up

    status, headers, body = twin.request("GET", f"/v1/finance/payouts?from={today()}", key="finance",
                                         headers={"Accept": "text/csv"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    row = next(r for r in rows if r["order_id"] == accepted["order_id"])
    assert (row["face_value"], row["fee"], row["currency"], row["status"]) == ("2500", "38", "EUR", "COMPLETED")

    status, _, trial = twin.request("GET", "/v1/finance/trial-balance", key="finance")
    assert status == 200 and trial["balanced"]
    status, _, recon = twin.request("GET", f"/v1/finance/reconciliation?date={today()}", key="admin")
    assert status == 200 and recon["differences"] == [] and recon["checked"]["orders"] >= 1


def test_partner_keys_get_403_on_finance_routes_over_http(twin):
    for method, path in (("GET", "/v1/finance/journal"), ("GET", "/v1/finance/kpis"),
                         ("POST", "/v1/finance/fundings"), ("GET", "/v1/finance/audit")):
        body = {"amount": {"value": 100, "currency": "EUR"}, "reference": "x"} if method == "POST" else None
        status, headers, problem = twin.request(method, path, body, key="partner",
                                                headers={"Idempotency-Key": "x"})
        assert status == 403 and headers["Content-Type"] == "application/problem+json", (path, problem)


def test_the_twin_schedule_seals_the_audit_trail(twin):
    member_with(twin, 100)
    deadline = time.monotonic() + 30
    while True:
        status, _, page = twin.request("GET", "/v1/finance/audit?limit=1000", key="finance")
        assert status == 200
        if page["pending"] == 0 and page["items"]:
            break
        assert time.monotonic() < deadline, "the audit sealer schedule did not run"
        time.sleep(0.5)
    assert [r["seq"] for r in page["items"]][:3] == [1, 2, 3]
    assert any(r["action"] == "posting.adjustment" and r["scope"] == "admin" for r in page["items"])


def test_cli_audit_verify_finds_a_record_altered_in_dynamodb(twin):
    created = twin.treue("program", "create", "--name", "Audited shop", "--currency", "EUR")
    assert created.returncode == 0, created.stderr
    program = json.loads(created.stdout)["program_id"]
    ok = twin.treue("audit", "verify", "--program", program)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["intact"] and result["records_checked"] == 3  # one record per API key created

    ddb = boto3.client("dynamodb", endpoint_url=twin.state["aws_endpoint"], region_name=twin.state["region"],
                       aws_access_key_id="twin", aws_secret_access_key="twin")
    table = twin.state["table"]
    items = ddb.query(TableName=table, IndexName="gsi1", KeyConditionExpression="gsi1pk = :pk",
                      ExpressionAttributeValues={":pk": {"S": f"P#{program}#CHAIN"}})["Items"]
    second = next(i for i in items if i["seq"]["N"] == "2")
    second["scope"] = {"S": "admin" if second["scope"]["S"] != "admin" else "partner"}
    ddb.put_item(TableName=table, Item=second)
    broken = twin.treue("audit", "verify", "--program", program)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["first_broken"]["record_id"] == second["id"]["S"]
    assert "broken at record 2" in broken.stderr


def test_cli_refuses_an_unknown_program_and_defaults_to_the_twins(twin, tmp_path):
    own = twin.state["program_id"]
    mistyped = own[:-1] + ("0" if own[-1] != "0" else "1")
    out = tmp_path / "journal.csv"
    for args in (["audit", "verify"], ["finance", "reconcile", "--date", today()],
                 ["finance", "export", "--from", today(), "--to", today(), "--out", str(out)]):
        done = twin.treue(*args, "--program", mistyped)
        assert done.returncode == 2 and done.stdout == "", args  # was 0: intact, records_checked 0; an empty file
        assert done.stderr == (f"treue: no program {mistyped} in the running twin (the twin's program is {own}; "
                               "`treue program list` shows them all)\n")
    assert not out.exists()
    default = twin.treue("audit", "verify")
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["program_id"] == own and json.loads(default.stdout)["records_checked"] > 0
    listed = twin.treue("program", "list")
    assert listed.returncode == 0 and own in [p["program_id"] for p in json.loads(listed.stdout)["programs"]]


def test_cli_finance_export_and_reconcile(twin, tmp_path):
    member = member_with(twin, 3000)
    accepted = order(twin, member, "nordlicht-books-eur", denomination=1000, key=uuid.uuid4().hex)
    finished(twin, accepted["order_id"])
    out = tmp_path / "journal.csv"
    program = twin.state["program_id"]
    done = twin.treue("finance", "export", "--program", program, "--from", today(), "--to", today(),
                      "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr and "rows" in done.stderr  # the progress bar
    rows = list(csv.DictReader(out.open()))
    assert json.loads(done.stdout)["rows"] == len(rows) > 0
    assert {"hold", "capture", "draw"} <= {r["type"] for r in rows if r["order_id"] == accepted["order_id"]}
    recon = twin.treue("finance", "reconcile", "--program", program, "--date", today())
    assert recon.returncode == 0, recon.stdout + recon.stderr
    assert json.loads(recon.stdout)["differences"] == []
    bad = twin.treue("finance", "reconcile", "--program", program, "--date", "24.11.2026")
    assert bad.returncode == 1 and "date" in bad.stderr


def test_a_reconciliation_report_job_runs_in_the_report_worker_and_matches_the_synchronous_answer(twin):
    member = member_with(twin, 3000)
    accepted = order(twin, member, "nordlicht-books-eur", denomination=1000, key=uuid.uuid4().hex)
    assert finished(twin, accepted["order_id"])["status"] == "COMPLETED"
    status, headers, queued = twin.request("POST", "/v1/finance/reports", {"type": "reconciliation", "date": today()},
                                           key="finance", headers={"Idempotency-Key": uuid.uuid4().hex})
    assert status == 202 and queued["status"] == "queued", queued
    assert headers["Location"] == f"/v1/finance/reports/{queued['report_id']}"
    deadline = time.monotonic() + 60
    while True:
        status, _, report = twin.request("GET", headers["Location"], key="finance")
        assert status == 200 and report["status"] in ("queued", "running", "completed"), report
        if report["status"] == "completed":
            break
        assert time.monotonic() < deadline, f"the report worker did not finish: {report}"
        time.sleep(0.5)
    assert report["progress"]["orders_checked"] == report["summary"]["orders"] >= 1
    import urllib.request

    with urllib.request.urlopen(report["result"]["url"], timeout=30) as downloaded:  # the pre-signed URL
        result = json.loads(downloaded.read())
    status, _, synchronous = twin.request("GET", f"/v1/finance/reconciliation?date={today()}", key="finance")
    assert status == 200 and result == synchronous and result["differences"] == []
    status, _, listed = twin.request("GET", "/v1/finance/reports", key="admin")
    assert status == 200 and queued["report_id"] in [r["report_id"] for r in listed["items"]]


def test_cli_reconcile_continues_as_a_report_job(twin):
    program = twin.state["program_id"]
    recon = twin.treue("finance", "reconcile", "--program", program, "--date", today(), "--sync-seconds", "0")
    assert recon.returncode == 0, recon.stdout + recon.stderr
    assert "continuing as a report job" in recon.stderr
    assert json.loads(recon.stdout)["differences"] == [] and json.loads(recon.stdout)["date"] == today()
