"""Points over time on moto: pending points, expiry buckets and runs, debt and its repayment (issue 17)."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from infra.twin.serialize import serialize_moto_dynamodb
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core import times
from treue.core.expiry import add_months
from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType
from treue.handlers import points_lifecycle
from treue.logic import lifecycle, members, points, provisioning
from treue.logic.models import Adjustment, Enrollment, Purchase
from treue.store.events import EventLog


def _program(store, **settings):
    created = provisioning.create_program(store, "Laden", "EUR", runtime.now(), **settings)
    return store.get_program(created["program_id"])


def _member(store, program, name="m"):
    return members.enroll(store, program.id, Enrollment(external_id=name, email=f"{name}@example.com"),
                          runtime.now())[0]["id"]


def _buy(store, program, mid, ref, euros, occurred: datetime, now: datetime | None = None):
    purchase = Purchase(transaction_id=ref, amount={"value": euros * 100, "currency": "EUR"},
                        occurred_at=times.iso(occurred))
    return points.accrue(store, program, mid, purchase, "partner:test", times.iso(now or datetime.now(UTC)))


def _spend(store, program, mid, ref, pts, now: datetime):
    return points.adjust(store, program, mid, Adjustment(points=-pts, reason="spent", reference=ref), "admin:test",
                         times.iso(now))


def _books(store, program_id):
    accounts = store.program_accounts(program_id)
    assert sum(accounts.values()) == 0
    return accounts


def _programs(program):
    return lambda pid: program


def test_pending_days_hold_recent_purchases_and_activation_makes_them_available_once(store):
    program = _program(store, pending_days=14)
    mid = _member(store, program)
    now = datetime.now(UTC)
    old = _buy(store, program, mid, "pos-old", 10, now - timedelta(days=20))
    assert old["balance"]["available"] == 10 and old["balance"]["pending"] == 0
    recent = _buy(store, program, mid, "pos-new", 30, now - timedelta(days=2))
    assert recent["available_at"].startswith((now + timedelta(days=12)).date().isoformat())
    assert recent["balance"]["available"] == 10 and recent["balance"]["pending"] == 30
    # the member cannot spend pending points
    with pytest.raises(Exception, match="fewer than 40"):
        _spend(store, program, mid, "spend-40", 40, now)
    # a read after the pending days counts them as available before any job ran
    later = now + timedelta(days=13)
    view = lifecycle.balance_view(store, program.id, mid, later)
    assert view["available"] == 40 and view["pending"] == 0
    assert store.balance_state(program.id, mid)["pending"] == 30  # nothing was posted by the read
    # the job activates them: one activation posting; a second run activates nothing
    ran = lifecycle.run_activation(store, _programs(program), later)
    assert ran["activated_points"] == 30 and ran["members"] == 1
    assert lifecycle.run_activation(store, _programs(program), later)["activated_points"] == 0
    balance = store.balance_state(program.id, mid)
    assert balance["available"] == 40 and balance["pending"] == 0
    accounts = _books(store, program.id)
    assert accounts.get("member:pending", 0) == 0 and accounts["member:available"] == 40
    entries, _ = store.list_entries(program.id, mid, 10, None)
    assert [e["type"] for e in entries].count("activation") == 1


def test_a_purchase_whose_points_have_expired_is_credited_and_expires_at_the_next_run(store):
    program = _program(store, expiry={"policy": "rolling", "months": 12})
    mid = _member(store, program)
    now = datetime.now(UTC)
    late = _buy(store, program, mid, "pos-13m", 50, now - timedelta(days=396))
    assert late["balance"]["available"] == 50
    fresh = _buy(store, program, mid, "pos-1m", 20, now - timedelta(days=30))
    assert fresh["balance"]["available"] == 70
    ran = lifecycle.run_expiry(store, _programs(program), now)
    assert ran["expired_points"] == 50 and ran["members"] == 1
    assert ran["expired"] == [{"program_id": program.id, "member_id": mid, "points": 50}]
    balance = points.balance(store, program.id, mid)
    assert balance["available"] == 20
    assert balance["expiring"] == [{"points": 20, "on": add_months((now - timedelta(days=30)).date(), 12).isoformat()}]
    accounts = _books(store, program.id)
    assert accounts["program:expired"] == 50
    # repeated the same day: nothing more; the past bucket is gone from the due index
    assert lifecycle.run_expiry(store, _programs(program), now)["expired_points"] == 0
    assert store.due_members("EXPIRY", now.date().isoformat()) == []
    assert _books(store, program.id)["program:expired"] == 50


def test_spending_takes_the_earliest_expiring_points_first(store):
    program = _program(store, expiry={"policy": "rolling", "months": 12})
    mid = _member(store, program)
    now = datetime.now(UTC)
    _buy(store, program, mid, "pos-a", 100, now - timedelta(days=330))  # expires in about a month
    _buy(store, program, mid, "pos-b", 100, now - timedelta(days=30))  # expires in about eleven months
    _spend(store, program, mid, "spend-100", 100, now)
    # two months on: what was left of the first purchase was spent, so nothing expires
    assert lifecycle.run_expiry(store, _programs(program), now + timedelta(days=60))["expired_points"] == 0
    assert store.get_balance(program.id, mid)["available"] == 100
    # a year on: the second purchase's 100 expire
    assert lifecycle.run_expiry(store, _programs(program), now + timedelta(days=340))["expired_points"] == 100
    assert store.get_balance(program.id, mid)["available"] == 0


def test_expiring_lists_the_next_dates_and_the_notice_is_written_once(store):
    program = _program(store, expiry={"policy": "rolling", "months": 12}, expiry_notice_days=30)
    mid = _member(store, program)
    now = datetime.now(UTC)
    first = now - timedelta(days=340)  # expires in 25 or 26 days
    _buy(store, program, mid, "pos-1", 40, first)
    _buy(store, program, mid, "pos-2", 60, now - timedelta(days=100))
    _spend(store, program, mid, "spend-10", 10, now)
    on_first = add_months(first.date(), 12)
    balance = points.balance(store, program.id, mid)
    assert balance["expiring"][0] == {"points": 30, "on": on_first.isoformat()}
    assert balance["expiring"][1]["points"] == 60
    # the notice goes out when the date is expiry_notice_days away (two days' grace), once
    run_day = datetime.combine(on_first - timedelta(days=30), datetime.min.time(), UTC) + timedelta(hours=1)
    assert lifecycle.run_expiry(store, _programs(program), run_day)["announced"] == 1
    assert lifecycle.run_expiry(store, _programs(program), run_day + timedelta(days=1))["announced"] == 0
    found, _ = EventLog(store).page(program.id, None, {"points.expiring"}, 100,
                                    times.iso(datetime.now(UTC) + timedelta(minutes=5)))
    assert [(e.data["points"], e.data["on"]) for e in found] == [(30, on_first.isoformat())]


def test_concurrent_expiry_runs_expire_nothing_twice(store):
    serialize_moto_dynamodb()
    program = _program(store, expiry={"policy": "rolling", "months": 12})
    now = datetime.now(UTC)
    mids = [_member(store, program, f"m{i}") for i in range(4)]
    for i, mid in enumerate(mids):
        _buy(store, program, mid, f"pos-{i}", 10 + i, now - timedelta(days=400))
    with ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(lambda _: lifecycle.run_expiry(store, _programs(program), now), range(6)))
    assert sum(r["expired_points"] for r in runs) == 10 + 11 + 12 + 13
    assert _books(store, program.id)["program:expired"] == 46
    for mid in mids:
        assert store.get_balance(program.id, mid)["available"] == 0


def test_debt_is_repaid_first_from_the_next_purchase(store):
    program = _program(store)
    mid = _member(store, program)
    now = datetime.now(UTC)
    _buy(store, program, mid, "pos-1", 100, now - timedelta(days=1))
    _spend(store, program, mid, "spend-80", 80, now)
    # a return takes back 100 points: 20 from available, 80 owed (the reversal postings a return writes)
    stamp = times.iso(now)
    take = Posting(id=new_id("pst"), program_id=program.id, member_id=mid, type=PostingType.REVERSAL,
                   debit=Account.MEMBER_AVAILABLE, credit=Account.PROGRAM_ISSUED, points=20, reference="ret-1",
                   reason="return", actor="partner:test", created_at=stamp)
    owe = Posting(id=new_id("pst"), program_id=program.id, member_id=mid, type=PostingType.REVERSAL,
                  debit=Account.MEMBER_DEBT, credit=Account.PROGRAM_ISSUED, points=80, reference="ret-1",
                  reason="return", actor="partner:test", created_at=stamp)
    store.post(program.id, mid, ("return", "ret-1", "fp"), {}, take, stamp, more=[owe])
    balance = points.balance(store, program.id, mid)
    assert balance["available"] == 0 and balance["debt"] == 80 and balance["lifetime_earned"] == 0
    assert _books(store, program.id)["member:debt"] == -80
    paid = _buy(store, program, mid, "pos-2", 50, now)
    assert paid["balance"]["available"] == 0 and paid["balance"]["debt"] == 30
    paid = _buy(store, program, mid, "pos-3", 50, now)
    assert paid["balance"]["available"] == 20 and paid["balance"]["debt"] == 0
    accounts = _books(store, program.id)
    assert accounts["member:debt"] == 0 and accounts["member:available"] == 20


def _scheduled(name: str, at: datetime) -> dict:
    event = load_event(f"points_lifecycle/{name}.json")
    event["time"] = times.iso(at)
    return event


def test_the_scheduled_functions_activate_and_expire_as_their_roles_allow(store):
    """The handlers run as their functions (the permission evaluator checks every call against the template's
    policies: TransactWriteItems' Put/Update/Delete, BatchWriteItem's deletes)."""
    program = _program(store, pending_days=5, expiry={"policy": "rolling", "months": 1})
    mid = _member(store, program)
    now = datetime.now(UTC)
    _buy(store, program, mid, "pos-old", 12, now - timedelta(days=45))  # expired a fortnight ago
    _buy(store, program, mid, "pos-new", 30, now - timedelta(days=1))  # pending for four more days
    done = points_lifecycle.expire(_scheduled("expire", now), LambdaContext())
    assert done["expired_points"] == 12 and done["job"] == "expire-points"
    assert points_lifecycle.activate(_scheduled("activate", now), LambdaContext())["activated_points"] == 0
    done = points_lifecycle.activate(_scheduled("activate", now + timedelta(days=4, hours=1)), LambdaContext())
    assert done["activated_points"] == 30
    balance = points.balance(store, program.id, mid)
    assert (balance["available"], balance["pending"]) == (30, 0)


def test_an_order_spends_pending_points_whose_time_has_come_before_any_job_ran(shop, store):
    """The balance counts due pending points as available; an order activates them first and holds them."""
    from tests.integration.test_orders import order_body, place, wait
    from treue.logic import program as settings
    from treue.logic.settings import ProgramPatch

    pid = shop["program_id"]
    settings.change(runtime.programs(), pid, ProgramPatch(pending_days=10), None, "admin:test", runtime.now())
    runtime.reset()
    program = store.get_program(pid)
    mid = _member(store, program, "pending-spender")
    then = datetime.now(UTC) - timedelta(days=11)
    _buy(store, program, mid, "pos-then", 3000, then, now=then)  # pending until yesterday; no job has run
    assert store.balance_state(pid, mid)["pending"] == 3000
    assert points.balance(store, pid, mid)["available"] == 3000
    status, accepted = place(shop, order_body(mid, "nordlicht-books-eur", 2500))
    assert status == 202, accepted
    assert wait(shop, accepted["order_id"])["status"] == "COMPLETED"
    state = store.balance_state(pid, mid)
    assert (state["available"], state["pending"], state["lifetime_redeemed"]) == (500, 0, 2500)
    _books(store, pid)


def test_finance_sees_expired_reversed_pending_and_owed_points(program, store):
    """KPIs count expired and reversed points (each rule's cost net of returns); the liability shows pending
    points in what is owed and members' debt beside it; the reconciliation finds the balances add up."""
    from tests.integration.helpers import call
    from treue.handlers import finance
    from treue.logic import program as settings
    from treue.logic.returns import ReturnRequest, record_return
    from treue.logic.settings import ProgramPatch

    pid, auth = program["program_id"], program["auth"]["finance"]
    settings.change(runtime.programs(), pid, ProgramPatch(pending_days=7, expiry={"policy": "rolling", "months": 12}),
                    None, "admin:test", runtime.now())
    runtime.reset()
    shop = store.get_program(pid)
    ada, bob = _member(store, shop, "ada"), _member(store, shop, "bob")
    now = datetime.now(UTC)
    _buy(store, shop, ada, "ada-old", 40, now - timedelta(days=400))  # expires at the run
    _buy(store, shop, ada, "ada-new", 25, now - timedelta(days=1))  # pending
    _buy(store, shop, bob, "bob-1", 100, now - timedelta(days=30))
    _spend(store, shop, bob, "bob-spend", 90, now)
    lifecycle.run_expiry(store, _programs(shop), now)
    back = ReturnRequest.model_validate({"return_id": "r-1", "transaction_id": "bob-1", "occurred_at": times.iso(now),
                                         "amount": {"value": 10_000, "currency": "EUR"}})
    assert record_return(store, shop, bob, back, "partner:test", times.iso(now))["points_reversed"] == 100
    today = now.date().isoformat()
    status, kpis, _ = call(finance, "finance/get_kpis.json", auth, query={"from": today, "to": today})
    assert status == 200, kpis
    assert (kpis["points_expired"], kpis["points_reversed"], kpis["points_earned"]) == (40, 100, 165)
    status, owed, _ = call(finance, "finance/get_liability.json", auth)
    assert status == 200, owed
    assert owed["points"] == {"available": 0, "held": 0, "pending": 25, "outstanding": 25, "debt": 90}
    status, report, _ = call(finance, "finance/get_reconciliation.json", auth, query={"date": today})
    assert status == 200 and report["differences"] == [], report


def test_one_activation_run_repays_the_debt_of_every_member_it_activates(store):
    """The run activates all members at one time: each member's repayment is its own (the second member's
    repayment was taken for a replay of the first's and their debt stayed while their points became available)."""
    from treue.logic.returns import ReturnRequest, record_return

    program = _program(store, pending_days=14)
    now = datetime.now(UTC)
    mids = [_member(store, program, f"owes{i}") for i in range(3)]
    for i, mid in enumerate(mids):
        _buy(store, program, mid, f"pos-old-{i}", 100, now - timedelta(days=20))
        _spend(store, program, mid, f"spend-{i}", 80, now)
        back = ReturnRequest.model_validate({"return_id": f"r-{i}", "transaction_id": f"pos-old-{i}",
                                             "occurred_at": times.iso(now),
                                             "amount": {"value": 10_000, "currency": "EUR"}})
        record_return(store, program, mid, back, "partner:test", times.iso(now))
        _buy(store, program, mid, f"pos-new-{i}", 50, now - timedelta(days=2))
        state = store.balance_state(program.id, mid)
        assert (state["available"], state["pending"], state["debt"]) == (0, 50, 80)
    ran = lifecycle.run_activation(store, _programs(program), now + timedelta(days=13))
    assert ran["activated_points"] == 150 and ran["members"] == 3
    for mid in mids:
        state = store.balance_state(program.id, mid)
        assert (state["available"], state["pending"], state["debt"]) == (0, 0, 30), mid
    accounts = _books(store, program.id)
    assert accounts["member:debt"] == -90 and accounts.get("member:available", 0) == 0


def test_the_hourly_expiry_run_announces_only_in_the_first_hour_of_the_day(store):
    program = _program(store, expiry={"policy": "rolling", "months": 12}, expiry_notice_days=30)
    mid = _member(store, program, "noticed")
    now = datetime.now(UTC)
    earned = now - timedelta(days=340)
    _buy(store, program, mid, "pos-soon", 20, earned)
    on = add_months(earned.date(), 12)
    day = datetime.combine(on - timedelta(days=30), datetime.min.time(), UTC)
    assert points_lifecycle.expire(_scheduled("expire", day + timedelta(hours=13)), LambdaContext())["announced"] == 0
    assert points_lifecycle.expire(_scheduled("expire", day + timedelta(minutes=5)), LambdaContext())["announced"] == 1
    found, _ = EventLog(store).page(program.id, None, {"points.expiring"}, 100,
                                    times.iso(datetime.now(UTC) + timedelta(minutes=5)))
    assert [(e.data["member_id"], e.data["points"], e.data["on"]) for e in found] == [(mid, 20, on.isoformat())]


def test_a_balance_read_counts_due_pending_points_as_the_activation_will_post_them_debt_first(store):
    """Due pending points count as available before the job runs; with debt they pay it back first, as the
    activation does (the read showed them all as available beside the unchanged debt: points the member could
    not spend)."""
    from treue.logic.returns import ReturnRequest, record_return

    program = _program(store, pending_days=14)
    now = datetime.now(UTC)
    mid = _member(store, program, "owes")
    _buy(store, program, mid, "pos-old", 100, now - timedelta(days=20))
    _spend(store, program, mid, "spend", 80, now)
    back = ReturnRequest.model_validate({"return_id": "r-1", "transaction_id": "pos-old",
                                         "occurred_at": times.iso(now), "amount": {"value": 10_000, "currency": "EUR"}})
    record_return(store, program, mid, back, "partner:test", times.iso(now))
    _buy(store, program, mid, "pos-new", 50, now - timedelta(days=2))
    later = now + timedelta(days=13)
    view = lifecycle.balance_view(store, program.id, mid, later)
    lifecycle.run_activation(store, _programs(program), later)
    after = lifecycle.balance_view(store, program.id, mid, later)
    assert (after["available"], after["pending"], after["debt"]) == (0, 0, 30)
    assert view == after


def test_a_membership_s_welcome_points_pay_back_the_member_s_debt_first(program, store):
    """Welcome points are new points: like a purchase's, an award's or an activation's they repay debt first (they
    were credited beside the debt, which stayed until some later credit). The handler runs as the Memberships
    function's role."""
    from tests.integration.test_memberships import PLUS, TIERS, patch, start
    from treue.logic.returns import ReturnRequest, record_return

    pid = program["program_id"]
    assert patch(program, {"tiers": TIERS, "membership_plans": [PLUS]})[0] == 200
    runtime.reset()
    shop = store.get_program(pid)
    mid = _member(store, shop, "owes")
    now = datetime.now(UTC)
    _buy(store, shop, mid, "pos-1", 100, now - timedelta(days=1))
    _spend(store, shop, mid, "spend-80", 80, now)
    back = ReturnRequest.model_validate({"return_id": "r-1", "transaction_id": "pos-1", "occurred_at": times.iso(now),
                                         "amount": {"value": 10_000, "currency": "EUR"}})
    record_return(store, shop, mid, back, "partner:test", times.iso(now))
    assert store.balance_state(pid, mid)["debt"] == 80
    status, answer, _ = start(program, mid, {"plan_id": "plus", "payment_reference": "psp-owes"})
    assert status == 201, answer
    state = store.balance_state(pid, mid)
    assert (state["available"], state["debt"]) == (420, 0)
    assert start(program, mid, {"plan_id": "plus", "payment_reference": "psp-owes"})[0] == 200  # a replay
    assert store.balance_state(pid, mid)["available"] == 420
    accounts = _books(store, pid)
    assert accounts["member:debt"] == 0 and accounts["member:available"] == 420


def test_a_late_purchase_credited_after_the_day_s_run_expires_at_the_next_day_s(store):
    """The hourly runs after a member's expiry of the day replay it; they leave the buckets a late purchase
    credited meanwhile to the next day's run (they dropped them: the member left the due index and the late
    purchase's expired points stayed available, listed as expiring yesterday, until another bucket passed)."""
    program = _program(store, expiry={"policy": "rolling", "months": 12})
    mid = _member(store, program)
    now = datetime.now(UTC).replace(hour=1)
    _buy(store, program, mid, "pos-keep", 20, now - timedelta(days=30))
    _buy(store, program, mid, "pos-old", 50, now - timedelta(days=400))
    assert lifecycle.run_expiry(store, _programs(program), now)["expired_points"] == 50
    _buy(store, program, mid, "pos-late", 30, now - timedelta(days=396))  # reported after the run: expired too
    assert lifecycle.run_expiry(store, _programs(program), now + timedelta(hours=1))["expired_points"] == 0
    assert lifecycle.run_expiry(store, _programs(program), now + timedelta(days=1))["expired_points"] == 30
    assert store.balance_state(program.id, mid)["available"] == 20
    assert _books(store, program.id)["program:expired"] == 80


def test_points_held_when_their_date_passed_expire_at_the_next_run_after_their_release(store):
    """Held points do not expire; released, they expire at the next run (README, Expiry). The run that found them
    held dropped their bucket, so the member left the due index and the released points never expired (shown as
    expiring yesterday) until another of the member's buckets passed."""
    program = _program(store, expiry={"policy": "rolling", "months": 12})
    mid = _member(store, program)
    now = datetime.now(UTC)
    _buy(store, program, mid, "pos-old", 50, now - timedelta(days=360))  # expires in about five days
    _buy(store, program, mid, "pos-new", 20, now - timedelta(days=30))

    def move(kind, debit, credit, at):
        posting = Posting(id=new_id("pst"), program_id=program.id, member_id=mid, type=kind, debit=debit,
                          credit=credit, points=50, reference="ord-1", reason="order ord-1", actor="system:test",
                          created_at=times.iso(at), metadata={"order_id": "ord-1"})
        store.post(program.id, mid, (str(kind), "ord-1", "fp"), {}, posting, times.iso(at))

    move(PostingType.HOLD, Account.MEMBER_AVAILABLE, Account.MEMBER_HELD, now)
    week = now + timedelta(days=7)
    assert lifecycle.run_expiry(store, _programs(program), week)["expired_points"] == 0  # held: nothing expires
    move(PostingType.RELEASE, Account.MEMBER_HELD, Account.MEMBER_AVAILABLE, week)  # the order failed
    assert points.balance(store, program.id, mid)["available"] == 70
    assert lifecycle.run_expiry(store, _programs(program), week + timedelta(hours=1))["expired_points"] == 50
    state = store.balance_state(program.id, mid)
    assert (state["available"], state["held"]) == (20, 0)
    assert _books(store, program.id)["program:expired"] == 50


def test_with_expiry_removed_the_balance_lists_nothing_as_expiring(program, store):
    """README: with ``expiry`` removed the run expires nothing, so the balance lists no dates (it listed the
    points' old dates as expiring, and the run let those dates pass)."""
    from tests.integration.helpers import member_call
    from treue.handlers import accrual
    from treue.logic import program as settings
    from treue.logic.settings import ProgramPatch

    pid, auth = program["program_id"], program["auth"]["partner"]
    settings.change(runtime.programs(), pid, ProgramPatch(expiry={"policy": "rolling", "months": 12}), None,
                    "admin:test", runtime.now())
    runtime.reset()
    shop = store.get_program(pid)
    mid = _member(store, shop, "keeps")
    now = datetime.now(UTC)
    _buy(store, shop, mid, "pos-1", 50, now - timedelta(days=30))
    status, balance, _ = member_call(accrual, "accrual/get_balance.json", auth, mid, "/balance")
    assert status == 200 and balance["expiring"][0]["points"] == 50, balance
    settings.change(runtime.programs(), pid, ProgramPatch(expiry=None), None, "admin:test", runtime.now())
    runtime.reset()
    shop = store.get_program(pid)
    status, balance, _ = member_call(accrual, "accrual/get_balance.json", auth, mid, "/balance")
    assert status == 200 and balance["available"] == 50 and balance["expiring"] == [], balance
    assert _buy(store, shop, mid, "pos-2", 10, now)["balance"]["expiring"] == []
    assert lifecycle.run_expiry(store, _programs(shop), now + timedelta(days=400))["expired_points"] == 0
