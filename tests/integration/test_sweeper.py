"""Issue 13, item 5, on moto: nothing stays stuck. The process is killed at each step — between the
hold's commit and StartExecution (orders, rewards, batches), in BeginRun, in FinishRun, after an
execution ended without its record — and the sweeper (or a retry) settles every record: orders end
COMPLETED or FAILED with their points and money accounted for, batches end final with their hold
released, and a retry works again."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.helpers import buy, call, enroll, purchase
from tests.integration.test_batches import budget, get_batch, held, line, retry, submit, wait_batch
from tests.support import LambdaContext, api_event, body_of, load_event
from treue import runtime
from treue.handlers import accrual, orders, rewards
from treue.handlers import sweeper as sweeper_handler
from treue.logic import batches as batch_logic
from treue.logic import sweeper
from treue.store.batches import BatchStore
from treue.store.watchlist import Watchlist
from treue.store.workflow import PayoutStarter, Starter

pytestmark = pytest.mark.usefixtures("batch_machine")
GIFT_CARD_COST = 1025  # a 10 EUR Kaffeekranz card: face value and fee


class Killed(BaseException):
    """The function's process died here: like SystemExit, no handler code catches it."""


# ---------------------------------------------------------------- helpers


def member_with(shop, points: int) -> str:
    status, body, _ = enroll(shop["auth"]["partner"], {"email": f"m{time.monotonic_ns()}@example.com"})
    assert status == 201, body
    status, out, _ = purchase(shop["auth"]["partner"], body["id"], buy(f"t-{time.monotonic_ns()}", points * 100))
    assert status == 200, out
    return body["id"]


def post(module, sample, shop, body, key=None):
    event = api_event(sample, auth=shop["auth"]["partner"], body=body,
                      headers={"Idempotency-Key": key or uuid.uuid4().hex})
    response = module.handler(event, LambdaContext())
    return response["statusCode"], body_of(response)


def order_body(member_id, value=1000):
    return {"member_id": member_id, "item_id": "nordlicht-books-eur", "face_value": value, "quantity": 1,
            "delivery": {"method": "email"}}


def reward_body():
    return {"recipient": {"email": "ada@example.com"}, "item_id": "kaffeekranz-eur", "face_value": 1000,
            "reference": f"ref-{uuid.uuid4().hex[:8]}"}


def points(shop, member_id):
    status, body, _ = call(accrual, "accrual/get_balance.json", shop["auth"]["partner"],
                           path=f"/v1/members/{member_id}/balance", path_parameters={"member_id": member_id})
    assert status == 200, body
    return body["available"], body["held"]


def wait_order(shop, order_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = runtime.orders().require(shop["program_id"], order_id)
        if order.status in ("COMPLETED", "FAILED"):
            return order
        time.sleep(0.05)
    raise AssertionError(f"order {order_id} did not finish: {order.status}")


def only_order(shop, member_id):
    page, _ = runtime.orders().list_for_member(shop["program_id"], member_id, 10, None)
    [order] = page
    return order


def later(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_sweeper(monkeypatch, minutes=6.0):
    """One scheduled run of the sweeper function, ``minutes`` from now (its grace period is 5)."""
    at = later(minutes)
    with monkeypatch.context() as m:
        m.setattr(runtime, "now", lambda: at)
        return sweeper_handler.handler(load_event("sweeper/scheduled.json"), LambdaContext())


def execution_status(machines, name, machine="batch_state_machine"):
    """``machine``: ``state_machine`` (payout) or ``batch_state_machine`` of the batch_machine fixture."""
    return Starter(machines[machine], machines["sfn"]).status(name)


def wait_execution(machines, name, machine="batch_state_machine", timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = execution_status(machines, name, machine)
        if status not in (None, "RUNNING"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"execution {name} did not end")


def start_broken_payout(machines, shop, order_id):
    """An execution of the order's name that ends without settling it (here: its input names no order, so
    its steps fail; on AWS: aborted, timed out, or its compensation ran out of retries)."""
    machines["sfn"].start_execution(stateMachineArn=machines["state_machine"], name=order_id, input=json.dumps(
        {"program_id": shop["program_id"], "order_id": "ord_00000000000000000000000000", "type": "gift_card"}))
    assert wait_execution(machines, order_id, "state_machine") in ("FAILED", "SUCCEEDED")


def ledger_types(shop, member_id, order_ids):
    from treue.logic import statements

    entries = statements.entries(runtime.store(), shop["program_id"], member_id, 100, None)["entries"]
    return sorted(e["type"] for e in entries if e["reference"] in order_ids)


def kill_payout_start(monkeypatch):
    def killed(self, order):
        raise Killed("the function died after the hold committed, before StartExecution")

    monkeypatch.setattr(PayoutStarter, "start", killed)


def emitted_metrics(capsys) -> dict[str, float]:
    """The CloudWatch embedded-metric values the sweeper printed (Powertools Metrics)."""
    values = {}
    for text in capsys.readouterr().out.splitlines():
        try:
            blob = json.loads(text)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "Treue"
                for metric in directive["Metrics"]:
                    value = blob[metric["Name"]]
                    values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


# ---------------------------------------------------------------- orders and rewards


def test_an_order_whose_function_died_before_start_execution_is_started_by_the_sweeper(shop, monkeypatch, capsys,
                                                                                      batch_machine):
    member = member_with(shop, 3000)
    with monkeypatch.context() as m:
        kill_payout_start(m)
        with pytest.raises(Killed):
            post(orders, "orders/post_order.json", shop, order_body(member))
    order = only_order(shop, member)
    assert order.status == "PENDING" and points(shop, member) == (2000, 1000)  # held, and nobody owns it

    capsys.readouterr()
    early = run_sweeper(monkeypatch, minutes=0)  # within the grace period: left alone
    assert early["stuck_orders"] == 0 and execution_status(batch_machine, order.id, "state_machine") is None
    assert emitted_metrics(capsys)["StuckOrdersFound"] == 0

    out = run_sweeper(monkeypatch)
    assert out["stuck_orders"] == 1 and out["report"]["order_started"] == 1, out
    assert emitted_metrics(capsys)["StuckOrdersFound"] == 1
    assert wait_order(shop, order.id).status == "COMPLETED"
    assert points(shop, member) == (2000, 0)  # captured once
    assert ledger_types(shop, member, {order.id}) == ["capture", "hold"]
    # final: off the watch list, so the next run finds nothing
    assert Watchlist(runtime.store()).open_since("order", shop["program_id"], order.id) is None
    assert run_sweeper(monkeypatch)["report"] == {}


def test_a_reward_whose_function_died_before_start_execution_is_paid_once_by_the_sweeper(shop, monkeypatch):
    before = budget(shop)
    with monkeypatch.context() as m:
        kill_payout_start(m)
        with pytest.raises(Killed):
            post(rewards, "rewards/post_reward.json", shop, reward_body())
    [watched] = Watchlist(runtime.store()).open_before(later(1), 10)[shop["program_id"]]
    reward = runtime.orders().require(shop["program_id"], watched.record_id)
    assert reward.status == "PENDING" and budget(shop) == before

    out = run_sweeper(monkeypatch)
    assert out["stuck_orders"] == 1, out
    assert wait_order(shop, reward.id).status == "COMPLETED"
    assert budget(shop) == before - GIFT_CARD_COST  # paid once


def test_an_order_whose_execution_ended_before_it_did_is_failed_and_its_points_released(shop, monkeypatch,
                                                                                        batch_machine):
    member = member_with(shop, 3000)
    with monkeypatch.context() as m:
        kill_payout_start(m)
        with pytest.raises(Killed):
            post(orders, "orders/post_order.json", shop, order_body(member))
    order = only_order(shop, member)
    start_broken_payout(batch_machine, shop, order.id)
    assert runtime.orders().require(shop["program_id"], order.id).status == "PENDING"

    out = run_sweeper(monkeypatch)
    assert out["report"] == {"order_released": 1} and out["stuck_orders"] == 1, out
    failed = runtime.orders().require(shop["program_id"], order.id)
    assert failed.status == "FAILED" and failed.failure_reason == "internal_error"
    assert points(shop, member) == (3000, 0)  # every point back
    assert ledger_types(shop, member, {order.id}) == ["hold", "release"]
    assert run_sweeper(monkeypatch)["report"] == {}  # released once; off the watch list


def test_two_sweepers_at_once_start_and_release_each_order_once(shop, monkeypatch, batch_machine):
    member = member_with(shop, 5000)
    with monkeypatch.context() as m:
        kill_payout_start(m)
        for _ in range(2):
            with pytest.raises(Killed):
                post(orders, "orders/post_order.json", shop, order_body(member))
    page, _ = runtime.orders().list_for_member(shop["program_id"], member, 10, None)
    never_started, ended = sorted(o.id for o in page)
    start_broken_payout(batch_machine, shop, ended)

    at = later(6)
    monkeypatch.setattr(runtime, "now", lambda: at)
    deps = sweeper_handler.deps()
    reports, errors = [], []

    def one():
        try:
            reports.append(sweeper.sweep(deps, at))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert wait_order(shop, never_started).status == "COMPLETED"
    assert runtime.orders().require(shop["program_id"], ended).status == "FAILED"
    assert points(shop, member) == (4000, 0)  # one order captured (1000 points), the other released
    assert ledger_types(shop, member, {never_started, ended}) == ["capture", "hold", "hold", "release"]


def test_each_program_gets_its_turn_in_a_run(shop, store, monkeypatch):
    from tests.integration.test_finance import new_program

    other = new_program(store, "Other shop")
    deps = sweeper_handler.deps()
    watch = deps.watchlist
    # many old open records of one program, one of another (markers only: this is about who is read)
    items = [watch.watch_item("order", shop["program_id"], f"ord_{n:026d}", f"2026-01-01T00:00:{n:02d}.000Z")
             for n in range(30)]
    items.append(watch.watch_item("order", other["program_id"], "ord_" + "9" * 26, "2026-01-01T00:10:00.000Z"))
    for item in items:
        store.ddb.put_item(TableName=store.table, Item=item["Put"]["Item"])
    found = watch.open_before("2026-01-02T00:00:00.000Z", per_program=5)
    assert [w.record_id for w in found[shop["program_id"]]] == [f"ord_{n:026d}" for n in range(5)]  # oldest first
    assert [w.record_id for w in found[other["program_id"]]] == ["ord_" + "9" * 26]
    order = sweeper.fair_order(found)
    assert {w.program_id for w in order[:2]} == {shop["program_id"], other["program_id"]}
    # a run that may settle only two records settles one of each program
    report = sweeper.sweep(deps, "2026-01-02T00:00:00.000Z", per_program=5, max_records=2)
    assert report == {"order_final": 2, "deferred": 4}, report  # no such orders: markers cleared
    assert watch.open_since("order", other["program_id"], "ord_" + "9" * 26) is None


# ---------------------------------------------------------------- batches


def test_a_batch_whose_function_died_before_start_execution_is_started_by_the_sweeper(shop, monkeypatch):
    before = budget(shop)
    with monkeypatch.context() as m:
        def killed(self, name, payload, what):
            raise Killed("the function died after the batch and its hold committed, before StartExecution")

        m.setattr(Starter, "start_named", killed)
        with pytest.raises(Killed):
            submit(shop, {"lines": [line(n) for n in range(1, 4)]})
    [watched] = Watchlist(runtime.store()).open_before(later(1), 10)[shop["program_id"]]
    bid = watched.record_id
    assert get_batch(shop, bid)["status"] == "queued" and held(shop) == 3 * GIFT_CARD_COST

    out = run_sweeper(monkeypatch)
    assert out["report"] == {"batch_started": 1} and out["stuck_batches"] == 1, out
    view = wait_batch(shop, bid)
    assert view["status"] == "completed" and view["counts"]["issued"] == 3
    assert held(shop) == 0 and budget(shop) == before - 3 * GIFT_CARD_COST
    assert run_sweeper(monkeypatch)["report"] == {}


def test_a_failing_begin_run_ends_the_run_halted_with_its_hold_released_and_retry_works(shop, monkeypatch,
                                                                                        batch_machine):
    before = budget(shop)
    with monkeypatch.context() as m:
        def crashed(self, *args):
            raise RuntimeError("BeginRun crashed")

        m.setattr(BatchStore, "begin_run", crashed)
        status, accepted, _ = submit(shop, {"lines": [line(n) for n in range(1, 4)]})
        assert status == 202
        bid = accepted["batch_id"]
        # the workflow's catch ends the run through HaltRun, then fails the execution
        assert wait_execution(batch_machine, batch_logic.run_execution_name(bid, 1)) == "FAILED"
    view = get_batch(shop, bid)
    assert view["status"] == "halted" and view["runs"] == 1 and "BeginRun crashed" in view["halted_reason"]
    assert held(shop) == 0 and budget(shop) == before  # the hold came back
    status, retried, _ = retry(shop, bid)
    assert status == 202 and retried["run"] == 2 and retried["lines"] == 3, retried
    view = wait_batch(shop, bid)
    assert view["status"] == "completed" and view["counts"]["issued"] == 3
    assert held(shop) == 0 and budget(shop) == before - 3 * GIFT_CARD_COST


def finish_run_crashes(m, batch_machine, shop, before):
    """A batch of 4 lines (one rejected by the provider) whose FinishRun and HaltRun both die: the
    execution fails with the batch still running (its lines drew their cost from the hold, and the
    failed line gave its share back)."""
    from treue.providers.simulated import set_fault

    set_fault(runtime.store().ddb, runtime.store().table, shop["program_id"], "rejected", brand="Kaffeekranz",
              times=1)

    def crashed(*args, **kwargs):
        raise RuntimeError("FinishRun crashed")

    m.setattr(batch_logic, "end_run", crashed)
    status, accepted, _ = submit(shop, {"lines": [line(n) for n in range(1, 5)], "tolerated_failure_percentage": 50})
    assert status == 202, accepted
    bid = accepted["batch_id"]
    assert wait_execution(batch_machine, batch_logic.run_execution_name(bid, 1)) == "FAILED"
    view = get_batch(shop, bid)
    assert view["status"] == "running" and view["counts"]["issued"] == 3 and view["counts"]["failed"] == 1
    assert held(shop) == 0 and budget(shop) == before - 3 * GIFT_CARD_COST
    return bid


def test_a_crash_in_finish_run_is_settled_by_the_sweeper_and_the_hold_released(shop, monkeypatch, batch_machine):
    before = budget(shop)
    with monkeypatch.context() as m:
        bid = finish_run_crashes(m, batch_machine, shop, before)
    out = run_sweeper(monkeypatch)
    assert out["report"] == {"batch_ended": 1} and out["stuck_batches"] == 1, out
    view = get_batch(shop, bid)
    assert view["status"] == "completed_with_failures" and view["runs"] == 1
    assert held(shop) == 0 and budget(shop) == before - 3 * GIFT_CARD_COST
    assert run_sweeper(monkeypatch)["report"] == {}
    status, retried, _ = retry(shop, bid)
    assert status == 202 and retried["run"] == 2 and retried["lines"] == 1, retried
    view = wait_batch(shop, bid)
    assert view["status"] == "completed" and view["counts"]["issued"] == 4
    assert held(shop) == 0 and budget(shop) == before - 4 * GIFT_CARD_COST


def test_a_retry_of_a_batch_whose_run_execution_ended_ends_that_run_and_starts_the_next(shop, monkeypatch,
                                                                                        batch_machine):
    before = budget(shop)
    with monkeypatch.context() as m:
        bid = finish_run_crashes(m, batch_machine, shop, before)
    status, retried, _ = retry(shop, bid)  # no 409 "running" for a run whose execution is over
    assert status == 202 and retried["run"] == 2 and retried["lines"] == 1, retried
    view = wait_batch(shop, bid)
    assert view["status"] == "completed" and view["runs"] == 2 and view["counts"]["issued"] == 4
    assert held(shop) == 0 and budget(shop) == before - 4 * GIFT_CARD_COST


def queued_with_its_execution_ended(shop, monkeypatch, batch_machine) -> str:
    """A batch of two lines, queued with its cost held, whose run 1 execution ended without beginning
    the run (its function died before StartExecution; an execution of that name then failed at once)."""
    with monkeypatch.context() as m:
        def killed(self, name, payload, what):
            raise Killed("the function died before StartExecution")

        m.setattr(Starter, "start_named", killed)
        with pytest.raises(Killed):
            submit(shop, {"lines": [line(n) for n in range(1, 3)]})
    [watched] = Watchlist(runtime.store()).open_before(later(1), 10)[shop["program_id"]]
    bid = watched.record_id
    name = batch_logic.run_execution_name(bid, 1)
    batch_machine["sfn"].start_execution(stateMachineArn=batch_machine["batch_state_machine"], name=name,
                                         input=json.dumps({"program_id": shop["program_id"], "batch_id": "bat_x",
                                                           "run": 1}))
    assert wait_execution(batch_machine, name) == "FAILED"
    assert get_batch(shop, bid)["status"] == "queued" and held(shop) == 2 * GIFT_CARD_COST
    return bid


def test_a_queued_batch_whose_execution_ended_is_halted_by_the_sweeper_and_its_hold_released(shop, monkeypatch,
                                                                                              batch_machine):
    before = budget(shop)
    bid = queued_with_its_execution_ended(shop, monkeypatch, batch_machine)
    out = run_sweeper(monkeypatch)
    assert out["report"] == {"batch_ended": 1}, out
    view = get_batch(shop, bid)
    assert view["status"] == "halted" and view["runs"] == 1 and "RunExecutionEnded" in view["halted_reason"]
    assert held(shop) == 0 and budget(shop) == before
    status, retried, _ = retry(shop, bid)
    assert status == 202 and retried["run"] == 2 and retried["lines"] == 2, retried
    assert wait_batch(shop, bid)["status"] == "completed"
    assert held(shop) == 0 and budget(shop) == before - 2 * GIFT_CARD_COST


def test_a_retry_of_a_queued_batch_whose_execution_already_ended_is_not_taken_as_started(shop, monkeypatch,
                                                                                         batch_machine):
    before = budget(shop)
    bid = queued_with_its_execution_ended(shop, monkeypatch, batch_machine)
    status, retried, _ = retry(shop, bid)
    assert status == 202 and retried["run"] == 2 and retried["lines"] == 2, retried
    view = wait_batch(shop, bid)
    assert view["status"] == "completed" and view["runs"] == 2 and view["counts"]["issued"] == 2
    assert held(shop) == 0 and budget(shop) == before - 2 * GIFT_CARD_COST


def test_an_order_delivered_before_its_execution_ended_is_completed_not_released(shop, monkeypatch, batch_machine):
    from treue.handlers import payout as tasks

    member = member_with(shop, 3000)
    with monkeypatch.context() as m:
        kill_payout_start(m)
        with pytest.raises(Killed):
            post(orders, "orders/post_order.json", shop, order_body(member))
    order = only_order(shop, member)
    subject = {"program_id": shop["program_id"], "order_id": order.id, "type": order.type}
    for step in (tasks.verify_hold, tasks.issue_gift_card, tasks.deliver):  # the card reached the member...
        step(dict(subject), LambdaContext())
    start_broken_payout(batch_machine, shop, order.id)  # ...then its execution ended before Capture
    delivered = runtime.orders().require(shop["program_id"], order.id)
    assert delivered.status == "ISSUED" and delivered.delivered

    out = run_sweeper(monkeypatch)
    assert out["report"] == {"order_completed": 1} and out["stuck_orders"] == 1, out
    completed = runtime.orders().require(shop["program_id"], order.id)
    assert completed.status == "COMPLETED"
    assert points(shop, member) == (3000 - order.points, 0)  # spent once, nothing left held
    assert ledger_types(shop, member, {order.id}) == ["capture", "hold"]
    assert run_sweeper(monkeypatch)["report"] == {}  # off the watch list
