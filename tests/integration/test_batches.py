"""Bulk issuance on moto: validation with line numbers, the whole-batch budget check, the batch state
machine (Distributed Map over the run's S3 items file) issuing every line exactly once, failures,
retries, re-drives, lines as JSON and CSV, CSV uploads."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid

import pytest

from tests.integration.helpers import call, enroll, events_of
from tests.support import LambdaContext, api_event
from treue import runtime
from treue.handlers import batch_tasks, batches
from treue.logic import batch_run
from treue.providers.simulated import set_fault
from treue.store.batches import batch_pk, counts_pk
from treue.store.items import to_item

pytestmark = pytest.mark.usefixtures("batch_machine")


def line(n, **kw):
    return {"reference": f"line-{n:05d}", "recipient": {"email": f"person{n}@example.com"},
            "item_id": "kaffeekranz-eur", "face_value": 1000, **kw}


def submit(shop, body, key=None, scope="partner"):
    return call(batches, "batches/post_batch.json", shop["auth"][scope], body=body,
                headers={"Idempotency-Key": key or uuid.uuid4().hex})


def get_batch(shop, batch_id):
    status, view, _ = call(batches, "batches/get_batch.json", shop["auth"]["finance"],
                           path=f"/v1/batches/{batch_id}", path_parameters={"batch_id": batch_id})
    assert status == 200, view
    return view


def wait_batch(shop, batch_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = get_batch(shop, batch_id)
        if view["status"] in ("completed", "completed_with_failures", "halted"):
            return view
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} did not finish: {view}")


def lines_of(shop, batch_id, **query):
    status, page, _ = call(batches, "batches/get_lines.json", shop["auth"]["partner"],
                           path=f"/v1/batches/{batch_id}/lines", path_parameters={"batch_id": batch_id},
                           query={k: str(v) for k, v in query.items()})
    assert status == 200, page
    return page


def all_lines(shop, batch_id):
    out, cursor = [], None
    while True:
        page = lines_of(shop, batch_id, limit=50, **({"cursor": cursor} if cursor else {}))
        out += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def retry(shop, batch_id):
    return call(batches, "batches/post_retry.json", shop["auth"]["partner"],
                path=f"/v1/batches/{batch_id}/retry", path_parameters={"batch_id": batch_id})


def budget(shop, currency="EUR"):
    return runtime.budgets().available(shop["program_id"], currency)[0]


def held(shop, currency="EUR"):
    """budget:held, after checking it equals what the program's batches hold."""
    account = runtime.budgets().accounts(shop["program_id"]).get(currency, {}).get("budget:held", 0)
    assert runtime.budgets().holds(shop["program_id"]).get(currency, 0) == account
    return account


def movements_of(shop, batch_id):
    moves, _ = runtime.budgets().movements(shop["program_id"], "EUR", 500, None)
    return sorted((m["type"], m["amount"]) for m in moves if m["reference"] == batch_id)


def rewards_of(shop, batch_id):
    orders = runtime.orders()
    found = []
    for entry in runtime.batches().lines(shop["program_id"], batch_id):
        for attempt in range(1, entry.attempt + 1):
            from treue.logic.batches import line_reward_id

            order = orders.get(shop["program_id"], line_reward_id(batch_id, entry.line, attempt))
            if order is not None:
                found.append(order)
    return found


def test_a_batch_issues_every_line_once_pays_from_the_budget_and_says_it_completed(shop):
    member_status, member, _ = enroll(shop["auth"]["partner"], {"email": "mia@example.com", "name": "Mia"},
                                      headers={"Idempotency-Key": "mia"})
    assert member_status == 201
    body = {"name": "Q4 thanks", "lines": [line(n) for n in range(1, 25)] + [
        line(25, recipient={"member_id": member["id"]}, item_id="nordlicht-books-eur", face_value=2500),
        line(26, recipient={"external_id": "emp-26"}, delivery={"method": "api"}),
    ]}
    before = budget(shop)
    status, accepted, response = submit(shop, body)
    assert status == 202, accepted
    assert accepted["status"] == "queued" and accepted["lines"] == 26 and accepted["rejected_lines"] == []
    assert response["multiValueHeaders"]["Location"] == [f"/v1/batches/{accepted['batch_id']}"]
    # face value + fee: kaffeekranz charges 25, nordlicht none
    assert accepted["cost"] == [{"value": 25 * 1025 + 2500, "currency": "EUR"}]
    view = wait_batch(shop, accepted["batch_id"])
    assert view["status"] == "completed" and view["runs"] == 1
    assert view["counts"] == {"pending": 0, "processing": 0, "issued": 26, "failed": 0, "rejected": 0}
    assert budget(shop) == before - (25 * 1025 + 2500)
    found = rewards_of(shop, accepted["batch_id"])
    assert len(found) == 26 and {o.status for o in found} == {"COMPLETED"}
    assert {o.batch_id for o in found} == {accepted["batch_id"]}
    provider = runtime.provider()
    assert sum(provider.issuance_count(shop["program_id"], o.id) for o in found) == 26
    lines = all_lines(shop, accepted["batch_id"])
    assert [x["line"] for x in lines] == list(range(1, 27))
    assert all(x["status"] == "issued" and x["attempt"] == 1 and x["reward_id"] for x in lines)
    [done] = [e for e in events_of(shop, ["batch.completed"]) if e["data"]["batch_id"] == accepted["batch_id"]]
    assert done["data"]["status"] == "completed" and done["data"]["counts"]["issued"] == 26
    assert len(events_of(shop, ["reward.delivered"])) == 26
    from tests.integration.test_finance import TODAY, fin, reconciliation, trial

    assert reconciliation(shop)["differences"] == [] and trial(shop)["balanced"]
    status, payouts, _ = fin(shop, "get_payouts", query={"from": TODAY(), "limit": "100"})
    assert status == 200, payouts  # rewards have a recipient, not a member
    by_id = {p["order_id"]: p for p in payouts["items"]}
    assert all(o.id in by_id for o in found)
    assert {by_id[o.id].get("member_id") for o in found} == {None, member["id"]}


def test_every_bad_line_is_reported_with_its_number_and_nothing_is_issued(shop):
    before = budget(shop)
    body = {"lines": [
        line(1),
        line(2, item_id="no-such-item"),
        line(3, face_value=1234),  # kaffeekranz takes 500, 1000 or 2000
        {"reference": "line-00004", "item_id": "kaffeekranz-eur", "face_value": 1000, "recipient": {}},
        line(1),  # the reference of line 1 again
        line(6, recipient={"member_id": "mbr_01jzzzzzzzzzzzzzzzzzzzzzzz"}),
        "not an object",
        line(8, item_id="tafelrunde-hilfe"),  # a charity, not a gift card or voucher
    ]}
    status, problem, _ = submit(shop, body)
    assert status == 422, problem
    assert problem["type"].endswith("batch-invalid") and "nothing was issued" in problem["detail"]
    by_line = {p["line"]: p for p in problem["errors"]}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8]
    assert "does not exist" in by_line[2]["reason"] and by_line[2]["field"] == "item_id"
    assert by_line[3]["field"] == "face_value"
    assert by_line[4]["field"] == "recipient"
    assert "already used by line 1" in by_line[5]["reason"]
    assert by_line[6]["field"] == "recipient.member_id"
    assert by_line[8]["reason"].endswith("rewards are gift cards or vouchers")
    assert budget(shop) == before
    assert runtime.batches().page(shop["program_id"], None, 10)[0] == []


def test_partial_issues_the_valid_lines_and_records_the_rejected_ones(shop):
    body = {"partial": True, "lines": [line(1), line(2, item_id="no-such-item"), line(3)]}
    status, accepted, _ = submit(shop, body)
    assert status == 202, accepted
    assert [p["line"] for p in accepted["rejected_lines"]] == [2] and accepted["rejected"] == 1
    view = wait_batch(shop, accepted["batch_id"])
    assert view["counts"] == {"pending": 0, "processing": 0, "issued": 2, "failed": 0, "rejected": 1}
    assert view["status"] == "completed"
    rejected = lines_of(shop, accepted["batch_id"], status="rejected")["items"]
    assert [(x["line"], x["status"]) for x in rejected] == [(2, "rejected")]
    assert "does not exist" in rejected[0]["failure_reason"]


def test_a_batch_over_the_budget_is_refused_before_anything_is_issued(payout, batch_machine, store):
    from tests.integration.test_finance import new_program
    from treue.logic import budget as money

    brand = new_program(store, "Small budget")
    money.fund(runtime.budgets(), brand["program_id"], "EUR", 10_000, "seed", "seed", "test", runtime.now())
    body = {"lines": [line(n) for n in range(1, 11)]}  # 10 × 10.25 EUR = 102.50 > 100.00
    status, problem, _ = submit(brand, body, scope="admin")
    assert status == 409 and problem["type"].endswith("insufficient-funds"), problem
    assert problem["shortfalls"] == [{"currency": "EUR", "needed": 10_250, "available": 10_000}]
    assert runtime.batches().page(brand["program_id"], None, 10)[0] == []
    assert [e for e in events_of(brand) if e["type"] in ("order.completed", "reward.delivered")] == []
    assert budget(brand) == 10_000


def test_the_same_key_answers_the_same_batch_and_another_body_conflicts(shop):
    body = {"lines": [line(1), line(2)]}
    status, first, _ = submit(shop, body, key="batch-key-1")
    assert status == 202 and not first["replayed"]
    status, again, _ = submit(shop, body, key="batch-key-1")
    assert status == 202 and again["replayed"] and again["batch_id"] == first["batch_id"]
    status, problem, _ = submit(shop, {"lines": [line(1)]}, key="batch-key-1")
    assert status == 409 and problem["type"].endswith("idempotency-conflict")
    wait_batch(shop, first["batch_id"])
    assert len(rewards_of(shop, first["batch_id"])) == 2


def test_failed_lines_return_their_money_and_a_retry_issues_only_them(shop):
    # the provider rejects the next 3 kaffeekranz cards for good, then answers 503 twice (retried)
    set_fault(runtime.store().ddb, runtime.store().table, shop["program_id"], "rejected", brand="Kaffeekranz",
              times=3)
    before = budget(shop)
    status, accepted, _ = submit(shop, {"lines": [line(n) for n in range(1, 13)]})
    assert status == 202
    bid = accepted["batch_id"]
    view = wait_batch(shop, bid)
    assert view["status"] == "completed_with_failures"
    assert view["counts"]["issued"] == 9 and view["counts"]["failed"] == 3
    assert budget(shop) == before - 9 * 1025  # the failed lines gave their money back
    # they drew from the hold, then gave it back to the available balance when they failed
    assert held(shop) == 0 and movements_of(shop, bid) == [("hold", 12 * 1025)]
    failed = lines_of(shop, bid, status="failed")["items"]
    assert {x["failure_reason"] for x in failed} == {"provider_rejected"} and len(failed) == 3
    [event] = [e for e in events_of(shop, ["batch.completed"]) if e["data"]["batch_id"] == bid]
    assert event["data"]["status"] == "completed_with_failures"

    set_fault(runtime.store().ddb, runtime.store().table, shop["program_id"], "5xx", brand="Kaffeekranz", times=2)
    status, retried, _ = retry(shop, bid)
    assert status == 202 and retried["run"] == 2 and retried["lines"] == 3, retried
    view = wait_batch(shop, bid)
    assert view["status"] == "completed" and view["runs"] == 2
    assert view["counts"] == {"pending": 0, "processing": 0, "issued": 12, "failed": 0, "rejected": 0}
    assert budget(shop) == before - 12 * 1025
    # the retry held the 3 lines' cost again; they used all of it
    assert held(shop) == 0 and movements_of(shop, bid) == [("hold", 3 * 1025), ("hold", 12 * 1025)]
    lines = all_lines(shop, bid)
    assert sorted(x["attempt"] for x in lines) == [1] * 9 + [2] * 3
    found = rewards_of(shop, bid)
    assert len(found) == 15
    assert sorted(o.status for o in found).count("COMPLETED") == 12
    assert all(o.funds_returned_at for o in found if o.status == "FAILED")
    completed_ids = {o.id for o in found if o.status == "COMPLETED"}
    assert completed_ids == {x["reward_id"] for x in lines}  # each line's one issued reward
    provider = runtime.provider()
    live = [o for o in found if provider.status(shop["program_id"], o.id) is not None
            and provider.status(shop["program_id"], o.id).status == "ISSUED"]
    assert len(live) == 12
    assert len([e for e in events_of(shop, ["batch.completed"]) if e["data"]["batch_id"] == bid]) == 2
    from tests.integration.test_finance import reconciliation

    assert reconciliation(shop)["differences"] == []
    status, problem, _ = retry(shop, bid)
    assert status == 409 and problem["type"].endswith("nothing-to-retry")


def test_a_redriven_line_continues_its_reward_instead_of_issuing_another(shop):
    status, accepted, _ = submit(shop, {"lines": [line(1), line(2)]})
    bid = accepted["batch_id"]
    wait_batch(shop, bid)
    event = {"program_id": shop["program_id"], "batch_id": bid, "run": 1, "line": 1}
    assert batch_tasks.issue_line(event, LambdaContext())["status"] == "issued"
    assert len(rewards_of(shop, bid)) == 2

    # a line whose task died after the reward was created: the re-drive finishes the same reward
    deps = batch_tasks.deps()
    store = runtime.batches()
    n = 3
    inject_pending_line(shop, bid, n)
    from treue.logic import budget as money

    hold, _, _ = money.hold_plan(runtime.budgets(), shop["program_id"], bid, 2, {"EUR": 1025}, runtime.now())
    store.transact(hold)  # its cost held, as a run's lines' is
    line3 = store.line(shop["program_id"], bid, n)
    started, _ = batch_run._start(deps, line3, 1, 2, runtime.now(), source="pending")
    assert started.status == "processing"
    again = {**event, "line": n, "run": 2}
    assert batch_tasks.issue_line(again, LambdaContext())["status"] == "issued"
    assert batch_tasks.issue_line(again, LambdaContext())["status"] == "issued"
    assert len(rewards_of(shop, bid)) == 3
    assert runtime.provider().issuance_count(shop["program_id"], started.reward_id) == 1


def inject_pending_line(shop, bid, n):
    """Line ``n`` added to batch ``bid`` as pending (and counted), as if it had been accepted with it."""
    store = runtime.batches()
    store._write_all([{"PutRequest": {"Item": to_item({
        "pk": batch_pk(shop["program_id"], bid), "sk": f"LINE#{n:06d}", "program_id": shop["program_id"],
        "batch_id": bid, "line": n, **_accepted_line(n), "status": "pending", "attempt": 1, "run": 0,
        "updated_at": runtime.now()})}}])
    store.transact([{"Update": {"TableName": store.table,
                                "Key": {"pk": {"S": counts_pk(shop["program_id"], bid)},
                                        "sk": {"S": f"COUNT#{n % 16:02d}"}},
                                "UpdateExpression": "ADD pending :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}}}}])


def test_a_line_running_after_its_run_released_the_hold_fails_without_paying_and_a_retry_issues_it(shop):
    status, accepted, _ = submit(shop, {"lines": [line(1), line(2)]})
    bid = accepted["batch_id"]
    assert wait_batch(shop, bid)["status"] == "completed" and held(shop) == 0
    inject_pending_line(shop, bid, 3)  # a straggler: its run has ended and given back what it held
    before = budget(shop)
    with pytest.raises(batch_run.LineFailed, match="insufficient_funds"):
        batch_tasks.issue_line({"program_id": shop["program_id"], "batch_id": bid, "run": 1, "line": 3},
                               LambdaContext())
    assert budget(shop) == before and held(shop) == 0
    [failed] = lines_of(shop, bid, status="failed")["items"]
    assert failed["line"] == 3 and failed["failure_reason"] == "insufficient_funds"
    # the batch ended before the straggler failed: a retry holds its cost again and issues it
    status, retried, _ = retry(shop, bid)
    assert status == 202 and retried["lines"] == 1, retried
    assert wait_batch(shop, bid)["counts"]["issued"] == 3
    assert budget(shop) == before - 1025 and held(shop) == 0


def test_an_accepted_batch_holds_its_cost_so_no_other_batch_can_spend_it(payout, batch_machine, store, monkeypatch):
    from tests.integration.test_finance import new_program
    from treue.logic import batches as logic
    from treue.logic import budget as money

    brand = new_program(store, "Two batches")
    pid = brand["program_id"]
    money.fund(runtime.budgets(), pid, "EUR", 30_000, "seed", "seed", "test", runtime.now())
    runtime.budgets().set_threshold(pid, "EUR", 15_000, runtime.now())
    queued = []
    with monkeypatch.context() as patch:
        patch.setattr(logic, "start_run", lambda *args: queued.append(args))  # accepted, not yet run
        status, first, _ = submit(brand, {"lines": [line(n) for n in range(1, 21)]}, scope="admin")  # 205 EUR
    assert status == 202 and len(queued) == 1, first
    assert budget(brand) == 9_500 and held(brand) == 20_500  # nothing issued yet, all of it held
    [low] = events_of(brand, ["budget.low"])
    assert low["data"] == {"currency": "EUR", "balance": {"value": 9_500, "currency": "EUR"},
                           "threshold": {"value": 15_000, "currency": "EUR"}, "batch_id": first["batch_id"]}
    status, problem, _ = submit(brand, {"lines": [line(n) for n in range(1, 11)]}, scope="admin")  # 102.50 EUR
    assert status == 409 and problem["shortfalls"] == [{"currency": "EUR", "needed": 10_250, "available": 9_500}]
    assert len(runtime.batches().page(pid, None, 10)[0]) == 1

    status, _, _ = retry(brand, first["batch_id"])  # a batch whose run never began: start it
    assert status == 202
    view = wait_batch(brand, first["batch_id"])
    assert view["status"] == "completed" and view["counts"]["issued"] == 20
    assert budget(brand) == 9_500 and held(brand) == 0  # paid from the hold, nothing left to release
    assert movements_of(brand, first["batch_id"]) == [("hold", 20_500)]
    assert len(events_of(brand, ["budget.low"])) == 1
    from tests.integration.test_finance import reconciliation

    assert reconciliation(brand)["differences"] == []


def test_a_batch_whose_hold_is_refused_after_the_check_leaves_nothing_behind(payout, batch_machine, store,
                                                                            monkeypatch):
    from tests.integration.test_finance import new_program
    from treue.logic import batches as logic
    from treue.logic import budget as money

    brand = new_program(store, "Raced")
    pid = brand["program_id"]
    money.fund(runtime.budgets(), pid, "EUR", 10_000, "seed", "seed", "test", runtime.now())
    checks, real = [], logic._check_budget

    def spent_in_between(*args):  # the check passes; another payment takes the money before the hold
        checks.append(args)
        if len(checks) > 1:
            real(*args)

    monkeypatch.setattr(logic, "_check_budget", spent_in_between)
    status, problem, _ = submit(brand, {"lines": [line(n) for n in range(1, 11)]}, scope="admin")  # 102.50 EUR
    assert status == 409 and problem["shortfalls"] == [{"currency": "EUR", "needed": 10_250, "available": 10_000}]
    assert len(checks) == 2  # refused by the hold's condition, then explained by a second look
    assert runtime.batches().page(pid, None, 10)[0] == []
    table = runtime.store()
    left = table.ddb.scan(TableName=table.table, FilterExpression="program_id = :p AND begins_with(sk, :l)",
                          ExpressionAttributeValues={":p": {"S": pid}, ":l": {"S": "LINE#"}})
    assert left["Items"] == []  # the lines written before the transaction were deleted
    assert budget(brand) == 10_000 and held(brand) == 0
    assert [m["type"] for m in runtime.budgets().movements(pid, "EUR", 50, None)[0]] == ["funding"]


def _accepted_line(n):
    from treue.logic.models import RewardRequest

    request = RewardRequest.model_validate(line(n))
    return {"reference": request.reference, "request": request.model_dump(mode="json", exclude_none=True),
            "type": "gift_card", "item_id": "kaffeekranz-eur", "face_value": 1000, "currency": "EUR", "cost": 1025}


def test_lines_page_by_cursor_filter_by_status_and_export_as_csv(shop):
    status, accepted, _ = submit(shop, {"lines": [line(n) for n in range(1, 8)]})
    bid = accepted["batch_id"]
    wait_batch(shop, bid)
    first = lines_of(shop, bid, limit=3)
    assert [x["line"] for x in first["items"]] == [1, 2, 3] and first["next_cursor"] == "3"
    rest = lines_of(shop, bid, limit=10, cursor=first["next_cursor"])
    assert [x["line"] for x in rest["items"]] == [4, 5, 6, 7] and rest["next_cursor"] is None
    response = batches.handler(api_event("batches/get_lines_csv.json", auth=shop["auth"]["finance"],
                                         path=f"/v1/batches/{bid}/lines", path_parameters={"batch_id": bid}),
                               LambdaContext())
    assert response["statusCode"] == 200 and response["multiValueHeaders"]["Content-Type"][0].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response["body"])))
    assert len(rows) == 7 and rows[0]["reference"] == "line-00001" and rows[0]["status"] == "issued"
    assert rows[0]["currency"] == "EUR" and rows[0]["reward_id"].startswith("rwd_")
    status, problem, _ = call(batches, "batches/get_batch.json", shop["auth"]["partner"],
                              path="/v1/batches/bat_01jzzzzzzzzzzzzzzzzzzzzzzz",
                              path_parameters={"batch_id": "bat_01jzzzzzzzzzzzzzzzzzzzzzzz"})
    assert status == 404 and problem["type"].endswith("batch-not-found")


def test_a_csv_uploaded_to_the_presigned_url_becomes_a_batch(shop, batch_machine):
    text = "reference,item_id,face_value,email,name\r\n" + "".join(
        f"csv-{n},kaffeekranz-eur,500,p{n}@example.com,Person {n}\r\n" for n in range(1, 6)) + \
        "csv-6,kaffeekranz-eur,abc,p6@example.com,Six\r\n"
    status, upload, _ = call(batches, "batches/post_upload.json", shop["auth"]["partner"],
                             body={"content_length": len(text.encode())})
    assert status == 201 and upload["method"] == "PUT" and upload["url"].startswith("https://")
    assert upload["columns"][:2] == ["reference", "item_id"]
    key = f"uploads/{shop['program_id']}/{upload['upload_id']}.csv"
    batch_machine["s3"].put_object(Bucket="treue-batches", Key=key, Body=text.encode())
    body = {"upload_id": upload["upload_id"], "partial": True, "name": "from csv"}
    status, accepted, _ = submit(shop, body)
    assert status == 202, accepted
    assert accepted["lines"] == 6 and [p["line"] for p in accepted["rejected_lines"]] == [6]
    view = wait_batch(shop, accepted["batch_id"])
    assert view["counts"]["issued"] == 5 and view["name"] == "from csv"
    status, problem, _ = submit(shop, {"upload_id": "upl_01jzzzzzzzzzzzzzzzzzzzzzzz"})
    assert status == 404 and problem["type"].endswith("upload-not-found")


def _uploaded(shop, batch_machine, text):
    status, upload, _ = call(batches, "batches/post_upload.json", shop["auth"]["partner"],
                             body={"content_length": len(text.encode())})
    assert status == 201, upload
    key = f"uploads/{shop['program_id']}/{upload['upload_id']}.csv"
    batch_machine["s3"].put_object(Bucket="treue-batches", Key=key, Body=text.encode())
    return upload["upload_id"]


def test_the_same_file_uploaded_again_under_its_key_is_a_replay_and_another_file_a_conflict(shop, batch_machine):
    """A client that uploads a large file again (a new upload id) with the same Idempotency-Key, as
    `treue batch submit` does, gets the first batch back; another file under that key changes nothing."""
    text = "reference,item_id,face_value,email\r\n" + "".join(
        f"again-{n},kaffeekranz-eur,500,again{n}@example.com\r\n" for n in range(1, 4))
    key = f"file-{uuid.uuid4().hex}"
    status, first, _ = submit(shop, {"upload_id": _uploaded(shop, batch_machine, text)}, key=key)
    assert status == 202 and first["replayed"] is False, first
    status, again, _ = submit(shop, {"upload_id": _uploaded(shop, batch_machine, text)}, key=key)
    assert status == 202 and again["replayed"] is True and again["batch_id"] == first["batch_id"], again
    other = text.replace("again-3,kaffeekranz-eur,500", "again-3,kaffeekranz-eur,700")
    status, problem, _ = submit(shop, {"upload_id": _uploaded(shop, batch_machine, other)}, key=key)
    assert status == 409 and problem["type"].endswith("idempotency-conflict"), problem
    status, problem, _ = submit(shop, {"upload_id": "upl_01jzzzzzzzzzzzzzzzzzzzzzzz"}, key=key)
    assert status == 404 and problem["type"].endswith("upload-not-found"), problem
    assert wait_batch(shop, first["batch_id"])["counts"]["issued"] == 3


def test_a_run_that_stops_with_lines_unfinished_is_halted_and_a_retry_finishes_them(shop):
    status, accepted, _ = submit(shop, {"lines": [line(n) for n in range(1, 4)]})
    bid = accepted["batch_id"]
    wait_batch(shop, bid)
    # what a run stopped at the tolerated-failure threshold leaves: lines still pending
    store = runtime.batches()
    pid = shop["program_id"]
    store.transact(store.line_move(pid, bid, 2, "issued", "pending", 1, runtime.now()))
    store.queue_run(pid, bid, 2, runtime.now())
    store.begin_run(pid, bid, 2, runtime.now())
    out = batch_tasks.finish({"program_id": pid, "batch_id": bid, "run": 2,
                              "error": {"Error": "States.ExceedToleratedFailureThreshold",
                                        "Cause": "more than 10% of the lines failed"}}, LambdaContext())
    assert out["status"] == "halted"
    view = get_batch(shop, bid)
    assert view["status"] == "halted" and "ExceedToleratedFailureThreshold" in view["halted_reason"]
    assert batch_tasks.finish({"program_id": pid, "batch_id": bid, "run": 2}, LambdaContext())["finished"] == "before"


def test_batches_need_a_key_and_finance_keys_cannot_submit(shop):
    status, problem, _ = call(batches, "batches/post_batch.json", shop["auth"]["partner"],
                              body={"lines": [line(1)]}, headers={"Idempotency-Key": ""})
    assert status == 400 and problem["header"] == "Idempotency-Key"
    status, problem, _ = submit(shop, {"lines": [line(1)]}, scope="finance")
    assert status == 403
    status, problem, _ = submit(shop, {"lines": [line(1)], "upload_id": "upl_01jzzzzzzzzzzzzzzzzzzzzzzz"})
    assert status == 422 and "not both" in json.dumps(problem)
    status, problem, _ = submit(shop, {"lines": []})
    assert status == 422


def test_a_line_whose_retries_run_out_fails_through_fail_line_and_returns_its_money(shop):
    # the provider answers 503 on every call: the line's task is retried (3 times), then FailLine ends it
    set_fault(runtime.store().ddb, runtime.store().table, shop["program_id"], "5xx", brand="Kaffeekranz")
    before = budget(shop)
    status, accepted, _ = submit(shop, {"lines": [line(1)]})
    assert status == 202
    view = wait_batch(shop, accepted["batch_id"])
    assert view["status"] == "completed_with_failures" and view["counts"]["failed"] == 1
    [failed] = lines_of(shop, accepted["batch_id"])["items"]
    assert failed["failure_reason"] == "provider_unavailable"
    reward = runtime.orders().require(shop["program_id"], failed["reward_id"])
    assert reward.status == "FAILED" and reward.funds_returned_at
    assert budget(shop) == before
