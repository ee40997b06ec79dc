"""The books balance after any mix of accruals, adjustments, fundings and orders with injected failures.

Orders run through the real payout state machine (moto executes infra/payout.asl.json); the
simulated provider fails chosen orders (rejected, out of stock, one 5xx then success) and small
budgets make others fail with insufficient_funds. Afterwards every unit of the trial balance sums to
zero, reconciliation lists no difference, and the audit chain verifies.
"""

import time

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import buy, call, purchase
from tests.integration.test_finance import fin, fund, new_program
from tests.integration.test_orders import enroll, order_body, place, wait
from treue import runtime
from treue.handlers import accrual
from treue.providers.simulated import set_fault

ITEMS = [  # (item id, face value)
    ("atelier-mode-eur", 2500),  # gift card, 1.5 % fee
    ("kaffeekranz-eur", 500),  # gift card, fixed fee
    ("kuestenwald", 300),  # donation
    ("voucher-5-off", None),  # voucher: draws no budget
]
FAULTS = [None, None, "rejected", "out_of_stock", "5xx"]

operation = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 2), st.integers(0, 400_000)),
    st.tuples(st.just("adjust"), st.integers(0, 2), st.integers(-3_000, 3_000).filter(bool)),
    st.tuples(st.just("fund"), st.integers(0, 0), st.integers(1, 4_000)),
    st.tuples(st.just("order"), st.integers(0, 2), st.tuples(st.integers(0, len(ITEMS) - 1),
                                                             st.sampled_from(FAULTS))),
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(opening=st.integers(0, 6_000), ops=st.lists(operation, min_size=1, max_size=14))
@example(opening=3_000, ops=[  # every failure kind at least once, whatever the generator draws
    ("earn", 0, 400_000), ("order", 0, (0, None)), ("order", 0, (0, "rejected")), ("order", 0, (1, "5xx")),
    ("order", 0, (2, "out_of_stock")), ("order", 0, (3, None)), ("fund", 0, 10), ("adjust", 1, 500),
    ("order", 1, (0, None)), ("order", 0, (1, "5xx")),
])
def test_random_mixes_keep_the_books_balanced_and_reconciled(payout, store, opening, ops):
    program = new_program(store, "Mix")
    if opening:
        fund(program, opening)
    partner = program["auth"]["partner"]
    members = []
    for i in range(3):
        status, body, _ = enroll(partner, {"external_id": f"m{i}"})
        assert status == 201
        members.append(body["id"])
        assert purchase(partner, body["id"], buy(f"welcome-{i}", 300_000))[0] == 200  # 3,000 points each
    placed = []
    for n, (kind, who, arg) in enumerate(ops):
        mid = members[who]
        if kind == "earn":
            assert purchase(partner, mid, buy(f"t{n}", arg))[0] == 200
        elif kind == "adjust":
            status, _, _ = call(accrual, "accrual/post_adjustment.json", program["auth"]["admin"],
                                path=f"/v1/members/{mid}/adjustments", path_parameters={"member_id": mid},
                                body={"points": arg, "reason": "property test", "reference": f"a{n}"})
            assert status in (200, 201, 422), status
        elif kind == "fund":
            assert fund(program, arg * 100)[0] == 201
        else:
            (index, fault) = arg
            item_id, value = ITEMS[index]
            key = f"order-{n}-{time.monotonic_ns()}"
            if fault:
                set_fault(store.ddb, store.table, program["program_id"], fault, order_reference=key,
                          times=1 if fault == "5xx" else None)
            status, body = place(program, order_body(mid, item_id, value, method="api"), key=key)
            assert status in (202, 422), body  # 422: not enough points
            if status == 202:
                placed.append(body["order_id"])
    finished = [wait(program, oid, timeout=60) for oid in placed]
    assert all(o["status"] in ("COMPLETED", "FAILED") for o in finished)
    for o in finished:
        event(f"order {o['status']} {o.get('failure_reason') or ''}".strip())

    status, report, _ = fin(program, "get_trial_balance")
    assert status == 200 and report["balanced"], report
    for day in {o["created_at"][:10] for o in finished} | {runtime.now()[:10]}:
        status, recon, _ = fin(program, "get_reconciliation", query={"date": day})
        assert status == 200
        assert recon["differences"] == [] and recon["in_flight"] == [], recon
    trail = runtime.audit_trail()
    trail.seal_program(program["program_id"])
    assert trail.verify(program["program_id"]).intact
