"""Finance report jobs: POST /v1/finance/reports, the report worker over several continuations (a small
page size and time slice), results in S3 equal to the synchronous answers, the synchronous routes
refusing what they cannot finish in time, and the failure path."""

import csv
import io
import json
import time
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from tests.integration.conftest import REGION
from tests.integration.helpers import call
from tests.integration.test_orders import member_with, order_body, place, wait
from tests.support import LambdaContext, api_event, body_of, load_event
from treue import runtime
from treue.handlers import finance, report_worker
from treue.providers.simulated import _issuance_pk

PAGE_SIZE = 3


class Slice(LambdaContext):
    """A worker invocation with time for ``pages`` pages: the first call sets the reserve, the next
    ``pages`` answer plenty of time, every later one too little."""

    def __init__(self, pages: int) -> None:
        self.pages, self.calls = pages, 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        return 300_000 if self.calls <= self.pages + 1 else 1_000


class Countdown(LambdaContext):
    """A request whose remaining time drops by ``step_ms`` at every look."""

    def __init__(self, start_ms: int = 29_000, step_ms: int = 3_000) -> None:
        self.left, self.step = start_ms, step_ms

    def get_remaining_time_in_millis(self) -> int:
        self.left -= self.step
        return max(0, self.left)


@pytest.fixture
def jobs(shop, monkeypatch):
    """The report queue and the batch bucket (reports/ prefix), a small page size."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="treue-batches", CreateBucketConfiguration={"LocationConstraint": REGION})
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="treue-reports-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="treue-reports", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    monkeypatch.setenv("BATCH_BUCKET", "treue-batches")
    monkeypatch.setenv("REPORT_QUEUE_URL", url)
    monkeypatch.setenv("REPORT_PAGE_SIZE", str(PAGE_SIZE))
    runtime.reset()
    return {"s3": s3, "sqs": sqs, "queue": url, "dlq": dlq}


def today() -> str:
    return runtime.now()[:10]


def a_day_of_orders(shop) -> list[str]:
    """Gift cards, a donation and a voucher, completed today; one gift card's provider record removed."""
    member = member_with(shop, 20_000)
    placed = []
    for body in (order_body(member, "atelier-mode-eur", 2500), order_body(member, "atelier-mode-eur", 2500),
                 order_body(member, "kaffeekranz-eur", 1000), order_body(member, "kuestenwald", 1000, method="api"),
                 order_body(member, "voucher-5-off", method="api")):
        status, answer = place(shop, body)
        assert status == 202, answer
        placed.append(answer["order_id"])
    for order_id in placed:
        assert wait(shop, order_id)["status"] == "COMPLETED"
    runtime.store().ddb.delete_item(TableName=runtime.store().table,
                                    Key={"pk": {"S": _issuance_pk(shop["program_id"], placed[0])},
                                         "sk": {"S": "ISSUANCE"}})
    return placed


def request_report(shop, body, key=None, scope="finance"):
    event = api_event("finance/post_report.json", auth=shop["auth"][scope], body=body,
                      headers={"Idempotency-Key": key or f"r-{time.monotonic_ns()}"})
    response = finance.handler(event, LambdaContext())
    return response["statusCode"], body_of(response), response


def get_report(shop, report_id, scope="finance"):
    return call(finance, "finance/get_report.json", shop["auth"][scope], path=f"/v1/finance/reports/{report_id}",
                path_parameters={"report_id": report_id})[:2]


def run_worker(jobs, pages: int, limit: int = 200) -> list[dict]:
    """Deliver the report queue's messages one at a time to the worker (as the event source mapping
    does with batch size 1) until the queue is empty; the batch responses, in order."""
    sample = load_event("report_worker/step.json")["Records"][0]
    answers = []
    for _ in range(limit):
        out = jobs["sqs"].receive_message(QueueUrl=jobs["queue"], MaxNumberOfMessages=1, AttributeNames=["All"])
        if not out.get("Messages"):
            return answers
        message = out["Messages"][0]
        record = {**sample, "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                  "body": message["Body"], "attributes": message["Attributes"]}
        answer = report_worker.handler({"Records": [record]}, Slice(pages))
        answers.append(answer)
        if answer["batchItemFailures"]:
            jobs["sqs"].change_message_visibility(QueueUrl=jobs["queue"], ReceiptHandle=message["ReceiptHandle"],
                                                  VisibilityTimeout=0)
        else:
            jobs["sqs"].delete_message(QueueUrl=jobs["queue"], ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the report queue did not drain")


def result_of(jobs, report) -> bytes:
    url = urlparse(report["result"]["url"])
    assert parse_qs(url.query)["X-Amz-Expires"] == ["300"]
    return jobs["s3"].get_object(Bucket="treue-batches", Key=url.path.lstrip("/"))["Body"].read()


# ---------------------------------------------------------------- the job, start to finish


def test_a_reconciliation_job_runs_over_several_continuations_and_equals_the_synchronous_answer(shop, jobs):
    placed = a_day_of_orders(shop)
    status, accepted, response = request_report(shop, {"type": "reconciliation", "date": today()})
    assert status == 202, accepted
    assert accepted["status"] == "queued" and not accepted["replayed"] and accepted["result"] is None
    assert response["multiValueHeaders"]["Location"] == [f"/v1/finance/reports/{accepted['report_id']}"]

    answers = run_worker(jobs, pages=2)
    assert all(not a["batchItemFailures"] for a in answers)
    status, report = get_report(shop, accepted["report_id"])
    assert status == 200 and report["status"] == "completed", report
    assert report["progress"]["continuations"] >= 5 and len(answers) == report["progress"]["continuations"]
    assert report["progress"]["orders_checked"] == len(placed) and report["progress"]["pages"] >= 8
    assert report["result"]["content_type"] == "application/json"
    assert report["result"]["file_name"] == f"reconciliation-{today()}.json"

    status, synchronous, _ = call(finance, "finance/get_reconciliation.json", shop["auth"]["finance"],
                                  query={"date": today()})
    assert status == 200, synchronous
    assert json.loads(result_of(jobs, report)) == synchronous
    assert [d["check"] for d in synchronous["differences"]] == ["provider"]  # the removed record, found by both
    assert report["summary"] == {"orders": len(placed), "postings": synchronous["checked"]["postings"],
                                 "movements": synchronous["checked"]["movements"], "in_flight": 0, "differences": 1}
    leftovers = jobs["s3"].list_objects_v2(Bucket="treue-batches", Prefix="reports/").get("Contents", [])
    assert [o["Key"].rsplit("/", 1)[-1] for o in leftovers] == [report["result"]["file_name"]]  # no state files


def test_a_payouts_csv_job_equals_every_page_of_the_synchronous_csv(shop, jobs):
    a_day_of_orders(shop)
    status, accepted, _ = request_report(shop, {"type": "payouts", "from": today(), "to": today(), "format": "csv"})
    assert status == 202, accepted
    run_worker(jobs, pages=1)
    _, report = get_report(shop, accepted["report_id"])
    assert report["status"] == "completed" and report["progress"]["continuations"] >= 2
    assert report["summary"] == {"rows": 5}
    event = api_event("finance/get_payouts.json", auth=shop["auth"]["finance"], headers={"Accept": "text/csv"},
                      query={"from": today(), "to": today(), "limit": "1000"})
    synchronous = finance.handler(event, LambdaContext())
    assert synchronous["statusCode"] == 200
    job_rows = list(csv.DictReader(io.StringIO(result_of(jobs, report).decode())))
    assert job_rows == list(csv.DictReader(io.StringIO(synchronous["body"])))
    assert len(job_rows) == 5


def test_a_kpi_job_equals_the_synchronous_kpis(shop, jobs):
    a_day_of_orders(shop)
    status, accepted, _ = request_report(shop, {"type": "kpis", "from": today()})
    assert status == 202, accepted
    run_worker(jobs, pages=2)
    _, report = get_report(shop, accepted["report_id"])
    assert report["status"] == "completed"
    _, synchronous, _ = call(finance, "finance/get_kpis.json", shop["auth"]["finance"], query={"from": today()})
    assert json.loads(result_of(jobs, report)) == synchronous and synchronous["points_redeemed"] > 0


def test_a_duplicate_message_changes_nothing(shop, jobs):
    a_day_of_orders(shop)
    _, accepted, _ = request_report(shop, {"type": "journal", "date": today()})
    first = jobs["sqs"].receive_message(QueueUrl=jobs["queue"], AttributeNames=["All"])["Messages"][0]
    jobs["sqs"].send_message(QueueUrl=jobs["queue"], MessageBody=first["Body"])  # delivered twice
    jobs["sqs"].change_message_visibility(QueueUrl=jobs["queue"], ReceiptHandle=first["ReceiptHandle"],
                                          VisibilityTimeout=0)
    run_worker(jobs, pages=2)
    _, report = get_report(shop, accepted["report_id"])
    assert report["status"] == "completed"
    rows = json.loads(result_of(jobs, report))["items"]
    assert len(rows) == len({r["id"] for r in rows}) == report["summary"]["rows"] == report["progress"]["items"]


# ---------------------------------------------------------------- requests


def test_the_same_idempotency_key_answers_the_same_report_and_another_body_is_a_conflict(shop, jobs):
    body = {"type": "reconciliation", "date": "2026-11-24"}
    status, first, _ = request_report(shop, body, key="recon-1")
    again_status, again, _ = request_report(shop, body, key="recon-1")
    assert (status, again_status) == (202, 202)
    assert again["report_id"] == first["report_id"] and again["replayed"]
    conflict_status, conflict, _ = request_report(shop, {**body, "format": "csv"}, key="recon-1")
    assert conflict_status == 409 and conflict["type"].endswith("idempotency-conflict")
    status, listed, _ = call(finance, "finance/list_reports.json", shop["auth"]["admin"])
    assert status == 200 and [r["report_id"] for r in listed["items"]] == [first["report_id"]]


@pytest.mark.parametrize("body, field", [
    ({"type": "reconciliation"}, "date"),
    ({"type": "reconciliation", "date": "2026-11-24", "from": "2026-11-01"}, "date"),
    ({"type": "ledger", "date": "2026-11-24"}, "type"),
    ({"type": "kpis", "date": "24.11.2026"}, "date"),
    ({"type": "payouts", "from": "2026-11-30", "to": "2026-11-01"}, "from"),
    ({"type": "journal", "format": "xlsx"}, "format"),
])
def test_a_bad_report_request_is_a_4xx_with_the_reason(shop, jobs, body, field):
    status, problem, response = request_report(shop, body)
    assert status in (400, 422) and response["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    assert field in json.dumps(problem), problem
    assert jobs["sqs"].receive_message(QueueUrl=jobs["queue"]).get("Messages") is None


def test_reports_need_a_finance_or_admin_key_and_an_idempotency_key(shop, jobs):
    status, problem, _ = request_report(shop, {"type": "kpis"}, scope="partner")
    assert status == 403, problem
    event = api_event("finance/post_report.json", auth=shop["auth"]["finance"], body={"type": "kpis"})
    del event["headers"]["Idempotency-Key"], event["multiValueHeaders"]["Idempotency-Key"]
    response = finance.handler(event, LambdaContext())
    assert response["statusCode"] == 400 and "Idempotency-Key" in response["body"]
    status, missing = get_report(shop, "rpt_01jd0000000000000000000000")
    assert status == 404 and missing["type"].endswith("report-not-found")


# ---------------------------------------------------------------- what the synchronous routes refuse


def test_the_synchronous_reconciliation_refuses_a_day_it_cannot_read_in_time(shop, jobs):
    a_day_of_orders(shop)
    event = api_event("finance/get_reconciliation.json", auth=shop["auth"]["finance"], query={"date": today()})
    response = finance.handler(event, Countdown(step_ms=3_000))  # time for 6 pages of 3 items
    assert response["statusCode"] == 422, response["body"]
    assert response["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    problem = json.loads(response["body"])
    assert problem["type"].endswith("report-too-large") and "POST /v1/finance/reports" in problem["detail"]
    assert problem["report_request"] == {"method": "POST", "href": "/v1/finance/reports",
                                         "body": {"type": "reconciliation", "date": today()}}
    assert problem["read_so_far"]["pages"] == 6
    # with the whole request's time it answers
    assert finance.handler(event, LambdaContext())["statusCode"] == 200


def test_a_dynamodb_timeout_in_a_synchronous_report_is_a_4xx_not_a_500(shop, jobs):
    a_day_of_orders(shop)

    def time_out(**_):
        raise ReadTimeoutError(endpoint_url="https://dynamodb.eu-central-1.amazonaws.com")

    runtime.store().ddb.meta.events.register("before-call.dynamodb.Query", time_out)
    try:
        for sample, query in (("get_reconciliation", {"date": today()}), ("get_kpis", {}),
                              ("get_payouts", {"from": today()}), ("get_journal", {})):
            status, problem, response = call(finance, f"finance/{sample}.json", shop["auth"]["finance"], query=query)
            assert status == 422 and problem["type"].endswith("report-too-large"), (sample, problem)
            assert "did not answer" in problem["detail"] and problem["report_request"]["href"] == "/v1/finance/reports"
    finally:
        runtime.store().ddb.meta.events.unregister("before-call.dynamodb.Query", time_out)


# ---------------------------------------------------------------- failures


def test_a_report_whose_steps_keep_failing_is_marked_failed_with_the_reason(shop, jobs, monkeypatch):
    a_day_of_orders(shop)
    status, accepted, _ = request_report(shop, {"type": "reconciliation", "date": today()})
    assert status == 202

    def broken(self, program_id, order_id):
        raise RuntimeError("provider records unreadable")

    monkeypatch.setattr("treue.providers.simulated.SimulatedProvider.status", broken)
    answers = run_worker(jobs, pages=50)
    assert [bool(a["batchItemFailures"]) for a in answers] == [True, True, False]  # retried, then failed
    _, report = get_report(shop, accepted["report_id"])
    assert report["status"] == "failed" and report["result"] is None
    assert "RuntimeError: provider records unreadable" in report["failure_reason"]
    assert "attempt 3" in report["failure_reason"]
    assert jobs["sqs"].receive_message(QueueUrl=jobs["dlq"]).get("Messages") is None  # failed, not dead-lettered
