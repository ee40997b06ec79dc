"""Paid membership, pure (``treue.core.memberships``): plans checked like tiers, period arithmetic at month ends
and in leap years, the states (start, renew, cancel, end) and the grant on the TIER item; the earning engine's
``membership:<plan>`` line; the tier a grant gives (``treue.logic.tiers.Standing``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from treue.core import memberships as m
from treue.core import tiers
from treue.core.programs import Program
from treue.logic.earning import Member, MembershipBenefit, PurchaseEvent, Tier, evaluate
from treue.logic.tiers import Standing

PLUS = {"id": "plus", "name": "Plus", "price": {"value": 999, "currency": "EUR"}, "period_months": 1,
        "tier": "gold", "welcome_points": 500, "earn_multiplier_bps": 12000}
TIERS = tiers.parse({"metric": "points", "period": {"type": "rolling", "months": 12},
                     "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                                {"id": "silver", "name": "Silver", "threshold": 500},
                                {"id": "gold", "name": "Gold", "threshold": 1000,
                                 "benefits": {"earn_multiplier_bps": 15000}}]})
T0 = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("start", "months", "end"), [
    ("2026-01-31T09:30:00", 1, "2026-02-28T09:30:00"),  # no 31 February: its last day
    ("2028-01-31T00:00:00", 1, "2028-02-29T00:00:00"),  # a leap year
    ("2026-01-31T00:00:00", 2, "2026-03-31T00:00:00"),  # counted from the start: the 31st again
    ("2024-02-29T12:00:00", 12, "2025-02-28T12:00:00"),
    ("2026-11-15T00:00:00", 3, "2027-02-15T00:00:00"),  # across the year
    ("2026-12-31T23:59:59", 1, "2027-01-31T23:59:59"),
])
def test_periods_end_on_the_same_day_or_the_month_s_last(start, months, end):
    assert m.period_end(at(start), months) == at(end)


def test_a_short_month_never_shifts_the_periods_after_it():
    plan = m.parse_plans([PLUS], ["bronze", "gold"])[0]
    state = m.started("msh_1", "mbr_1", plan, T0, "pay-1", T0)
    ends = [state["current_period_end"]]
    for n in range(2, 5):
        state = m.renewed(state, plan, f"pay-{n}", T0)
        ends.append(state["current_period_end"])
    assert ends == ["2026-02-28T09:30:00.000Z", "2026-03-31T09:30:00.000Z", "2026-04-30T09:30:00.000Z",
                    "2026-05-31T09:30:00.000Z"]
    assert [p["period_start"] for p in state["payments"]] == ["2026-01-31T09:30:00.000Z", *ends[:-1]]
    assert state["periods"] == 4 and state["months_paid"] == 4
    with pytest.raises(ValueError, match="at least one month"):
        m.period_end(T0, 0)


def test_a_renewal_at_a_new_length_counts_the_months_paid():
    plan = m.parse_plans([PLUS], ["gold"])[0]
    yearly = m.parse_plans([{**PLUS, "period_months": 12, "price": {"value": 9900, "currency": "EUR"}}], ["gold"])[0]
    state = m.renewed(m.started("msh_1", "mbr_1", plan, T0, "pay-1", T0), yearly, "pay-2", T0)
    assert state["current_period_end"] == "2027-02-28T09:30:00.000Z" and state["months_paid"] == 13
    assert state["payments"][-1]["amount"] == {"value": 9900, "currency": "EUR"}


def test_states_start_renew_cancel_end():
    plan = m.parse_plans([PLUS], ["gold"])[0]
    state = m.started("msh_1", "mbr_1", plan, T0, "pay-1", T0)
    end = m.parse(state["current_period_end"])
    assert m.status_at(state, T0) == m.ACTIVE and m.status_at(state, end - timedelta(microseconds=1)) == m.ACTIVE
    assert m.status_at(state, end) == m.ENDED  # ended at its end, before the daily run writes it
    canceled = m.canceled(state, T0 + timedelta(days=1))
    assert canceled["cancel_at_period_end"] is True and canceled["canceled_at"] == "2026-02-01T09:30:00.000Z"
    assert m.status_at(canceled, T0 + timedelta(days=2)) == m.ACTIVE  # benefits until the end
    assert m.canceled(canceled, T0 + timedelta(days=3)) == canceled  # canceling again changes nothing
    assert m.ended(canceled)["ended_reason"] == "canceled" and m.ended(state)["ended_reason"] == "lapsed"
    assert m.ended(state)["ended_at"] == state["current_period_end"] and m.ended(state)["status"] == m.ENDED
    renewed = m.renewed(canceled, plan, "pay-2", T0 + timedelta(days=2))
    assert renewed["cancel_at_period_end"] is False and renewed["canceled_at"] is None  # a renewal undoes it
    with pytest.raises(ValueError, match="ended"):
        m.renewed(state, plan, "pay-3", end)
    assert m.canceled(m.ended(state), end) == m.ended(state)


def test_plans_are_checked_and_name_the_field():
    assert m.parse_plans(None) == () and m.parse_plans([]) == ()
    (plan,) = m.parse_plans([{**PLUS, "welcome_points": None, "earn_multiplier_bps": None, "tier": None}])
    assert (plan.welcome_points, plan.earn_multiplier_bps, plan.tier) == (0, 10_000, None)
    assert plan.bonus_account_id == "membership:plus"
    cases = [
        ([{**PLUS, "id": "Plus!"}], "membership_plans[0].id"),
        ([{**PLUS, "period_months": 0}], "membership_plans[0].period_months"),
        ([{**PLUS, "period_months": 37}], "membership_plans[0].period_months"),
        ([{**PLUS, "price": {"value": -1, "currency": "EUR"}}], "membership_plans[0].price.value"),
        ([{**PLUS, "price": {"value": 1.5, "currency": "EUR"}}], "membership_plans[0].price.value"),
        ([{**PLUS, "price": {"value": 100, "currency": "eur"}}], "membership_plans[0].price.currency"),
        ([{**PLUS, "earn_multiplier_bps": 9999}], "membership_plans[0].earn_multiplier_bps"),
        ([{**PLUS, "welcome_points": True}], "membership_plans[0].welcome_points"),
        ([{**PLUS, "tier": "platinum"}], "membership_plans[0].tier"),
        ([{**PLUS, "extra": 1}], "membership_plans[0] has unknown fields"),
        ([PLUS, PLUS], "membership_plans: the ids must be unique"),
        ("plus", "membership_plans must be a list"),
    ]
    for data, message in cases:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            m.parse_plans(data, ["bronze", "gold"])
    with pytest.raises(ValueError, match="the program has no tiers"):
        Program(id="prg_1", name="Shop", currency="EUR", membership_plans=[PLUS])
    program = Program(id="prg_1", name="Shop", currency="EUR", tiers=TIERS.to_json(), membership_plans=[PLUS])
    assert program.plans()[0].tier == "gold"


def test_the_grant_gives_the_higher_tier_while_active():
    plan = m.parse_plans([PLUS], ["gold"])[0]
    state = m.started("msh_1", "mbr_1", plan, T0, "pay-1", T0)
    grant = m.grant_of(state)
    item = {"tier": "silver", "membership": grant.to_item()}
    assert m.active_grant(item, T0) == grant and m.active_grant(item, grant.until) is None
    assert m.active_grant(None, T0) is None and m.active_grant({"tier": "gold"}, T0) is None
    assert m.effective_tier(TIERS, item, T0) == "gold"
    assert m.effective_tier(TIERS, item, grant.until) == "silver"  # over: the level qualified for
    assert m.effective_tier(TIERS, {"membership": grant.to_item()}, T0) == "gold"  # no tier state yet
    silver_plan = m.Grant("msh_2", "basic", "silver", 10_000, grant.until)
    assert m.effective_level(TIERS, TIERS.level("gold"), silver_plan).id == "gold"  # never lower
    assert m.effective_tier(None, item, T0) is None


def test_standing_earns_at_the_granted_tier_with_the_plan_s_multiplier():
    plan = m.parse_plans([PLUS], ["gold"])[0]
    grant = m.grant_of(m.started("msh_1", "mbr_1", plan, T0, "pay-1", T0))
    standing = Standing(TIERS, TIERS.level("bronze"), 0, TIERS.window(T0), {}, grant)
    member = standing.member()
    assert member.tier == Tier("gold", 15000) and member.membership == MembershipBenefit("plus", 12000)
    assert Standing(TIERS, TIERS.level("bronze"), 0, TIERS.window(T0), {}).member().membership is None
    without_tiers = Standing(None, None, 0, None, None, grant).member()
    assert without_tiers.tier is None and without_tiers.membership == MembershipBenefit("plus", 12000)


def test_the_engine_adds_the_plan_s_multiplier_on_the_base_and_counts_it_as_no_rule():
    program = Program(id="prg_1", name="Shop", currency="EUR")
    event = PurchaseEvent(occurred_at=T0, amount=10_000)
    member = Member(tier=Tier("gold", 15000), membership=MembershipBenefit("plus", 12000))
    found = evaluate(program, [], member, event)
    assert [(line.rule_id, line.points) for line in found.lines] == [
        ("base", 100), ("tier:gold", 50), ("membership:plus", 20)]
    assert found.total == 170 and found.paid() == {}
    flat = evaluate(program, [], Member(membership=MembershipBenefit("basic", 10_000)), event)
    assert [line.rule_id for line in flat.lines] == ["base"]
