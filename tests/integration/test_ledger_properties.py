"""Ledger invariants under random sequences, concurrency and duplicate delivery."""

from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.twin.serialize import serialize_moto_dynamodb
from treue import runtime
from treue.errors import IdempotencyConflict, InsufficientPoints
from treue.logic import members, points, provisioning
from treue.logic.models import Adjustment, Enrollment, Purchase

operation = st.one_of(
    st.tuples(st.just("purchase"), st.integers(0, 3), st.integers(0, 5), st.integers(0, 100_000)),
    st.tuples(st.just("adjust"), st.integers(0, 3), st.integers(0, 5), st.integers(-2_000, 2_000).filter(bool)),
)


def program_total(store, program_id, member_ids):
    """Sum of all account totals; the member totals must also equal the members' own balances."""
    accounts = store.program_accounts(program_id)
    available = held = 0
    for mid in member_ids:
        b = store.get_balance(program_id, mid)
        assert b["available"] >= 0 and b["held"] >= 0
        available, held = available + b["available"], held + b["held"]
    assert accounts.get("member:available", 0) == available
    assert accounts.get("member:held", 0) == held
    return sum(accounts.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_random_accruals_adjustments_and_replays_keep_the_books_at_zero(aws, ops):
    store = runtime.store()
    now = runtime.now()
    program = store.get_program(provisioning.create_program(store, "P", "EUR", now)["program_id"])
    ids = [members.enroll(store, program.id, Enrollment(external_id=f"m{i}"), now)[0]["id"] for i in range(4)]
    expected = dict.fromkeys(ids, 0)
    first_use: dict[str, tuple] = {}
    for kind, who, ref, amount in ops:
        mid = ids[who]
        reference = f"{kind}-{ref}"
        request = (mid, amount)
        try:
            if kind == "purchase":
                purchase = Purchase(transaction_id=reference, amount={"value": amount, "currency": "EUR"},
                                    occurred_at="2026-11-01T00:00:00Z")
                points.accrue(store, program, mid, purchase, "test", now)
                gained = program.points_for(amount)
            else:
                points.adjust(store, program, mid, Adjustment(points=amount, reason="test", reference=reference),
                              "test", now)
                gained = amount
        except IdempotencyConflict:
            assert reference in first_use and first_use[reference] != request
            continue
        except InsufficientPoints:
            assert kind == "adjust" and expected[mid] + amount < 0 and reference not in first_use
            continue
        if reference in first_use:
            assert first_use[reference] == request  # a replay: nothing changes
            continue
        first_use[reference] = request
        expected[mid] += gained
    assert program_total(store, program.id, ids) == 0
    for mid in ids:
        assert store.get_balance(program.id, mid)["available"] == expected[mid]


def test_fifty_concurrent_accruals_for_one_member_add_up_exactly(aws):
    serialize_moto_dynamodb()
    store = runtime.store()
    now = runtime.now()
    program = store.get_program(provisioning.create_program(store, "P", "EUR", now)["program_id"])
    mid = members.enroll(store, program.id, Enrollment(email="a@example.com"), now)[0]["id"]

    def accrue(i):
        purchase = Purchase(transaction_id=f"c-{i}", amount={"value": 100 * (i + 1), "currency": "EUR"},
                            occurred_at="2026-11-01T00:00:00Z")
        return points.accrue(store, program, mid, purchase, "test", now)["points_earned"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        earned = list(pool.map(accrue, range(50)))
        replays = list(pool.map(accrue, range(50)))
    assert earned == replays == [i + 1 for i in range(50)]
    b = store.get_balance(program.id, mid)
    assert b["available"] == b["lifetime_earned"] == sum(range(1, 51))
    assert program_total(store, program.id, [mid]) == 0
    entries, _ = store.list_entries(program.id, mid, 100, None)
    assert len(entries) == 50
