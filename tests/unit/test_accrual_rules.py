"""Accrual by the earning rules (treue.logic.points with treue.logic.earning), on in-memory fakes: the breakdown,
the postings per rule account, the counters and their caps, replays, and simulate == post (issue 16 item 3)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treue.core.ledger import Posting
from treue.core.programs import Program
from treue.errors import StaleCondition
from treue.logic import points
from treue.logic.models import Purchase
from treue.logic.rules import Rule
from treue.store.table import Replay

EUR = Program(id="p1", name="Shop", currency="EUR")  # 1 point per 1.00 EUR
AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NOW = "2026-12-01T10:00:05Z"
M1, M2 = "mbr_01m8y68w1gnkhzxhstyybjmqck", "mbr_01m8y68w1gregvtmk2x78akrfh"


class FakeLedger:
    """The ledger port in memory: postings, balances, account totals and the rules' counters, with the
    store's semantics (one guard per reference; counter conditions fail the whole write)."""

    def __init__(self) -> None:
        self.guards: dict[tuple[str, str], Replay] = {}
        self.entries: list[Posting] = []
        self.available: dict[str, int] = {M1: 0}
        self.accounts: dict[str, int] = {}
        self.counters: dict[tuple[str, str], int] = {}
        self.writes = 0
        self.before_write: Any = None  # a hook: what a concurrent request does between read and write

    def get_balance(self, program_id: str, member_id: str) -> dict[str, int] | None:
        if member_id not in self.available:
            return None
        return {"available": self.available[member_id], "pending": 0, "held": 0, "debt": 0, "lifetime_earned": 0,
                "lifetime_redeemed": 0}

    def balance_state(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        found = self.get_balance(program_id, member_id)
        return None if found is None else {**found, "dated": 0, "updated_at": ""}

    def rule_uses(self, program_id: str, member_id: str, wanted: Sequence[tuple[str, str]]
                  ) -> dict[tuple[str, str], int]:
        return {want: self.counters.get(self._key(member_id, *want), 0) for want in wanted}

    @staticmethod
    def _key(member_id: str, rule_id: str, window: str) -> tuple[str, str]:
        return (rule_id, window) if window == "budget" else (rule_id, f"{member_id}:{window}")

    def rule_use_items(self, program_id: str, member_id: str, uses: Sequence[tuple[str, str, int, int | None]]
                       ) -> list[dict[str, Any]]:
        return [{"key": self._key(member_id, rule_id, window), "add": add, "cap": cap}
                for rule_id, window, add, cap in uses]

    def month_item(self, program_id: str, member_id: str, month: str, adds: dict[str, int],
                   categories: Sequence[str], room: tuple[str, int] | None = None) -> dict[str, Any]:
        """The purchase's month counter (purchases counted like the rules' counters, never capped here)."""
        return {"key": (f"month:{month}", member_id), "add": adds["purchases"], "cap": None}

    def post(self, program_id: str, member_id: str, idempotency: tuple[str, str, str], result: dict[str, Any],
             posting: Posting | None, now: str, extra: list[dict[str, Any]] | None = None,
             more: Sequence[Posting] = (), counts: dict[str, int] | None = None) -> Replay | None:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()
        kind, reference, fingerprint = idempotency
        if (kind, reference) in self.guards:
            return self.guards[(kind, reference)]
        for index, item in enumerate(extra or []):
            if item["cap"] is not None and self.counters.get(item["key"], 0) + item["add"] > item["cap"]:
                raise StaleCondition(index, None)
        self.writes += 1
        self.guards[(kind, reference)] = Replay(fingerprint, dict(result))
        for item in extra or []:
            self.counters[item["key"]] = self.counters.get(item["key"], 0) + item["add"]
        for one in [posting, *more] if posting is not None else []:
            self.entries.append(one)
            for account, delta in one.deltas().items():
                self.accounts[str(account)] = self.accounts.get(str(account), 0) + delta
            self.available[member_id] += one.member_delta()
        return None


class FakeRules:
    def __init__(self, *rules: Rule) -> None:
        self.rules = list(rules)
        self.asked: list[str] = []

    def in_force(self, program_id: str, at: str) -> list[Rule]:
        self.asked.append(at)
        moment = datetime.fromisoformat(at)
        return [rule for rule in self.rules if rule.in_force(moment)]


def rule(rule_id: str = "books", version: int = 1, **fields: Any) -> Rule:
    body: dict[str, Any] = {"name": rule_id, "trigger": "purchase", "conditions": {"category": "books"},
                            "effect": {"multiplier_bps": 20000}}
    return Rule.model_validate({"id": rule_id, "version": version, **body, **fields})


def purchase(tid: str = "t1", amount: int = 5000, lines: list[dict[str, Any]] | None = None,
             at: datetime = AT) -> Purchase:
    body: dict[str, Any] = {"transaction_id": tid, "amount": {"value": amount, "currency": "EUR"},
                            "occurred_at": at.isoformat()}
    if lines is not None:
        body["lines"] = [{"sku": f"s{i}", "quantity": 1, **line,
                          "amount": {"value": line["amount"], "currency": "EUR"}} for i, line in enumerate(lines)]
    return Purchase.model_validate(body)


BOOKS_AND_FOOD = [{"category": "books", "amount": 3000}, {"category": "food", "amount": 2000}]


def test_books_count_double_doubles_the_books_line_only():
    store = FakeLedger()
    answer = points.accrue(store, EUR, M1, purchase(lines=BOOKS_AND_FOOD), "test", NOW, FakeRules(rule()).in_force)
    assert answer["points_earned"] == 80  # 30 base + 20 base + 30 for the books line
    assert answer["breakdown"] == [
        {"rule_id": "base", "version": 1, "points": 30, "line_index": 0},
        {"rule_id": "base", "version": 1, "points": 20, "line_index": 1},
        {"rule_id": "books", "version": 1, "points": 30, "line_index": 0},
    ]
    assert answer["balance"]["available"] == 80
    # the base from program:issued, the bonus from the rule's own account; the books balance
    assert {(p.debit, p.points) for p in store.entries} == {("program:issued", 50), ("program:bonus:books", 30)}
    assert store.accounts == {"program:issued": -50, "program:bonus:books": -30, "member:available": 80}
    assert sum(store.accounts.values()) == 0
    for posting in store.entries:  # every posting names the rules that produced it, and keeps the lines
        assert posting.metadata["rules"] == [{"rule_id": "base", "version": 1}, {"rule_id": "books", "version": 1}]
        assert [line["category"] for line in posting.metadata["lines"]] == ["books", "food"]


def test_without_rules_the_base_rate_alone_as_before():
    store = FakeLedger()
    answer = points.accrue(store, EUR, M1, purchase(amount=1999), "test", NOW)
    assert answer["points_earned"] == 19
    assert answer["breakdown"] == [{"rule_id": "base", "version": 1, "points": 19}]
    assert [(p.debit, p.points) for p in store.entries] == [("program:issued", 19)]


def test_the_rules_asked_are_those_in_force_at_occurred_at_not_now():
    port = FakeRules(rule(ends_at="2026-11-30T00:00:00Z"), rule("later", starts_at="2026-12-02T00:00:00Z"))
    rules = port.in_force
    answer = points.accrue(FakeLedger(), EUR, M1, purchase(lines=BOOKS_AND_FOOD), "test", NOW, rules)
    assert answer["points_earned"] == 50  # neither rule is in force on 2026-12-01
    assert port.asked == ["2026-12-01T10:00:00Z"]
    early = points.accrue(FakeLedger(), EUR, M1, purchase(lines=BOOKS_AND_FOOD, at=AT - timedelta(days=3)),
                          "test", NOW, rules)
    assert early["points_earned"] == 80


def test_a_replay_answers_the_first_breakdown():
    store = FakeLedger()
    port = FakeRules(rule())
    rules = port.in_force
    first = points.accrue(store, EUR, M1, purchase(lines=BOOKS_AND_FOOD), "test", NOW, rules)
    port.rules.clear()  # the rule retired meanwhile: the replay still answers what the purchase earned
    again = points.accrue(store, EUR, M1, purchase(lines=BOOKS_AND_FOOD), "test", NOW, rules)
    assert again["replayed"] and again["breakdown"] == first["breakdown"] and again["points_earned"] == 80
    assert store.writes == 1 and again["balance"]["available"] == 80


def test_a_per_day_cap_pays_once_a_day_and_says_why():
    store = FakeLedger()
    rules = FakeRules(rule("bonus", effect={"points": 100}, limits={"per_member_per_day": 1})).in_force
    lines = [{"category": "books", "amount": 1000}]
    first = points.accrue(store, EUR, M1, purchase("t1", 1000, lines), "test", NOW, rules)
    second = points.accrue(store, EUR, M1, purchase("t2", 1000, lines), "test", NOW, rules)
    next_day = points.accrue(store, EUR, M1, purchase("t3", 1000, lines, AT + timedelta(days=1)), "test", NOW,
                             rules)
    assert [a["points_earned"] for a in (first, second, next_day)] == [110, 10, 110]
    assert second["breakdown"][-1] == {"rule_id": "bonus", "version": 1, "points": 0,
                                       "reason": "per_member_per_day: paid 1 of 1 times today"}
    assert store.accounts["program:bonus:bonus"] == -200


def test_a_concurrent_payment_that_reaches_the_cap_first_makes_this_one_evaluate_again():
    store = FakeLedger()
    rules = FakeRules(rule("bonus", effect={"points": 100}, limits={"per_member_lifetime": 1})).in_force
    lines = [{"category": "books", "amount": 1000}]
    # between this purchase's read of the counters and its write, another purchase is paid the bonus
    store.before_write = lambda: points.accrue(store, EUR, M1, purchase("other", 1000, lines), "test", NOW, rules)
    answer = points.accrue(store, EUR, M1, purchase("t1", 1000, lines), "test", NOW, rules)
    assert answer["points_earned"] == 10 and answer["breakdown"][-1]["reason"].startswith("per_member_lifetime")
    assert store.accounts["program:bonus:bonus"] == -100  # paid once


def test_a_budget_is_never_overspent():
    store = FakeLedger()
    store.available[M2] = 0
    rules = FakeRules(rule("bonus", effect={"points": 70}, limits={"budget_points": 100})).in_force
    lines = [{"category": "books", "amount": 1000}]
    one = points.accrue(store, EUR, M1, purchase("t1", 1000, lines), "test", NOW, rules)
    two = points.accrue(store, EUR, M2, purchase("t2", 1000, lines), "test", NOW, rules)
    three = points.accrue(store, EUR, M2, purchase("t3", 1000, lines), "test", NOW, rules)
    assert [a["points_earned"] for a in (one, two, three)] == [80, 40, 10]
    assert store.accounts["program:bonus:bonus"] == -100


def test_simulate_posts_nothing_and_refuses_an_unknown_member():
    store = FakeLedger()
    found = points.simulate(store, EUR, M1, purchase(lines=BOOKS_AND_FOOD), FakeRules(rule()).in_force)
    assert found["points_earned"] == 80 and store.writes == 0 and store.entries == []
    with pytest.raises(Exception, match="does not exist"):
        points.simulate(store, EUR, "mbr_01m8y68w1gnkhzxhstyybjmqcz", purchase(), FakeRules().in_force)


categories = st.sampled_from(["books", "food", "toys"])
rules_strategy = st.lists(
    st.builds(
        lambda i, category, effect, stackable, priority, cap: rule(
            f"r{i}", conditions={"category": category}, effect=effect, stackable=stackable, priority=priority,
            limits={"per_member_per_day": cap} if cap else {}),
        st.integers(0, 50), categories,
        st.one_of(st.builds(lambda v: {"multiplier_bps": v}, st.integers(10_001, 40_000)),
                  st.builds(lambda v: {"points": v}, st.integers(1, 500)),
                  st.builds(lambda v: {"points_per_unit": v}, st.integers(1, 50)),
                  st.builds(lambda v: {"cashback_bps": v}, st.integers(1, 10_000))),
        st.booleans(), st.integers(-3, 3), st.one_of(st.none(), st.integers(1, 2))),
    max_size=4, unique_by=lambda r: r.id)
lines_strategy = st.lists(st.fixed_dictionaries({"category": categories, "amount": st.integers(0, 20_000),
                                                 "quantity": st.integers(1, 5)}), max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_strategy, lines_strategy, st.integers(0, 5000), st.integers(1, 3))
def test_simulate_equals_post_and_the_books_balance(rules, lines, rest, purchases):
    store = FakeLedger()
    port = FakeRules(*rules).in_force
    for n in range(purchases):  # later purchases meet the counters the earlier ones added
        bought = purchase(f"t{n}", sum(line["amount"] for line in lines) + rest, lines)
        simulated = points.simulate(store, EUR, M1, bought, port)
        posted = points.accrue(store, EUR, M1, bought, "test", NOW, port)
        assert simulated["breakdown"] == posted["breakdown"]
        assert simulated["points_earned"] == posted["points_earned"] == sum(
            line["points"] for line in posted["breakdown"])
    assert sum(store.accounts.values()) == 0
    assert store.available[M1] == -sum(v for k, v in store.accounts.items() if k.startswith("program:"))
