"""Returns on moto (issue 17 item 3): POST /v1/members/{id}/returns through the Accrual function and the queue's
``return`` message: a returned line reverses its points and its share of the purchase's bonus, each back to the
account it came from; an amount return reverses everything in proportion; replays, conflicts and over-returns;
points already spent become debt, never a negative available; pending points are canceled without touching
available; the month's counters and the tier follow the corrected figures; the books stay at 0."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from tests.integration.helpers import call, enroll, events_of, member_call, purchase
from tests.integration.test_accrual_by_rules import seed
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core import tiers, times
from treue.handlers import accrual, accrual_queue
from treue.handlers import program as program_handler
from treue.store.items import from_item, item_key
from treue.store.schema import member_pk

BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}
BIG_BASKET = {"name": "Big basket", "trigger": "purchase", "conditions": {"min_amount": 4000}, "effect": {"points": 10}}
AT = times.iso(tiers.month_start(datetime.now(UTC)) + timedelta(seconds=1))  # this month, in the past


def basket(txn: str = "pos-1") -> dict:
    """3 books of 10.00 (line 0), 20.00 of groceries (line 1): 30 + 20 base, 30 for the books, 10 for the basket."""
    return {"transaction_id": txn, "amount": {"value": 5000, "currency": "EUR"}, "occurred_at": AT,
            "lines": [{"sku": "book", "category": "books", "quantity": 3, "amount": {"value": 3000, "currency": "EUR"}},
                      {"sku": "tea", "category": "grocery", "quantity": 1,
                       "amount": {"value": 2000, "currency": "EUR"}}]}


def give_back(auth, mid, body):
    return member_call(accrual, "accrual/post_return.json", auth, mid, "/returns", body=body)


def ret(return_id: str, txn: str = "pos-1", amount: int | None = None, lines=None) -> dict:
    body: dict = {"return_id": return_id, "transaction_id": txn,
                  "occurred_at": times.iso(datetime.now(UTC) - timedelta(minutes=1))}
    if amount is not None:
        body["amount"] = {"value": amount, "currency": "EUR"}
    if lines is not None:
        body["lines"] = [{"sku": sku, "quantity": q, "amount": {"value": a, "currency": "EUR"}} for sku, q, a in lines]
    return body


def balance(program, mid) -> dict:
    return member_call(accrual, "accrual/get_balance.json", program["auth"]["partner"], mid, "/balance")[1]


def member_item(pid: str, mid: str, sk: str) -> dict | None:
    out = boto3.client("dynamodb").get_item(TableName=runtime.store().table, Key=item_key(member_pk(pid, mid), sk),
                                            ConsistentRead=True)
    if "Item" not in out:
        return None
    raw = dict(out["Item"])
    raw.pop("categories", None)
    return from_item(raw)


@pytest.fixture
def member(program):
    return enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]


@pytest.fixture
def bought(program, member):
    """The member bought the basket (90 points: 50 base, 30 books, 10 basket)."""
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "books", BOOKS)
    seed(pid, "basket", BIG_BASKET)
    status, body, _ = purchase(auth, member, basket())
    assert status == 200 and body["points_earned"] == 90, body
    return body


def test_a_returned_book_reverses_its_points_and_its_share_of_the_basket_bonus(program, member, bought):
    pid, auth = program["program_id"], program["auth"]["partner"]
    status, body, _ = give_back(auth, member, ret("ret-1", lines=[("book", 1, 1000)]))
    assert status == 200, body
    # line 0: 30 base and 30 books, a third each; the basket's 10 for the purchase: 10 × 10.00 / 50.00
    assert body["points_reversed"] == 22
    assert sorted(body["reversed"], key=lambda line: line["rule_id"]) == [
        {"rule_id": "base", "version": 1, "points": 10, "line_index": 0},
        {"rule_id": "basket", "version": 1, "points": 2, "line_index": None},
        {"rule_id": "books", "version": 1, "points": 10, "line_index": 0}]
    assert sorted(body["accounts"], key=lambda one: one["account"]) == [
        {"account": "program:bonus:basket", "points": 2}, {"account": "program:bonus:books", "points": 10},
        {"account": "program:issued", "points": 10}]
    assert body["taken_from"] == {"pending": 0, "available": 22, "debt": 0}
    assert body["left"] == {"amount": {"value": 4000, "currency": "EUR"},
                            "lines": [{"sku": "book", "quantity": 2}, {"sku": "tea", "quantity": 1}]}
    assert body["replayed"] is False
    assert body["balance"]["available"] == 68 and body["balance"]["lifetime_earned"] == 68
    accounts = runtime.store().program_accounts(pid)
    assert accounts["program:issued"] == -40 and accounts["program:bonus:books"] == -20
    assert accounts["program:bonus:basket"] == -8 and accounts["member:available"] == 68
    assert sum(accounts.values()) == 0
    entries, _ = runtime.store().list_entries(pid, member, 10, None)
    reversals = [e for e in entries if e["type"] == "reversal"]
    assert sorted((e["debit"], e["credit"], e["points"]) for e in reversals) == [
        ("member:available", "program:bonus:basket", 2), ("member:available", "program:bonus:books", 10),
        ("member:available", "program:issued", 10)]
    assert {e["reference"] for e in reversals} == {"ret-1"}
    assert {e["metadata"]["transaction_id"] for e in reversals} == {"pos-1"}
    month = member_item(pid, member, f"MONTH#{AT[:7]}")
    assert (month["qualifying_points"], month["spend"], month["purchases"]) == (68, 4000, 1)
    assert member_item(pid, member, "BALANCE")["lifetime_spend"] == 4000
    (event,) = events_of(program, {"points.reversed"})
    assert event["data"]["points"] == 22 and event["data"]["return_id"] == "ret-1"
    assert event["data"]["transaction_id"] == "pos-1" and event["data"]["member_id"] == member
    # the other two books and the tea: everything left, the basket's last 8 included; the purchase no longer counts
    status, rest, _ = give_back(auth, member, ret("ret-2", lines=[("book", 2, 2000), ("tea", 1, 2000)]))
    assert status == 200 and rest["points_reversed"] == 68, rest
    assert rest["balance"]["available"] == 0
    accounts = runtime.store().program_accounts(pid)
    assert {k: v for k, v in accounts.items() if v} == {}
    month = member_item(pid, member, f"MONTH#{AT[:7]}")
    assert (month["qualifying_points"], month["spend"], month["purchases"]) == (0, 0, 0)


def test_an_amount_return_reverses_everything_in_proportion_and_never_more_than_earned(program, member, bought):
    auth = program["auth"]["partner"]
    status, first, _ = give_back(auth, member, ret("ret-1", amount=1500))  # 30 %
    assert status == 200, first
    assert first["points_reversed"] == 27  # 9 + 6 base, 9 books, 3 basket
    assert first["left"]["amount"]["value"] == 3500
    status, problem, _ = give_back(auth, member, ret("ret-2", amount=3501))
    assert status == 409 and problem["type"].endswith("/return-exceeds-purchase"), problem
    assert problem["left"]["amount"] == {"value": 3500, "currency": "EUR"}
    assert problem["left"]["lines"] == [{"sku": "book", "quantity": 2.1}, {"sku": "tea", "quantity": 0.7}]
    status, second, _ = give_back(auth, member, ret("ret-3", amount=3500))
    assert status == 200 and second["points_reversed"] == 63
    assert balance(program, member)["available"] == 0
    status, problem, _ = give_back(auth, member, ret("ret-4", amount=1))
    assert status == 409 and problem["left"]["amount"]["value"] == 0


def test_a_return_is_exactly_once_by_return_id(program, member, bought):
    auth = program["auth"]["partner"]
    first = ret("ret-1", lines=[("book", 1, 1000)])
    assert give_back(auth, member, first)[0] == 200
    # the same return_id with another occurred_at is another return
    status, again, _ = give_back(auth, member, {**first, "occurred_at": "2026-11-01T00:00:00Z"})
    assert status == 409 and again["type"].endswith("/idempotency-conflict")
    body = ret("ret-2", amount=1000)
    assert give_back(auth, member, body)[0] == 200
    status, replay, _ = give_back(auth, member, body)
    # a quarter of what is left: line 0 from 1/3 to 1/2 returned (5 + 5), line 1 a quarter (5), the basket 4 of 10
    assert status == 200 and replay["replayed"] is True and replay["points_reversed"] == 17
    assert replay["balance"]["available"] == 90 - 22 - 17
    status, other, _ = give_back(auth, member, {**body, "amount": {"value": 999, "currency": "EUR"}})
    assert status == 409 and other["type"].endswith("/idempotency-conflict")
    assert balance(program, member)["available"] == 51
    assert len(events_of(program, {"points.reversed"})) == 2


def test_more_than_is_left_unknown_purchases_and_bad_bodies_are_problems(program, member, bought):
    auth = program["auth"]["partner"]
    status, problem, _ = give_back(auth, member, ret("ret-1", lines=[("book", 4, 4000)]))
    assert status == 409 and problem["type"].endswith("/return-exceeds-purchase")
    assert problem["left"]["lines"] == [{"sku": "book", "quantity": 3}, {"sku": "tea", "quantity": 1}]
    status, problem, _ = give_back(auth, member, ret("ret-1", lines=[("mug", 1, 100)]))
    assert status == 409 and "no line with sku mug" in problem["detail"]
    status, problem, _ = give_back(auth, member, ret("ret-1", txn="pos-404", amount=100))
    assert status == 404 and problem["type"].endswith("/transaction-not-found")
    other = enroll(auth, {"email": "bob@example.com"})[1]["id"]
    status, problem, _ = give_back(auth, other, ret("ret-1", amount=100))  # not Bob's purchase
    assert status == 404 and problem["type"].endswith("/transaction-not-found")
    status, problem, _ = give_back(auth, member, {**ret("ret-1"), "amount": {"value": 100, "currency": "USD"}})
    assert status == 422 and problem["type"].endswith("/currency-mismatch")
    for body in (ret("ret-1"), {**ret("ret-1", amount=100), "lines": [{"sku": "book", "amount": {
            "value": 100, "currency": "EUR"}}]}, {**ret("ret-1", amount=100), "occurred_at": "2026-01-01T00:00:00"}):
        status, problem, _ = give_back(auth, member, body)
        assert status == 422 and problem["type"].endswith("/validation-failed"), problem
    status, problem, _ = give_back(program["auth"]["finance"], member, ret("ret-1", amount=100))
    assert status == 403
    assert balance(program, member)["available"] == 90


def test_points_already_spent_become_debt_never_a_negative_available(program, member, bought):
    pid, auth = program["program_id"], program["auth"]["partner"]
    spend = {"points": -85, "reason": "spent at the counter", "reference": "spend-1"}
    assert member_call(accrual, "accrual/post_adjustment.json", program["auth"]["admin"], member, "/adjustments",
                       body=spend)[0] == 200
    status, body, _ = give_back(auth, member, ret("ret-1", amount=5000))
    assert status == 200, body
    assert body["points_reversed"] == 90 and body["taken_from"] == {"pending": 0, "available": 5, "debt": 85}
    assert body["balance"]["available"] == 0 and body["balance"]["debt"] == 85
    accounts = runtime.store().program_accounts(pid)
    assert accounts["member:debt"] == -85 and accounts["member:available"] == 0 and sum(accounts.values()) == 0
    entries, _ = runtime.store().list_entries(pid, member, 20, None)
    assert sum(e["points"] for e in entries if e["type"] == "reversal" and e["debit"] == "member:debt") == 85


def test_a_return_while_the_points_are_pending_cancels_them_and_never_touches_available(program, member):
    pid, auth = program["program_id"], program["auth"]["partner"]
    status, _, _ = call(program_handler, "program/patch_program.json", program["auth"]["admin"],
                        body={"pending_days": 14}, headers={"Content-Type": "application/merge-patch+json",
                                                            "If-Match": "*"})
    assert status == 200
    runtime.reset()
    seed(pid, "books", BOOKS)
    seed(pid, "basket", BIG_BASKET)
    old = {**basket("pos-old"), "occurred_at": times.iso(datetime.now(UTC) - timedelta(days=20))}
    assert purchase(auth, member, old)[1]["balance"]["available"] == 90  # 20 days ago: available
    status, body, _ = purchase(auth, member, {**basket("pos-new"), "occurred_at": times.iso(
        datetime.now(UTC) - timedelta(days=2))})
    assert status == 200 and body["balance"]["pending"] == 90 and body["balance"]["available"] == 90, body
    status, body, _ = give_back(auth, member, ret("ret-1", txn="pos-new", lines=[("book", 3, 3000)]))
    assert status == 200, body
    assert body["points_reversed"] == 66 and body["taken_from"] == {"pending": 66, "available": 0, "debt": 0}
    assert body["balance"]["pending"] == 24 and body["balance"]["available"] == 90
    entries, _ = runtime.store().list_entries(pid, member, 20, None)
    assert {e["debit"] for e in entries if e["type"] == "reversal"} == {"member:pending"}
    (pending,) = runtime.store().pending_items(pid, member)
    assert pending["points"] == 24  # what activation will make available
    accounts = runtime.store().program_accounts(pid)
    assert accounts["member:pending"] == 24 and accounts["member:available"] == 90 and sum(accounts.values()) == 0
    # the rest of it, by amount: the pending item is gone, available untouched
    status, body, _ = give_back(auth, member, ret("ret-2", txn="pos-new", amount=2000))
    assert status == 200 and body["points_reversed"] == 24 and body["balance"]["pending"] == 0
    assert body["balance"]["available"] == 90
    assert [item["points"] for item in runtime.store().pending_items(pid, member)] == [0]  # activation removes it


def test_the_queue_takes_a_return_message(program, member, bought, monkeypatch):
    from tests.integration.test_accrual_queue import SHOP_ROLE, register

    sqs = boto3.client("sqs")
    monkeypatch.setenv("ACCRUAL_DLQ_URL", sqs.create_queue(QueueName="accrual-dlq")["QueueUrl"])
    runtime.reset()
    assert register(program, SHOP_ROLE)[0] == 201
    event = load_event("accrual_queue/return.json")
    message = json.loads(event["Records"][0]["body"])
    message["return"]["transaction_id"] = "pos-1"
    event["Records"][0]["body"] = json.dumps(message)
    for _ in range(2):  # delivered twice: reversed once
        assert accrual_queue.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert balance(program, member)["available"] == 90 - 36  # 20.00 of 50.00: 40 %
    entries, _ = runtime.store().list_entries(program["program_id"], member, 20, None)
    assert {e["actor"] for e in entries if e["type"] == "reversal"} == {"queue:accrual"}
    # the same return_id over HTTP is the same return
    status, replay, _ = give_back(program["auth"]["partner"], member, message["return"])
    assert status == 200 and replay["replayed"] is True and replay["points_reversed"] == 36


GOLD = {"metric": "points", "period": {"type": "rolling", "months": 12},
        "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                   {"id": "gold", "name": "Gold", "threshold": 80, "benefits": {"earn_multiplier_bps": 10000}}]}


def test_a_return_that_undoes_this_periods_upgrade_downgrades_at_once(program, member):
    pid, auth = program["program_id"], program["auth"]["partner"]
    status, _, _ = call(program_handler, "program/patch_program.json", program["auth"]["admin"],
                        body={"tiers": GOLD}, headers={"Content-Type": "application/merge-patch+json",
                                                       "If-Match": "*"})
    assert status == 200
    runtime.reset()
    seed(pid, "books", BOOKS)
    seed(pid, "basket", BIG_BASKET)
    status, body, _ = purchase(auth, member, basket())
    assert status == 200 and body["points_earned"] == 90
    assert member_item(pid, member, "TIER")["tier"] == "gold"
    status, body, _ = give_back(auth, member, ret("ret-1", lines=[("tea", 1, 2000)]))  # 20 + 4: 66 left
    assert status == 200 and body["points_reversed"] == 24, body
    state = member_item(pid, member, "TIER")
    assert state["tier"] == "bronze" and state.get("until") is None
    (event,) = events_of(program, {"tier.downgraded"})
    assert event["data"]["reason"] == "return" and event["data"]["from"] == "gold" and event["data"]["value"] == 66
