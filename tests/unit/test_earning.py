"""The earning engine (treue.logic.earning) and its rule model (treue.logic.rules): pure, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from treue.core.programs import Program
from treue.logic.earning import (
    Breakdown,
    Line,
    Member,
    MemberEvent,
    PurchaseEvent,
    RuleCounters,
    Tier,
    evaluate,
    in_force,
    purchase_event,
)
from treue.logic.models import Purchase
from treue.logic.rules import Rule, RuleDefinition

EUR = Program(id="p1", name="Shop", currency="EUR")  # 1 point per 1.00 EUR, 1 point = 1 cent
AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday
GOLD = Member(tier=Tier("gold", 15000))
BOOKS = Line(amount=3000, quantity=2, sku="b-1", category="books")
FOOD = Line(amount=2050, quantity=1, sku="f-1", category="food")


def rule(rule_id: str = "r1", version: int = 1, **fields: object) -> Rule:
    body: dict[str, object] = {"name": rule_id, "trigger": "purchase", "effect": {"points": 10}}
    return Rule.model_validate({"id": rule_id, "version": version, **body, **fields})


def buy(amount: int = 10000, lines: tuple[Line, ...] = (), at: datetime = AT, channel: str | None = None
        ) -> PurchaseEvent:
    return PurchaseEvent(occurred_at=at, amount=amount, lines=lines, channel=channel)


def points(breakdown: Breakdown) -> dict[str, int]:
    by_rule: dict[str, int] = {}
    for line in breakdown.lines:
        by_rule[line.rule_id] = by_rule.get(line.rule_id, 0) + line.points
    return by_rule


# --- the examples, verbatim -------------------------------------------------------------------------

def test_a_gold_member_earns_150_points_on_100_eur_with_no_other_rule():
    breakdown = evaluate(EUR, [], GOLD, buy(10000))
    assert breakdown.total == 150
    assert [line.to_json() for line in breakdown.lines] == [
        {"rule_id": "base", "version": 1, "points": 100},
        {"rule_id": "tier:gold", "version": 1, "points": 50},
    ]


def test_books_count_double():
    books = Rule.model_validate({"id": "books", "version": 3, "name": "Books count double", "trigger": "purchase",
                                 "conditions": {"category": "books"}, "effect": {"multiplier_bps": 20000}})
    breakdown = evaluate(EUR, [books], Member(), buy(5050, (BOOKS, FOOD)))
    assert [line.to_json() for line in breakdown.lines] == [
        {"rule_id": "base", "version": 1, "points": 30, "line_index": 0},
        {"rule_id": "base", "version": 1, "points": 20, "line_index": 1},
        {"rule_id": "books", "version": 3, "points": 30, "line_index": 0},  # the books line: 2× its 30
    ]
    assert breakdown.total == 80
    assert evaluate(EUR, [books], GOLD, buy(5050, (BOOKS, FOOD))).total == 80 + 15 + 10  # + the tier's 1.5×


def test_the_review_bonus_pays_once_a_day():
    review = Rule.model_validate({"id": "review", "version": 1, "name": "Review bonus", "trigger": "activity",
                                  "conditions": {"activity_type": "review"}, "effect": {"points": 50},
                                  "limits": {"per_member_per_day": 1}})
    event = MemberEvent(trigger="activity", occurred_at=AT, activity_type="review")
    assert evaluate(EUR, [review], Member(), event).to_json() == {
        "lines": [{"rule_id": "review", "version": 1, "points": 50}], "total": 50}
    again = evaluate(EUR, [review], Member(), event, {"review": RuleCounters(today=1, lifetime=1)})
    assert again.total == 0
    assert again.capped()[0].reason == "per_member_per_day: paid 1 of 1 times today"
    survey = MemberEvent(trigger="activity", occurred_at=AT, activity_type="survey")
    assert evaluate(EUR, [review], Member(), survey).lines == ()


def test_friends_pay_the_referrer_and_the_referee():
    friends = Rule.model_validate({"id": "friends", "version": 1, "name": "Friends", "trigger": "referral",
                                   "effect": {"referrer_points": 500, "referee_points": 250}})
    for role, expected in (("referrer", 500), ("referee", 250)):
        event = MemberEvent(trigger="referral", occurred_at=AT, role=role)
        assert evaluate(EUR, [friends], Member(), event).total == expected
    # a referral rule does not pay on purchases
    assert evaluate(EUR, [friends], Member(), buy(10000)).total == 100


# --- table: conditions, stacking, priority, caps, rounding ---------------------------------------------------

CASES = [
    # (name, rules, member, event, counters, points per rule)
    ("base only, rounded down", [], Member(), buy(999), {}, {"base": 9}),
    ("rounded down per line", [], Member(), buy(1998, (Line(999), Line(999))), {}, {"base": 18}),
    ("the uncovered remainder is a line", [], Member(), buy(10000, (Line(2550),)), {}, {"base": 25 + 74}),
    ("fixed points once per purchase", [rule(effect={"points": 10})], Member(), buy(5050, (BOOKS, FOOD)), {},
     {"base": 50, "r1": 10}),
    ("points per unit of matching lines", [rule(conditions={"category": "books"}, effect={"points_per_unit": 7})],
     Member(), buy(5050, (BOOKS, FOOD)), {}, {"base": 50, "r1": 14}),
    ("points per unit: the remainder has no units", [rule(effect={"points_per_unit": 7})], Member(),
     buy(10000, (FOOD,)), {}, {"base": 20 + 79, "r1": 7}),
    ("sku condition", [rule(conditions={"sku": ["f-1", "x"]}, effect={"multiplier_bps": 30000})], Member(),
     buy(5050, (BOOKS, FOOD)), {}, {"base": 50, "r1": 40}),
    ("category matched exactly", [rule(conditions={"category": ["Bücher", "Books"]})], Member(),
     buy(500, (Line(100, category="Bücher"), Line(400, category="books"))), {}, {"base": 5, "r1": 10}),
    ("category case differs", [rule(conditions={"category": "Books"})], Member(),
     buy(500, (Line(500, category="books"),)), {}, {"base": 5}),
    ("category list means any", [rule(conditions={"category": ["food", "books"]}, effect={"multiplier_bps": 20000})],
     Member(), buy(5050, (BOOKS, FOOD)), {}, {"base": 50, "r1": 50}),
    ("min_amount met", [rule(conditions={"min_amount": 5000})], Member(), buy(5000), {}, {"base": 50, "r1": 10}),
    ("min_amount missed", [rule(conditions={"min_amount": 5001})], Member(), buy(5000), {}, {"base": 50}),
    ("channel met", [rule(conditions={"channel": "app"})], Member(), buy(100, channel="app"), {},
     {"base": 1, "r1": 10}),
    ("channel missed", [rule(conditions={"channel": "app"})], Member(), buy(100, channel="store"), {}, {"base": 1}),
    ("channel unknown", [rule(conditions={"channel": "app"})], Member(), buy(100), {}, {"base": 1}),
    ("weekday met", [rule(conditions={"weekdays": ["tue", "sat"]})], Member(), buy(100), {}, {"base": 1, "r1": 10}),
    ("weekday missed", [rule(conditions={"weekdays": ["mon"]})], Member(), buy(100), {}, {"base": 1}),
    ("weekday in occurred_at's own offset", [rule(conditions={"weekdays": ["wed"]})], Member(),
     buy(100, at=datetime(2026, 12, 2, 0, 30, tzinfo=timezone(timedelta(hours=1)))), {}, {"base": 1, "r1": 10}),
    ("date range met (inclusive)", [rule(conditions={"date_from": "2026-11-01", "date_to": "2026-12-01"})],
     Member(), buy(100), {}, {"base": 1, "r1": 10}),
    ("date range missed", [rule(conditions={"date_from": "2026-12-02"})], Member(), buy(100), {}, {"base": 1}),
    ("tier met", [rule(conditions={"tier": "gold"})], GOLD, buy(100), {}, {"base": 1, "r1": 10}),
    ("tier missed", [rule(conditions={"tier": "gold"})], Member(tier=Tier("bronze")), buy(100), {}, {"base": 1}),
    ("no tier", [rule(conditions={"tier": "gold"})], Member(), buy(100), {}, {"base": 1}),
    ("segment met", [rule(conditions={"segment": ["new", "vip"]})], Member(segments=frozenset({"vip"})), buy(100),
     {}, {"base": 1, "r1": 10}),
    ("segment missed", [rule(conditions={"segment": "new"})], Member(segments=frozenset({"active"})), buy(100), {},
     {"base": 1}),
    ("stackable rules add", [rule("a", effect={"multiplier_bps": 20000}), rule("b", effect={"multiplier_bps": 20000})],
     Member(), buy(1000), {}, {"base": 10, "a": 10, "b": 10}),
    ("non-stackable stops lower priority", [rule("a", priority=1, effect={"multiplier_bps": 30000}),
                                            rule("b", priority=5, stackable=False,
                                                 effect={"multiplier_bps": 20000})],
     Member(), buy(1000), {}, {"base": 10, "b": 10}),
    ("non-stackable stops only its lines", [rule("a", effect={"points_per_unit": 1}),
                                            rule("b", priority=5, stackable=False, conditions={"category": "books"},
                                                 effect={"points_per_unit": 5})],
     Member(), buy(5050, (BOOKS, FOOD)), {}, {"base": 50, "b": 10, "a": 1}),
    ("non-stackable does not stop higher priority", [rule("a", priority=9, effect={"points_per_unit": 1}),
                                                     rule("b", priority=5, stackable=False,
                                                          effect={"points_per_unit": 5})],
     Member(), buy(5050, (BOOKS, FOOD)), {}, {"base": 50, "a": 3, "b": 15}),
    ("equal priority: rule id order", [rule("b", stackable=False, effect={"points_per_unit": 5}),
                                       rule("a", stackable=False, effect={"points_per_unit": 1})],
     Member(), buy(3000, (BOOKS,)), {}, {"base": 30, "a": 2}),
    ("a non-stackable fixed bonus takes its lines", [rule("a", effect={"multiplier_bps": 20000}),
                                                     rule("b", priority=5, stackable=False,
                                                          conditions={"category": "books"}, effect={"points": 7})],
     Member(), buy(5050, (BOOKS, FOOD)), {}, {"base": 50, "b": 7, "a": 20}),
    ("a capped non-stackable rule stops nothing", [rule("a", effect={"multiplier_bps": 20000}),
                                                   rule("b", priority=5, stackable=False,
                                                        limits={"per_member_lifetime": 1},
                                                        effect={"multiplier_bps": 20000})],
     Member(), buy(1000), {"b": RuleCounters(lifetime=1)}, {"base": 10, "b": 0, "a": 10}),
    ("tier is not stopped", [rule(stackable=False, priority=9, effect={"multiplier_bps": 20000})], GOLD,
     buy(1000), {}, {"base": 10, "tier:gold": 5, "r1": 10}),
    ("multiplier rounds down per line", [rule(effect={"multiplier_bps": 12500})], Member(),
     buy(1400, (Line(700), Line(700))), {}, {"base": 14, "r1": 2}),  # 7 × 1.25 = 8.75 → 8: 1 more, twice
    ("per day cap not reached", [rule(limits={"per_member_per_day": 2})], Member(), buy(100),
     {"r1": RuleCounters(today=1)}, {"base": 1, "r1": 10}),
    ("per day cap reached", [rule(limits={"per_member_per_day": 2})], Member(), buy(100),
     {"r1": RuleCounters(today=2)}, {"base": 1, "r1": 0}),
    ("per period cap reached", [rule(limits={"per_member_per_period": {"times": 3, "period": "month"}})], Member(),
     buy(100), {"r1": RuleCounters(period=3)}, {"base": 1, "r1": 0}),
    ("lifetime cap reached", [rule(limits={"per_member_lifetime": 1})], Member(), buy(100),
     {"r1": RuleCounters(lifetime=1)}, {"base": 1, "r1": 0}),
    ("other rules' counters do not cap", [rule(limits={"per_member_lifetime": 1})], Member(), buy(100),
     {"r2": RuleCounters(lifetime=5)}, {"base": 1, "r1": 10}),
    ("budget cuts the last payment", [rule(limits={"budget_points": 100})], Member(), buy(100),
     {"r1": RuleCounters(total_points=96)}, {"base": 1, "r1": 4}),
    ("budget spent", [rule(limits={"budget_points": 100})], Member(), buy(100),
     {"r1": RuleCounters(total_points=100)}, {"base": 1, "r1": 0}),
    ("budget cut across lines", [rule(effect={"points_per_unit": 10}, limits={"budget_points": 25})], Member(),
     buy(5050, (BOOKS, FOOD)), {"r1": RuleCounters(total_points=0)}, {"base": 50, "r1": 25}),
    ("a rule of another trigger pays nothing", [rule(trigger="birthday")], Member(), buy(100), {}, {"base": 1}),
    ("activity: a non-stackable bonus stops the next", [rule("a", trigger="activity", stackable=False, priority=2),
                                                        rule("b", trigger="activity", effect={"points": 3})],
     Member(), MemberEvent(trigger="activity", occurred_at=AT, activity_type="survey"), {}, {"a": 10}),
    ("enrollment welcome bonus", [rule(trigger="enrollment", effect={"points": 2500})], Member(),
     MemberEvent(trigger="enrollment", occurred_at=AT), {}, {"r1": 2500}),
]


@pytest.mark.parametrize(("name", "rules", "member", "event", "counters", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_evaluation(name, rules, member, event, counters, expected):
    breakdown = evaluate(EUR, rules, member, event, counters)
    assert points(breakdown) == expected
    assert breakdown.total == sum(expected.values())
    for line in breakdown.lines:
        if line.rule_id not in ("base",) and line.points == 0:
            assert line.reason, line  # a rule's zero line says why


def test_a_capped_rule_says_why_and_uses_are_counted_per_event():
    capped = evaluate(EUR, [rule(limits={"per_member_per_period": {"times": 3, "period": "week"}})], Member(),
                      buy(100), {"r1": RuleCounters(period=3)})
    assert [line.to_json() for line in capped.capped()] == [
        {"rule_id": "r1", "version": 1, "points": 0, "reason": "per_member_per_period: paid 3 of 3 times this week"}]
    cut = evaluate(EUR, [rule(effect={"points_per_unit": 10}, limits={"budget_points": 25})], Member(),
                   buy(5050, (BOOKS, FOOD)))
    assert [(line.points, line.line_index, line.reason) for line in cut.lines if line.rule_id == "r1"] == [
        (20, 0, None), (5, 1, "budget_points: cut to the 5 points left of 25")]
    assert cut.paid() == {"r1": 25}


def test_cashback_at_a_point_value_other_than_one_cent():
    # 1 point is worth 0.50 EUR: value_points=2, value_minor=100
    program = Program(id="p2", name="Club", currency="EUR", value_points=2, value_minor=100)
    cashback = rule(effect={"cashback_bps": 500})  # 5 %
    # 5 % of 99.99 EUR = 4.9995 EUR = 9.999 points → 9
    breakdown = evaluate(program, [cashback], Member(), buy(9999))
    assert points(breakdown) == {"base": 99, "r1": 9}
    # 5 % of 10.10 EUR = 0.505 EUR = 1.01 points → 1; per line: two lines of 5.05 EUR → 0.505 points → 0 each
    assert points(evaluate(program, [cashback], Member(), buy(1010))) == {"base": 10, "r1": 1}
    assert points(evaluate(program, [cashback], Member(), buy(1010, (Line(505), Line(505))))) == {"base": 10}
    # 1 point worth 0.004 EUR (250 points per euro): 2 % of 12.34 EUR = 0.2468 EUR = 61.7 points → 61
    cheap = Program(id="p3", name="Mall", currency="EUR", value_points=250, value_minor=100)
    assert points(evaluate(cheap, [rule(effect={"cashback_bps": 200})], Member(), buy(1234)))["r1"] == 61


@pytest.mark.parametrize(("starts", "ends", "paid"), [
    (AT, None, True),                                   # starts_at is inclusive
    (AT + timedelta(microseconds=1), None, False),
    (None, AT, False),                                  # ends_at is exclusive
    (None, AT + timedelta(microseconds=1), True),
    (AT - timedelta(days=1), AT + timedelta(days=1), True),
])
def test_effective_dating_at_the_boundaries(starts, ends, paid):
    campaign = rule(starts_at=starts.isoformat() if starts else None, ends_at=ends.isoformat() if ends else None)
    assert ("r1" in points(evaluate(EUR, [campaign], Member(), buy(100)))) is paid


def test_the_version_in_force_is_the_one_that_pays():
    v1 = rule(version=1, effect={"points": 10}, ends_at="2026-12-01T00:00:00Z")
    v2 = rule(version=2, effect={"points": 20}, starts_at="2026-12-01T00:00:00Z")
    line = [x for x in evaluate(EUR, [v2, v1], Member(), buy(100)).lines if x.rule_id == "r1"]
    assert [(x.version, x.points) for x in line] == [(2, 20)]
    earlier = buy(100, at=AT - timedelta(days=1))
    assert [(x.version, x.points) for x in evaluate(EUR, [v1, v2], Member(), earlier).lines if x.rule_id == "r1"] \
        == [(1, 10)]
    with pytest.raises(ValueError, match="both in force"):
        in_force([rule(version=1), rule(version=2)], AT)


def test_a_validated_purchase_becomes_an_event():
    purchase = Purchase.model_validate({
        "transaction_id": "t-1", "amount": {"value": 5050, "currency": "EUR"}, "occurred_at": "2026-12-01T10:00:00Z",
        "lines": [{"sku": "b-1", "category": "books", "quantity": 2, "amount": {"value": 3000, "currency": "EUR"}}]})
    event = purchase_event(purchase, channel="web")
    assert event.lines == (BOOKS,) and event.amount == 5050 and event.channel == "web"
    assert points(evaluate(EUR, [], Member(), event)) == {"base": 30 + 20}


# --- the rule model's refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"effect": {"points": 10, "multiplier_bps": 20000}}, "exactly one"),
    ({"effect": {}}, "exactly one"),
    ({"effect": {"multiplier_bps": 0}}, r"\(1×\) or less adds nothing"),
    ({"effect": {"multiplier_bps": 10000}}, r"\(1×\) or less adds nothing"),
    ({"effect": {"multiplier_bps": 2.5}}, "multiplier_bps"),
    ({"effect": {"cashback_bps": 10001}}, "cashback_bps"),
    ({"effect": {"points": 0}}, "points"),
    ({"starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}, "ends_at must lie after starts_at"),
    ({"starts_at": "2026-12-02T00:00:00"}, "time zone"),
    ({"trigger": "activity", "effect": {"multiplier_bps": 20000}}, "purchase rules only"),
    ({"trigger": "activity", "conditions": {"category": "books"}}, "category applies to purchase rules only"),
    ({"conditions": {"activity_type": "review"}}, "activity rules only"),
    ({"effect": {"referrer_points": 5}}, "referral"),
    ({"trigger": "referral"}, "referral"),
    ({"trigger": "referral", "effect": {"referrer_points": 0, "referee_points": 0}}, "referrer_points or"),
    ({"conditions": {"weekdays": ["mon", "mon"]}}, "twice"),
    ({"conditions": {"weekdays": ["monday"]}}, "weekdays"),
    ({"conditions": {"date_from": "2026-12-02", "date_to": "2026-12-01"}}, "date_to lies before"),
    ({"conditions": {"colour": "red"}}, "colour"),
    ({"limits": {"per_member_per_day": 0}}, "per_member_per_day"),
    ({"limits": {"per_member_per_period": {"times": 1, "period": "fortnight"}}}, "period"),
    ({"trigger": "payday"}, "trigger"),
])
def test_bad_rules_are_refused_with_the_reason(change, message):
    body = {"name": "Rule", "trigger": "purchase", "effect": {"points": 10}, **change}
    with pytest.raises(ValidationError, match=message):
        RuleDefinition.model_validate(body)


def test_rule_ids_do_not_clash_with_base_or_tier_lines():
    for bad in ("base", "tier:gold", ""):
        with pytest.raises(ValidationError):
            rule(bad)


# --- properties ----------------------------------------------------------------------------------------------

CATEGORIES = ("books", "food", "toys")
effects = st.one_of(
    st.builds(lambda n: {"points": n}, st.integers(1, 500)),
    st.builds(lambda n: {"points_per_unit": n}, st.integers(1, 50)),
    st.builds(lambda n: {"multiplier_bps": n}, st.integers(10_001, 50_000)),
    st.builds(lambda n: {"cashback_bps": n}, st.integers(1, 10_000)),
)
conditions = st.fixed_dictionaries({}, optional={
    "category": st.sampled_from(CATEGORIES),
    "min_amount": st.integers(0, 20_000),
    "weekdays": st.lists(st.sampled_from(("mon", "tue", "wed", "thu", "fri", "sat", "sun")), min_size=1,
                         max_size=7, unique=True),
    "tier": st.sampled_from(("gold", "bronze")),
})
limits = st.fixed_dictionaries({}, optional={
    "per_member_per_day": st.integers(1, 3),
    "per_member_lifetime": st.integers(1, 3),
    "budget_points": st.integers(1, 300),
})
rule_sets = st.lists(
    st.builds(lambda effect, cond, lim, priority, stackable: {
        "trigger": "purchase", "effect": effect, "conditions": cond, "limits": lim, "priority": priority,
        "stackable": stackable}, effects, conditions, limits, st.integers(-3, 3), st.booleans()),
    max_size=6,
).map(lambda bodies: [Rule.model_validate({"id": f"r{i}", "version": 1, "name": f"r{i}", **body})
                      for i, body in enumerate(bodies)])
lines = st.lists(st.builds(Line, amount=st.integers(0, 10_000), quantity=st.integers(1, 5),
                           sku=st.sampled_from(("a", "b")), category=st.sampled_from(CATEGORIES)), max_size=5)
purchases = st.builds(
    lambda ls, extra, day: PurchaseEvent(occurred_at=AT + timedelta(days=day), amount=sum(x.amount for x in ls) + extra,
                                         lines=tuple(ls)),
    lines, st.integers(0, 5_000), st.integers(0, 6))
members = st.builds(Member, tier=st.one_of(st.none(), st.sampled_from((Tier("gold", 15000), Tier("bronze")))))
counters = st.dictionaries(st.sampled_from([f"r{i}" for i in range(6)]),
                           st.builds(RuleCounters, today=st.integers(0, 3), period=st.integers(0, 3),
                                     lifetime=st.integers(0, 3), total_points=st.integers(0, 300)))
programs = st.builds(lambda earn, per, vp, vm: Program(id="p", name="P", currency="EUR", earn_points=earn,
                                                       earn_per_minor=per, value_points=vp, value_minor=vm),
                     st.integers(1, 5), st.integers(1, 500), st.integers(1, 300), st.integers(1, 300))


@settings(max_examples=150, deadline=None)
@given(programs, rule_sets, members, purchases, counters, st.randoms(use_true_random=False))
def test_breakdowns_add_up_are_never_negative_and_ignore_rule_order(program, rules, member, event, counts, random):
    breakdown = evaluate(program, rules, member, event, counts)
    assert breakdown.total == sum(line.points for line in breakdown.lines)
    assert all(isinstance(line.points, int) and line.points >= 0 for line in breakdown.lines)
    assert sum(line.points for line in breakdown.lines if line.rule_id == "base") == sum(
        program.points_for(x.amount) for x in event.lines) + program.points_for(
        event.amount - sum(x.amount for x in event.lines))
    shuffled = list(rules)
    random.shuffle(shuffled)
    assert evaluate(program, shuffled, member, event, dict(counts)) == breakdown
    for rule_id, paid in breakdown.paid().items():  # no rule pays beyond its budget
        budget = next(r for r in rules if r.id == rule_id).limits.budget_points
        if budget is not None:
            assert paid <= budget - counts.get(rule_id, RuleCounters()).total_points


@settings(max_examples=100, deadline=None)
@given(rule_sets, members, purchases, counters)
def test_a_rule_that_matches_nothing_changes_nothing(rules, member, event, counts):
    before = evaluate(EUR, rules, member, event, counts)
    strangers = [
        rule("zz1", conditions={"category": "garden"}, effect={"multiplier_bps": 90000}, priority=99, stackable=False),
        rule("zz2", trigger="activity", conditions={"activity_type": "review"}, priority=99, stackable=False),
        rule("zz3", starts_at=(event.occurred_at + timedelta(seconds=1)).isoformat(), priority=99, stackable=False),
        rule("zz4", conditions={"segment": "nobody"}, priority=99, stackable=False),
    ]
    assert evaluate(EUR, [*rules, *strangers], member, event, counts) == before


@settings(max_examples=100, deadline=None)
@given(rule_sets, members, purchases)
def test_a_rule_capped_at_nothing_pays_nothing(rules, member, event):
    spent = {r.id: RuleCounters(total_points=r.limits.budget_points or 0) for r in rules}
    capped = [r.model_copy(update={"limits": r.limits.model_copy(update={"per_member_lifetime": 1})}) for r in rules]
    used = {r.id: RuleCounters(lifetime=1) for r in rules}
    for rule_set, counts in ((capped, used), ([r for r in rules if r.limits.budget_points], spent)):
        breakdown = evaluate(EUR, rule_set, member, event, counts)
        assert breakdown.paid() == {}
        assert all(line.reason for line in breakdown.lines if line.rule_id.startswith("r"))
