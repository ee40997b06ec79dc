"""Issue 13, items 4 and 6, on moto: a replayed Idempotency-Key answers its first result before any
check against live state, and a release or cancel never kills a card that was (or may still be)
delivered: the order's state is claimed first, the provider is called after."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.integration.helpers import buy, call, enroll, purchase
from tests.support import LambdaContext, api_event, body_of
from treue import runtime
from treue.handlers import batch_tasks, batches, finance, orders, rewards
from treue.logic import batch_run, payout
from treue.logic.orders import cancel as cancel_order
from treue.providers.giftcards import ProviderRejected, ProviderTimeout, ProviderUnavailable
from treue.providers.simulated import SimulatedProvider

# ---------------------------------------------------------------- helpers


def member_with(shop, points: int) -> str:
    status, body, _ = enroll(shop["auth"]["partner"], {"email": f"m{time.monotonic_ns()}@example.com"})
    assert status == 201, body
    if points:
        status, out, _ = purchase(shop["auth"]["partner"], body["id"], buy(f"t-{time.monotonic_ns()}", points * 100))
        assert status == 200, out
    return body["id"]


def post(module, sample, shop, body, key, scope="partner"):
    event = api_event(sample, auth=shop["auth"][scope], body=body, headers={"Idempotency-Key": key})
    response = module.handler(event, LambdaContext())
    return response["statusCode"], body_of(response)


def order_body(member_id, item_id="nordlicht-books-eur", value=1000):
    return {"member_id": member_id, "item_id": item_id, "face_value": value, "quantity": 1,
            "delivery": {"method": "email"}}


def reward_body(**kw):
    return {"recipient": {"email": "ada@example.com"}, "item_id": "kaffeekranz-eur", "face_value": 2000,
            "reference": f"ref-{uuid.uuid4().hex[:8]}", **kw}


def wait(shop, order_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = runtime.orders().require(shop["program_id"], order_id)
        if order.status in ("COMPLETED", "FAILED"):
            return order
        time.sleep(0.05)
    raise AssertionError(f"order {order_id} did not finish: {order.status}")


def available_budget(shop, currency="EUR"):
    return runtime.budgets().available(shop["program_id"], currency)[0]


def drain_budget(shop, currency="EUR"):
    """Spend the whole budget of ``currency`` (a funding moved the other way, as payouts would)."""
    from treue.core.money import MoneyAccount, Movement, MovementType

    left = available_budget(shop, currency)
    move = Movement(id=f"mov_drain{uuid.uuid4().hex[:12]}", program_id=shop["program_id"], currency=currency,
                    type=MovementType.DRAW, debit=MoneyAccount.AVAILABLE, credit=MoneyAccount.FACE, amount=left,
                    reference="drained", reason="test: the budget was spent", actor="test",
                    created_at=runtime.now())
    runtime.store().transact(runtime.budgets().movement_items([move]))
    assert available_budget(shop, currency) == 0


def retire(item_id):
    """Load the catalog again without ``item_id`` (retired: old orders still read it, new ones cannot)."""
    store = runtime.orders()
    items = [i for i in store.catalog_items() if i["id"] != item_id]
    store.put_catalog(f"v-{uuid.uuid4().hex[:6]}", items, runtime.now())
    runtime.reset()  # a cold function: no cached catalog
    assert runtime.catalog().get(item_id) is None


def provider():
    store = runtime.store()
    return SimulatedProvider(store.ddb, store.table)


def points(shop, member_id):
    return runtime.store().get_balance(shop["program_id"], member_id)


# ---------------------------------------------------------------- item 6: replays first


def test_a_reward_replayed_after_the_budget_fell_answers_its_first_result(shop):
    key = uuid.uuid4().hex
    body = reward_body()
    status, first = post(rewards, "rewards/post_reward.json", shop, body, key)
    assert status == 202 and first["replayed"] is False, first
    wait(shop, first["reward_id"])
    drain_budget(shop)
    status, again = post(rewards, "rewards/post_reward.json", shop, body, key)
    assert status == 202, again  # was 409 insufficient-funds: the client would pay a second time
    assert again["reward_id"] == first["reward_id"] and again["replayed"] is True
    status, other = post(rewards, "rewards/post_reward.json", shop, reward_body(), key)
    assert status == 409 and other["type"].endswith("idempotency-conflict"), other


def test_an_order_replayed_after_its_item_was_retired_answers_its_first_result(shop):
    member = member_with(shop, 3000)
    key = uuid.uuid4().hex
    body = order_body(member)
    status, first = post(orders, "orders/post_order.json", shop, body, key)
    assert status == 202, first
    wait(shop, first["order_id"])
    retire("nordlicht-books-eur")
    status, again = post(orders, "orders/post_order.json", shop, body, key)
    assert status == 202, again  # was 404 item-not-found
    assert {k: again[k] for k in ("order_id", "status", "points")} == \
        {k: first[k] for k in ("order_id", "status", "points")} and again["replayed"] is True
    status, other = post(orders, "orders/post_order.json", shop, order_body(member, value=2000), key)
    assert status == 409 and other["type"].endswith("idempotency-conflict"), other
    assert points(shop, member)["available"] == 2000 and points(shop, member)["held"] == 0


def test_an_order_replayed_after_the_points_were_spent_answers_its_first_result(shop):
    member = member_with(shop, 1000)
    key = uuid.uuid4().hex
    body = order_body(member)
    status, first = post(orders, "orders/post_order.json", shop, body, key)
    assert status == 202, first
    wait(shop, first["order_id"])
    assert points(shop, member)["available"] == 0
    status, again = post(orders, "orders/post_order.json", shop, body, key)
    assert status == 202 and again["order_id"] == first["order_id"] and again["replayed"] is True, again


def test_a_batch_replayed_after_the_budget_fell_answers_the_same_batch(shop, batch_machine):
    key = uuid.uuid4().hex
    body = {"lines": [{"reference": "line-1", "recipient": {"email": "p1@example.com"},
                       "item_id": "kaffeekranz-eur", "face_value": 1000}]}
    status, first, _ = call(batches, "batches/post_batch.json", shop["auth"]["partner"], body=body,
                            headers={"Idempotency-Key": key})
    assert status == 202, first
    drain_budget(shop)
    status, again, _ = call(batches, "batches/post_batch.json", shop["auth"]["partner"], body=body,
                            headers={"Idempotency-Key": key})
    assert status == 202 and again["batch_id"] == first["batch_id"] and again["replayed"] is True, again


def test_a_funding_replayed_answers_the_first_funding(shop):
    key = uuid.uuid4().hex
    body = {"amount": {"value": 10_000, "currency": "EUR"}, "reference": "bank-77"}
    status, first = post(finance, "finance/post_funding.json", shop, body, key, scope="admin")
    assert status == 201, first
    status, again = post(finance, "finance/post_funding.json", shop, body, key, scope="admin")
    assert status == 200 and again["funding_id"] == first["funding_id"] and again["replayed"] is True, again
    status, other = post(finance, "finance/post_funding.json", shop, {**body, "reference": "bank-78"}, key,
                         scope="admin")
    assert status == 409 and other["type"].endswith("idempotency-conflict"), other


def test_an_enrollment_replayed_answers_the_first_member_though_its_identifiers_are_taken_now(shop):
    from tests.integration.helpers import enroll as enroll_member

    key = uuid.uuid4().hex
    body = {"email": "replay@example.com", "external_id": "crm-1"}
    status, first, _ = enroll_member(shop["auth"]["partner"], body, {"Idempotency-Key": key})
    assert status == 201, first
    status, again, _ = enroll_member(shop["auth"]["partner"], body, {"Idempotency-Key": key})
    assert status == 200 and again["id"] == first["id"], again  # not 409 identifier-taken
    status, other, _ = enroll_member(shop["auth"]["partner"], {**body, "name": "Other"}, {"Idempotency-Key": key})
    assert status == 409 and other["type"].endswith("idempotency-conflict"), other


# ---------------------------------------------------------------- item 4: never cancel a delivered card


class Idle:
    """A payout starter that starts nothing: the test runs the steps itself."""

    def start(self, order):
        pass


def gift_card_order(shop, member, value=1000):
    """A gift card order placed without its workflow (the test drives the steps)."""
    from treue.logic import orders as order_logic
    from treue.logic.models import OrderRequest

    answer, _ = order_logic.place(runtime.orders(), Idle(), runtime.program(shop["program_id"]),
                                  runtime.catalog().get, OrderRequest.model_validate(order_body(member, value=value)),
                                  uuid.uuid4().hex, "test", runtime.now())
    return {"program_id": shop["program_id"], "order_id": answer["order_id"], "type": "gift_card"}


def issued(shop, member):
    """A gift card order that is ISSUED (card live at the provider, budget drawn) and not delivered."""
    step = gift_card_order(shop, member)
    payout.verify_hold(runtime.orders(), step, runtime.now())
    payout.issue_gift_card(runtime.orders(), runtime.vault(), runtime.provider(), runtime.budgets(), step,
                           runtime.now())
    assert runtime.orders().require(shop["program_id"], step["order_id"]).status == "ISSUED"
    return step


def card(shop, order_id):
    return provider().status(shop["program_id"], order_id).status


FAILED_STEP = {"Error": "States.Timeout", "Cause": "the task timed out"}


def test_a_release_of_a_completed_order_changes_nothing_and_cancels_nothing(shop):
    from treue.handlers import payout as tasks

    member = member_with(shop, 3000)
    step = issued(shop, member)
    payout.deliver(runtime.orders(), step, runtime.now())
    payout.capture(runtime.orders(), step, runtime.now())
    budget_before = available_budget(shop)
    out = tasks.release({**step, "error": FAILED_STEP}, LambdaContext())
    assert out == {"status": "COMPLETED", "reason": None, "released": False}  # was: card canceled, then 'not payable'
    assert card(shop, step["order_id"]) == "ISSUED"  # the delivered card still works
    order = runtime.orders().require(shop["program_id"], step["order_id"])
    assert order.status == "COMPLETED" and order.releasing is None
    assert points(shop, member)["available"] == 2000 and points(shop, member)["held"] == 0
    assert available_budget(shop) == budget_before


def test_a_release_of_a_delivered_order_that_was_not_captured_cancels_nothing(shop):
    member = member_with(shop, 3000)
    step = issued(shop, member)
    payout.deliver(runtime.orders(), step, runtime.now())
    out = payout.release(runtime.orders(), runtime.provider(), runtime.budgets(), {**step, "error": FAILED_STEP},
                         runtime.now())
    assert out["released"] is False and out["status"] == "ISSUED"
    assert card(shop, step["order_id"]) == "ISSUED"
    assert payout.capture(runtime.orders(), step, runtime.now()) == {"status": "COMPLETED"}
    assert points(shop, member)["available"] == 2000 and points(shop, member)["held"] == 0


class FlakyCancel:
    """The provider, whose cancel is unavailable ``failures`` times."""

    def __init__(self, failures):
        self.real, self.failures, self.cancels = runtime.provider(), failures, 0

    def status(self, program_id, order_id):
        return self.real.status(program_id, order_id)

    def issue(self, request):
        return self.real.issue(request)

    def cancel(self, program_id, order_id):
        from treue.providers.giftcards import ProviderUnavailable

        self.cancels += 1
        if self.failures:
            self.failures -= 1
            raise ProviderUnavailable("simulated 503 on cancel")
        return self.real.cancel(program_id, order_id)


def test_a_release_claims_the_order_first_so_nothing_delivers_it_while_the_card_is_canceled(shop):
    member = member_with(shop, 3000)
    step = issued(shop, member)
    budget_before = available_budget(shop)
    funds = runtime.orders().require(shop["program_id"], step["order_id"]).funds
    flaky = FlakyCancel(failures=1)
    with pytest.raises(Exception, match="503"):
        payout.release(runtime.orders(), flaky, runtime.budgets(), {**step, "error": FAILED_STEP}, runtime.now())
    # the release claimed the order before calling the provider: no step may deliver or complete it now
    with pytest.raises(payout.OrderNotPayable):
        payout.deliver(runtime.orders(), step, runtime.now())
    with pytest.raises(payout.OrderNotPayable):
        payout.capture(runtime.orders(), step, runtime.now())
    order = runtime.orders().require(shop["program_id"], step["order_id"])
    assert order.status == "ISSUED" and not order.delivered
    # the retried release continues its claim, with the first reason
    out = payout.release(runtime.orders(), flaky, runtime.budgets(),
                         {**step, "error": {"Error": "Contention", "Cause": "{}"}}, runtime.now())
    assert out == {"status": "FAILED", "reason": "timeout", "released": True}
    assert card(shop, step["order_id"]) == "CANCELED"
    assert points(shop, member)["available"] == 3000 and points(shop, member)["held"] == 0
    assert funds["face"] == 1000 and available_budget(shop) == budget_before + funds["face"] + funds["fee"]


def test_cards_issued_while_a_release_ran_are_canceled_by_the_issuing_step(shop):
    member = member_with(shop, 3000)
    step = gift_card_order(shop, member)
    payout.verify_hold(runtime.orders(), step, runtime.now())
    budget_before = available_budget(shop)

    class SlowIssue(FlakyCancel):
        def issue(self, request):  # the order times out and is released while the provider issues
            out = payout.release(runtime.orders(), self, runtime.budgets(), {**step, "error": FAILED_STEP},
                                 runtime.now())
            assert out["status"] == "FAILED"
            return self.real.issue(request)

    with pytest.raises(payout.OrderNotPayable):
        payout.issue_gift_card(runtime.orders(), runtime.vault(), SlowIssue(0), runtime.budgets(), step,
                               runtime.now())
    assert card(shop, step["order_id"]) == "CANCELED"  # was ISSUED: a live card of a failed order
    order = runtime.orders().require(shop["program_id"], step["order_id"])
    assert order.status == "FAILED" and order.funds_returned_at
    assert available_budget(shop) == budget_before
    assert points(shop, member)["available"] == 3000 and points(shop, member)["held"] == 0


def test_a_batch_line_whose_reward_completed_before_the_line_failed_keeps_its_card(shop, batch_machine,
                                                                                    monkeypatch):
    from treue.errors import Contention
    from treue.logic import budget as money
    from treue.logic.batches import line_reward_id
    from treue.logic.models import RewardRequest
    from treue.store.batches import batch_pk, counts_pk
    from treue.store.items import to_item

    body = {"lines": [{"reference": "line-1", "recipient": {"email": "p1@example.com"},
                       "item_id": "kaffeekranz-eur", "face_value": 1000}]}
    status, accepted, _ = call(batches, "batches/post_batch.json", shop["auth"]["partner"], body=body,
                               headers={"Idempotency-Key": uuid.uuid4().hex})
    assert status == 202, accepted
    bid, pid = accepted["batch_id"], shop["program_id"]
    deadline = time.monotonic() + 60
    while runtime.batches().require(pid, bid).status not in ("completed", "completed_with_failures"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # line 2 joins a second run of the batch, its cost held as a run's lines' is
    request = RewardRequest.model_validate({**body["lines"][0], "reference": "line-2",
                                            "recipient": {"email": "p2@example.com"}})
    store = runtime.batches()
    store._write_all([{"PutRequest": {"Item": to_item({
        "pk": batch_pk(pid, bid), "sk": "LINE#000002", "program_id": pid, "batch_id": bid, "line": 2,
        "reference": "line-2", "request": request.model_dump(mode="json", exclude_none=True), "type": "gift_card",
        "item_id": "kaffeekranz-eur", "face_value": 1000, "currency": "EUR", "cost": 1025, "status": "pending",
        "attempt": 1, "run": 0, "updated_at": runtime.now()})}}])
    store.transact([{"Update": {"TableName": store.table, "Key": {"pk": {"S": counts_pk(pid, bid)},
                                                                   "sk": {"S": "COUNT#02"}},
                                "UpdateExpression": "ADD pending :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
    hold, _, _ = money.hold_plan(runtime.budgets(), pid, bid, 2, {"EUR": 1025}, runtime.now())
    store.transact(hold)
    budget_before = available_budget(shop)

    # IssueLine pays, delivers and completes the reward, then cannot mark the line (contention) ...
    real_move = batch_run._move

    def busy(deps, line, source, to, *args):
        if to == "issued":
            raise Contention("a concurrent request touched the same items; retry")
        return real_move(deps, line, source, to, *args)

    monkeypatch.setattr(batch_run, "_move", busy)
    event = {"program_id": pid, "batch_id": bid, "run": 2, "line": 2}
    with pytest.raises(Contention):
        batch_tasks.issue_line(event, LambdaContext())
    monkeypatch.setattr(batch_run, "_move", real_move)
    reward_id = line_reward_id(bid, 2, 1)
    assert runtime.orders().require(pid, reward_id).status == "COMPLETED"
    # ... until its retries ran out: FailLine must not cancel the delivered card
    out = batch_tasks.fail_line({**event, "error": {"Error": "Contention", "Cause": "{}"}}, LambdaContext())
    assert out["status"] == "issued", out
    assert card(shop, reward_id) == "ISSUED"  # was CANCELED: a paid, delivered, dead code
    assert runtime.orders().require(pid, reward_id).status == "COMPLETED"
    assert store.line(pid, bid, 2).status == "issued"
    assert available_budget(shop) == budget_before  # paid once, from the hold


class RecordingProvider(FlakyCancel):
    def __init__(self, during_cancel=None, answer=True):
        super().__init__(0)
        self.during_cancel, self.answer = during_cancel, answer

    def cancel(self, program_id, order_id):
        self.cancels += 1
        if self.during_cancel:
            hook, self.during_cancel = self.during_cancel, None
            hook()
        return self.real.cancel(program_id, order_id) if self.answer else None


def completed_gift_card(shop, member):
    step = issued(shop, member)
    payout.deliver(runtime.orders(), step, runtime.now())
    payout.capture(runtime.orders(), step, runtime.now())
    return step["order_id"]


def test_a_cancel_calls_the_provider_only_once_its_refund_can_commit(shop):
    from treue.errors import OrderStateConflict

    member = member_with(shop, 3000)
    order_id = completed_gift_card(shop, member)
    pid = shop["program_id"]
    inner = {}

    def second_cancel():  # another cancel of the same order arrives while the provider is canceling
        try:
            inner["view"] = cancel_order(runtime.orders(), recording, runtime.budgets(), order_id, pid, "again",
                                         "key:other", runtime.now())
        except OrderStateConflict as err:
            inner["error"] = err

    recording = RecordingProvider(during_cancel=second_cancel)
    out = cancel_order(runtime.orders(), recording, runtime.budgets(), order_id, pid, "changed mind", "key:one",
                       runtime.now())
    assert out["status"] == "CANCELED"
    assert "error" in inner and recording.cancels == 1, inner  # was: the second cancel called the provider too
    assert card(shop, order_id) == "CANCELED"
    assert points(shop, member)["available"] == 3000


def test_a_cancel_the_provider_refuses_leaves_the_order_completed_and_cancelable(shop):
    from treue.errors import NotCancelable

    member = member_with(shop, 3000)
    order_id = completed_gift_card(shop, member)
    pid = shop["program_id"]
    with pytest.raises(NotCancelable):
        cancel_order(runtime.orders(), RecordingProvider(answer=False), runtime.budgets(), order_id, pid, "x",
                     "key:one", runtime.now())
    order = runtime.orders().require(pid, order_id)
    assert order.status == "COMPLETED" and order.canceling is None
    assert points(shop, member)["available"] == 2000
    status, out, _ = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                          path=f"/v1/orders/{order_id}/cancel", path_parameters={"order_id": order_id})
    assert status == 200 and out["status"] == "CANCELED", out
    assert card(shop, order_id) == "CANCELED" and points(shop, member)["available"] == 3000


class FailingProvider(RecordingProvider):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def cancel(self, program_id, order_id):
        self.cancels += 1
        raise self.error


@pytest.mark.parametrize(("error", "status", "slug"), [
    (ProviderUnavailable("the provider answered 503"), 503, "provider-unavailable"),
    (ProviderTimeout("no answer in time"), 503, "provider-unavailable"),
    (ProviderRejected("not cancelable at the provider"), 409, "not-cancelable"),
])
def test_a_provider_failing_a_cancel_is_a_problem_and_leaves_the_order_cancelable(shop, monkeypatch, error, status,
                                                                                   slug):
    member = member_with(shop, 3000)
    order_id = completed_gift_card(shop, member)
    failing = FailingProvider(error)
    monkeypatch.setattr(runtime, "provider", lambda: failing)
    status_code, problem, response = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                                          path=f"/v1/orders/{order_id}/cancel", path_parameters={"order_id": order_id})
    assert status_code == status and problem["type"].endswith(slug), problem  # was: 500
    headers = {**{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
               **(response.get("headers") or {})}
    assert headers["Content-Type"] == "application/problem+json"
    assert failing.cancels == 1
    order = runtime.orders().require(shop["program_id"], order_id)
    assert order.status == "COMPLETED" and order.canceling is None  # the claim was given up
    assert card(shop, order_id) != "CANCELED" and points(shop, member)["available"] == 2000
