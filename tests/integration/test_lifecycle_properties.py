"""Random sequences of earn (backdated), spend, return, expiry runs and activation on moto keep the books (issue 17).

Two properties:
- purchases reported as they happen, against an explicit model of lots spent earliest-expiring first: every
  expiry run expires exactly what the model's passed lots still hold, and the balance always equals the model's;
- purchases reported late (up to two years back), pending days on, partial returns (from pending, available or
  as debt): every unit of the trial balance is 0, ``available`` and ``debt`` are never negative, no point whose
  date has passed survives a run, and a run repeated the same day expires nothing.
"""

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treue import runtime
from treue.core import times
from treue.core.expiry import Policy
from treue.errors import InsufficientPoints
from treue.logic import lifecycle, members, points, provisioning
from treue.logic.models import Adjustment, Enrollment, Purchase
from treue.logic.returns import ReturnRequest, record_return

POLICY = {"policy": "rolling", "months": 3}


def _setup(**settings_):
    store = runtime.store()
    created = provisioning.create_program(store, "P", "EUR", runtime.now(), expiry=POLICY, **settings_)
    program = store.get_program(created["program_id"])
    mid = members.enroll(store, program.id, Enrollment(external_id="m"), runtime.now())[0]["id"]
    return store, program, mid


def _books_at_zero(store, program_id):
    accounts = store.program_accounts(program_id)
    assert sum(accounts.values()) == 0, accounts
    return accounts


step = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 400), st.just(0)),  # euros
    st.tuples(st.just("spend"), st.integers(1, 300), st.just(0)),
    st.tuples(st.just("wait"), st.integers(1, 70), st.just(0)),  # days on, then the day's expiry run
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(step, min_size=1, max_size=18))
def test_expiry_runs_expire_what_is_left_of_the_earliest_lots(aws, ops):
    store, program, mid = _setup()
    policy = Policy("rolling", 3)
    clock = datetime.now(UTC) - timedelta(days=650)
    lots: list[list] = []  # [expires_on, points left], the model: spending takes the earliest first
    for i, (kind, amount, _) in enumerate(ops):
        stamp = times.iso(clock)
        if kind == "earn":  # reported as it happens: the lot joins at the end of the expiry order or before
            purchase = Purchase(transaction_id=f"t{i}", amount={"value": amount * 100, "currency": "EUR"},
                                occurred_at=stamp)
            points.accrue(store, program, mid, purchase, "test", stamp)
            lots.append([policy.expires_on(clock), amount])
        elif kind == "spend":
            have = sum(left for _, left in lots)
            try:
                points.adjust(store, program, mid, Adjustment(points=-amount, reason="spend", reference=f"s{i}"),
                              "test", stamp)
            except InsufficientPoints:
                assert amount > have
                continue
            assert amount <= have
            for lot in sorted(lots, key=lambda lot: lot[0]):
                take = min(lot[1], amount)
                lot[1] -= take
                amount -= take
        else:
            clock += timedelta(days=amount)
            today = clock.date()
            expected = sum(left for on, left in lots if on < today)
            ran = lifecycle.run_expiry(store, lambda _: program, clock, program_id=program.id)
            assert ran["expired_points"] == expected
            lots = [lot for lot in lots if lot[0] >= today]
            assert lifecycle.run_expiry(store, lambda _: program, clock)["expired_points"] == 0  # once a day
        balance = store.get_balance(program.id, mid)
        assert balance["available"] == sum(left for _, left in lots) >= 0
        _books_at_zero(store, program.id)


late_step = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 300), st.integers(0, 400)),  # euros, days before the clock
    st.tuples(st.just("spend"), st.integers(1, 300), st.just(0)),
    st.tuples(st.just("wait"), st.integers(1, 60), st.just(0)),
    st.tuples(st.just("activate"), st.just(0), st.just(0)),
    st.tuples(st.just("return"), st.integers(1, 100), st.integers(0, 50)),  # percent of what is left, which purchase
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(late_step, min_size=1, max_size=18))
def test_late_purchases_returns_pending_days_spending_and_runs_keep_every_invariant(aws, ops):
    store, program, mid = _setup(pending_days=10)
    policy = Policy("rolling", 3)
    start = datetime.now(UTC) - timedelta(days=300)
    clock = start
    credited: dict[date, int] = {}  # every lot by expiry date, pending or not, net of returns
    bought: list[list] = []  # [transaction id, its expiry date, minor units not returned yet]
    for i, (kind, amount, back) in enumerate(ops):
        stamp = times.iso(clock)
        if kind == "earn":
            occurred = max(clock - timedelta(days=back), datetime.now(UTC) - timedelta(days=700))
            purchase = Purchase(transaction_id=f"t{i}", amount={"value": amount * 100, "currency": "EUR"},
                                occurred_at=times.iso(occurred))
            points.accrue(store, program, mid, purchase, "test", stamp)
            on = policy.expires_on(occurred)
            credited[on] = credited.get(on, 0) + amount
            bought.append([f"t{i}", on, amount * 100])
        elif kind == "return":
            if not bought or not bought[back % len(bought)][2]:
                continue
            txn, on, left = bought[back % len(bought)]
            value = max(1, left * amount // 100)
            request = ReturnRequest.model_validate({"return_id": f"r{i}", "transaction_id": txn,
                                                    "amount": {"value": value, "currency": "EUR"},
                                                    "occurred_at": stamp})
            reversed_ = record_return(store, program, mid, request, "test", stamp)["points_reversed"]
            bought[back % len(bought)][2] -= value
            credited[on] -= reversed_
        elif kind == "spend":
            try:
                points.adjust(store, program, mid, Adjustment(points=-amount, reason="spend", reference=f"s{i}"),
                              "test", stamp)
            except InsufficientPoints:
                assert amount > store.get_balance(program.id, mid)["available"]
        elif kind == "activate":
            lifecycle.run_activation(store, lambda _: program, clock, program_id=program.id)
        else:
            clock += timedelta(days=amount)
            lifecycle.run_activation(store, lambda _: program, clock)
            lifecycle.run_expiry(store, lambda _: program, clock)
            today = clock.date()
            view = lifecycle.balance_view(store, program.id, mid, clock)
            # no point whose date has passed is left: the available points fit in the lots of today and later
            assert view["available"] <= sum(p for on, p in credited.items() if on >= today)
            assert all(date.fromisoformat(e["on"]) >= today for e in view["expiring"])
            assert lifecycle.run_expiry(store, lambda _: program, clock)["expired_points"] == 0
        state = store.balance_state(program.id, mid)
        assert state["available"] >= 0 and state["pending"] >= 0 and state["debt"] >= 0 and state["held"] == 0
        accounts = _books_at_zero(store, program.id)
        assert accounts.get("member:available", 0) == state["available"]
        assert accounts.get("member:pending", 0) == state["pending"]
        assert accounts.get("member:debt", 0) == -state["debt"]
        assert state["lifetime_earned"] == sum(credited.values())
        assert state["available"] + state["pending"] - state["debt"] == (
            sum(credited.values()) - accounts.get("program:adjustments", 0) - accounts.get("program:expired", 0))
