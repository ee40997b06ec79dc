"""Bulk issuance on the twin: `treue batch submit` with its progress bar, a CSV through the pre-signed
upload URL, refusals before anything is issued, and a retry of lines the provider refused."""

import csv
import io
import json
import time
import uuid

import pytest

pytestmark = pytest.mark.e2e


def wait(twin, batch_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, view = twin.request("GET", f"/v1/batches/{batch_id}")
        assert status == 200, view
        if view["status"] in ("completed", "completed_with_failures", "halted"):
            return view
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not finish: {view}")


def test_the_cli_submits_a_csv_and_waits_for_every_line(twin, tmp_path):
    tag = uuid.uuid4().hex[:6]
    rows = ["reference,item_id,face_value,email,name,message"] + [
        f"{tag}-{n:03d},kaffeekranz-eur,1000,p{n}@example.com,Person {n},Thanks!" for n in range(1, 21)]
    path = tmp_path / "rewards.csv"
    path.write_text("\n".join(rows) + "\n")
    done = twin.treue("batch", "submit", str(path), "--name", "e2e csv")
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["status"] == "completed" and view["counts"]["issued"] == 20 and view["name"] == "e2e csv"
    assert "100%" in done.stderr and "20 lines" in done.stderr  # the progress bar
    again = twin.treue("batch", "submit", str(path), "--name", "e2e csv", "--no-wait")  # the same file: the same batch
    assert again.returncode == 0 and json.loads(again.stdout)["replayed"] is True
    assert again.stderr.strip() == (f"treue: {path} was already submitted as {view['batch_id']} on "
                                    f"{view['created_at']}; nothing was submitted now: showing that batch")
    waited = twin.treue("batch", "submit", str(path), "--name", "e2e csv", "--quiet")  # its state, its exit code
    assert waited.returncode == 0 and json.loads(waited.stdout)["batch_id"] == view["batch_id"]
    assert f"already submitted as {view['batch_id']}" in waited.stderr
    renamed = twin.treue("batch", "submit", str(path), "--name", "another name", "--no-wait")  # the same key
    assert renamed.returncode == 1 and renamed.stdout == ""
    assert "was already submitted" in renamed.stderr and "with another --name or --partial" in renamed.stderr
    assert "give --idempotency-key" in renamed.stderr
    status, headers, text = twin.request("GET", f"/v1/batches/{view['batch_id']}/lines",
                                         headers={"Accept": "text/csv"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [x["reference"] for x in lines] == [f"{tag}-{n:03d}" for n in range(1, 21)]
    assert {x["status"] for x in lines} == {"issued"}
    status, _, reward = twin.request("GET", f"/v1/rewards/{lines[0]['reward_id']}")
    assert status == 200 and reward["status"] == "COMPLETED" and reward["batch_id"] == view["batch_id"]


def test_a_csv_uploaded_to_the_presigned_url_becomes_a_partial_batch(twin):
    tag = uuid.uuid4().hex[:6]
    rows = [f"{tag}-{n},kaffeekranz-eur,500,u{n}@example.com" for n in range(1, 6)]
    rows.append(f"{tag}-6,no-such-item,500,x@example.com")
    text = "reference,item_id,face_value,email\n" + "\n".join(rows) + "\n"
    status, _, upload = twin.request("POST", "/v1/batches/uploads", {"content_length": len(text.encode())})
    assert status == 201, upload
    assert twin.api().upload_batch_file(upload, text.encode(), timeout=30) == 200
    status, _, accepted = twin.request("POST", "/v1/batches", {"upload_id": upload["upload_id"], "partial": True},
                                       headers={"Idempotency-Key": uuid.uuid4().hex})
    assert status == 202, accepted
    assert [(p["line"], p["reference"]) for p in accepted["rejected_lines"]] == [(6, f"{tag}-6")]
    view = wait(twin, accepted["batch_id"])
    assert view["status"] == "completed" and view["counts"]["issued"] == 5 and view["counts"]["rejected"] == 1


def test_bad_lines_and_a_batch_over_the_budget_are_refused_before_anything_is_issued(twin):
    status, _, before = twin.request("GET", "/v1/finance/budget?currency=EUR", key="finance")
    lines = [{"reference": "r1", "recipient": {"email": "a@example.com"}, "item_id": "kaffeekranz-eur",
              "face_value": 999},
             {"reference": "r1", "recipient": {"email": "b@example.com"}, "item_id": "kaffeekranz-eur",
              "face_value": 500}]
    status, _, problem = twin.request("POST", "/v1/batches", {"lines": lines},
                                      headers={"Idempotency-Key": uuid.uuid4().hex})
    assert status == 422 and problem["type"].endswith("batch-invalid")
    assert [(e["line"], e["field"]) for e in problem["errors"]] == [(1, "face_value"), (2, "reference")]
    many = [{"reference": f"big-{n}", "recipient": {"email": f"b{n}@example.com"}, "item_id": "kaffeekranz-eur",
             "face_value": 2000} for n in range(5000)]  # 5,000 × 20.25 EUR: more than the demo budget
    status, _, problem = twin.request("POST", "/v1/batches", {"lines": many},
                                      headers={"Idempotency-Key": uuid.uuid4().hex})
    assert status == 409 and problem["type"].endswith("insufficient-funds"), problem
    assert problem["shortfalls"][0]["needed"] == 5000 * 2025
    status, _, after = twin.request("GET", "/v1/finance/budget?currency=EUR", key="finance")
    assert after["budgets"] == before["budgets"]


def test_lines_the_provider_refused_are_issued_by_a_retry(twin):
    program = twin.state["program_id"]
    done = twin.treue("simulate", "fault", "--program", program, "--brand", "Stadtkino", "--mode", "rejected",
                      "--times", "2")
    assert done.returncode == 0, done.stderr
    tag = uuid.uuid4().hex[:6]
    lines = [{"reference": f"{tag}-{n}", "recipient": {"email": f"s{n}@example.com"}, "item_id": "stadtkino-eur",
              "face_value": 1000} for n in range(1, 7)]
    status, _, accepted = twin.request("POST", "/v1/batches", {"lines": lines},
                                       headers={"Idempotency-Key": uuid.uuid4().hex})
    assert status == 202, accepted
    view = wait(twin, accepted["batch_id"])
    assert view["status"] == "completed_with_failures" and view["counts"]["failed"] == 2
    status, _, failed = twin.request("GET", f"/v1/batches/{accepted['batch_id']}/lines?status=failed")
    assert {x["failure_reason"] for x in failed["items"]} == {"provider_rejected"}
    retried = twin.treue("batch", "retry", accepted["batch_id"], "--quiet")
    assert retried.returncode == 0, retried.stderr
    view = json.loads(retried.stdout)
    assert view["status"] == "completed" and view["counts"]["issued"] == 6 and view["runs"] == 2
    runs, after = [], ""
    deadline = time.monotonic() + 30
    while len(runs) < 2 and time.monotonic() < deadline:  # events settle 2 s before the log lists them
        status, _, page = twin.request("GET", f"/v1/events?type=batch.completed&limit=500&after={after}")
        runs += [e["data"]["status"] for e in page["items"] if e["data"]["batch_id"] == accepted["batch_id"]]
        after = page["next_after"]
        if not page["items"]:
            time.sleep(0.5)
    assert runs == ["completed_with_failures", "completed"]
