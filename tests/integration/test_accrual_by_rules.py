"""Accrual by the earning rules on moto (issue 16 item 3): purchases with lines through the Accrual function, the
bonus postings from each rule's own account, the books at zero, replays, a per-day cap under 20 concurrent
purchases, and simulate, which writes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import call, enroll, member_call, purchase
from treue import runtime
from treue.handlers import accrual
from treue.logic import points
from treue.logic.models import Purchase
from treue.logic.rules import RuleDefinition

BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}
ONCE_A_DAY = {"name": "Coffee bonus", "trigger": "purchase", "conditions": {"category": "grocery"},
              "effect": {"points": 100}, "limits": {"per_member_per_day": 1}}
CREATED = "2026-10-01T00:00:00Z"  # before the purchases' occurred_at


def seed(program_id: str, rule_id: str, body: dict, created_at: str = CREATED) -> None:
    """A rule as the rules API stores it (version 1), through the rules store."""
    definition = RuleDefinition.model_validate(body).model_dump(mode="json", exclude_none=True)
    current = {**definition, "id": rule_id, "version": 1, "status": "active", "created_at": created_at,
               "created_by": "admin:test"}
    assert runtime.rules().create(program_id, current, (f"seed-{rule_id}", "fp"), {}) is None


def bought(txn: str, lines: list[tuple[str, int]], rest: int = 0, at: str = "2026-11-20T10:00:00Z") -> dict:
    return {"transaction_id": txn, "amount": {"value": sum(a for _, a in lines) + rest, "currency": "EUR"},
            "occurred_at": at,
            "lines": [{"sku": f"sku-{i}", "category": c, "quantity": 1, "amount": {"value": a, "currency": "EUR"}}
                      for i, (c, a) in enumerate(lines)]}


def table_items() -> list[dict]:
    ddb = boto3.client("dynamodb")
    out, params = [], {"TableName": runtime.store().table}
    while True:
        page = ddb.scan(**params)
        out += page["Items"]
        if "LastEvaluatedKey" not in page:
            return out
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def member(program):
    return enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]


def test_a_books_line_earns_double_from_the_rules_own_account_and_the_books_balance(program, member):
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "books", BOOKS)
    status, body, _ = purchase(auth, member, bought("pos-1", [("books", 3000), ("grocery", 2000)], rest=99))
    assert status == 200, body
    assert body["points_earned"] == 80  # 30 + 20 + 0 (0.99 uncovered) base, 30 for the books line
    assert [{k: v for k, v in line.items() if v is not None} for line in body["breakdown"]] == [
        {"rule_id": "base", "version": 1, "points": 30, "line_index": 0},
        {"rule_id": "base", "version": 1, "points": 20, "line_index": 1},
        {"rule_id": "base", "version": 1, "points": 0},
        {"rule_id": "books", "version": 1, "points": 30, "line_index": 0},
    ]
    accounts = runtime.store().program_accounts(pid)
    assert accounts["program:issued"] == -50 and accounts["program:bonus:books"] == -30
    assert accounts["member:available"] == 80 and sum(accounts.values()) == 0
    _, statement, _ = member_call(accrual, "accrual/get_ledger.json", auth, member, "/ledger")
    assert sorted(e["points"] for e in statement["entries"]) == [30, 50]
    entries, _ = runtime.store().list_entries(pid, member, 10, None)
    for entry in entries:  # the journal keeps the lines and the rules that paid
        assert entry["metadata"]["rules"] == [{"rule_id": "base", "version": 1}, {"rule_id": "books", "version": 1}]
        assert [line["category"] for line in entry["metadata"]["lines"]] == ["books", "grocery"]
    assert {e["debit"] for e in entries} == {"program:issued", "program:bonus:books"}
    # a replay answers the same breakdown and posts nothing more
    status, again, _ = purchase(auth, member, bought("pos-1", [("books", 3000), ("grocery", 2000)], rest=99))
    assert status == 200 and again["replayed"] and again["breakdown"] == body["breakdown"]
    assert again["balance"]["available"] == 80


def test_a_rule_created_after_the_purchase_happened_does_not_pay_it(program, member):
    seed(program["program_id"], "books", BOOKS, created_at="2026-11-21T00:00:00Z")
    status, body, _ = purchase(program["auth"]["partner"], member, bought("pos-1", [("books", 3000)]))
    assert status == 200 and body["points_earned"] == 30
    assert [line["rule_id"] for line in body["breakdown"]] == ["base"]


def test_lines_adding_up_to_more_than_the_purchase_are_422_with_the_reason(program, member):
    body = bought("pos-1", [("books", 3000)])
    body["amount"]["value"] = 2999
    status, problem, _ = purchase(program["auth"]["partner"], member, body)
    assert status == 422 and "lines add up to more than the purchase amount" in str(problem)
    body = bought("pos-2", [("books", 3000)])
    body["lines"][0]["amount"]["value"] = -1
    assert purchase(program["auth"]["partner"], member, body)[0] == 422


def test_twenty_concurrent_purchases_against_a_per_day_cap_of_one_pay_the_bonus_once(program, member):
    serialize_moto_dynamodb()
    pid = program["program_id"]
    seed(pid, "coffee", ONCE_A_DAY)
    store = runtime.store()
    prog = store.get_program(pid)

    def buy(i: int) -> dict:
        body = Purchase.model_validate(bought(f"c-{i}", [("grocery", 1000)]))
        return points.accrue(store, prog, member, body, "test", runtime.now(), runtime.rules().in_force)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(buy, range(20)))
    assert sorted(a["points_earned"] for a in answers) == [10] * 19 + [110]
    capped = [a for a in answers if a["points_earned"] == 10]
    assert all(a["breakdown"][-1]["reason"] == "per_member_per_day: paid 1 of 1 times today" for a in capped)
    accounts = store.program_accounts(pid)
    assert accounts["program:bonus:coffee"] == -100 and sum(accounts.values()) == 0
    assert store.get_balance(pid, member)["available"] == 20 * 10 + 100


def test_simulate_answers_the_breakdown_a_purchase_then_gets_and_writes_nothing(program, member):
    pid, auth = program["program_id"], program["auth"]["partner"]
    seed(pid, "books", BOOKS)
    seed(pid, "coffee", ONCE_A_DAY)
    body = bought("pos-9", [("books", 3000), ("grocery", 2000)])
    before = table_items()
    status, simulated, _ = call(accrual, "accrual/post_simulate.json", auth, body={**body, "member_id": member})
    assert status == 200, simulated
    assert table_items() == before  # nothing written
    assert simulated["points_earned"] == 180 and simulated["member_id"] == member
    status, posted, _ = purchase(auth, member, body)
    assert status == 200 and posted["breakdown"] == simulated["breakdown"]
    # the cap is reached now: simulate says so, with the reason
    status, after, _ = call(accrual, "accrual/post_simulate.json", auth,
                            body={**bought("pos-10", [("grocery", 2000)]), "member_id": member})
    assert status == 200 and after["points_earned"] == 20
    assert after["breakdown"][-1]["reason"] == "per_member_per_day: paid 1 of 1 times today"
    unknown = {**body, "member_id": "mbr_01m8y68w1gnkhzxhstyybjmqcz"}
    assert call(accrual, "accrual/post_simulate.json", auth, body=unknown)[0] == 404
    assert call(accrual, "accrual/post_simulate.json", auth, body={**body})[0] == 422  # no member_id
