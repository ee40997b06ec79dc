"""Finance through the handlers: budget and fundings, the workflow's draws, reports, CSV, audit trail."""

import csv
import io
import time

import pytest

from tests.integration.helpers import call, events_of
from tests.integration.test_orders import balance, member_with, order_body, place, wait
from tests.support import LambdaContext, api_event, body_of
from treue import runtime
from treue.core import keys
from treue.handlers import finance, orders
from treue.logic import finance as finance_logic
from treue.logic import provisioning
from treue.providers.simulated import set_fault
from treue.routes import of_function
from treue.store.audit import AuditStore
from treue.store.items import from_item, to_item

TODAY = lambda: runtime.now()[:10]  # noqa: E731


def fin(shop, sample, scope="finance", **kw):
    return call(finance, f"finance/{sample}.json", shop["auth"][scope], **kw)


def fin_csv(shop, sample, scope="finance", query=None):
    event = api_event(f"finance/{sample}.json", auth=shop["auth"][scope], query=query,
                      headers={"Accept": "text/csv"})
    response = finance.handler(event, LambdaContext())
    return response["statusCode"], response


def fund(shop, value, currency="EUR", key=None, reference="bank-1", scope="admin"):
    event = api_event("finance/post_funding.json", auth=shop["auth"][scope],
                      body={"amount": {"value": value, "currency": currency}, "reference": reference},
                      headers={"Idempotency-Key": key or f"f-{time.monotonic_ns()}"})
    response = finance.handler(event, LambdaContext())
    return response["statusCode"], body_of(response)


def budget_of(shop, currency="EUR"):
    status, body, _ = fin(shop, "get_budget", query={"currency": currency})
    assert status == 200, body
    return next((b for b in body["budgets"] if b["currency"] == currency), None), body["movements"]


def reconciliation(shop):
    status, body, _ = fin(shop, "get_reconciliation", query={"date": TODAY()})
    assert status == 200, body
    return body


def trial(shop):
    status, body, _ = fin(shop, "get_trial_balance")
    assert status == 200, body
    return body


def new_program(payout_fixture_store, name="Other", **settings):
    created = provisioning.create_program(payout_fixture_store, name, "EUR", runtime.now(), country="DE", **settings)
    auth = {}
    for scope, key in created["api_keys"].items():
        key_id, _ = keys.parse(key)
        auth[scope] = {"program_id": created["program_id"], "key_id": key_id, "scope": scope}
    return {**created, "auth": auth}


# ---------------------------------------------------------------- fundings and budget


def test_an_admin_funds_the_budget_once_per_idempotency_key(shop):
    before, _ = budget_of(shop)
    status, body = fund(shop, 250_000, key="topup-1", reference="bank-77")
    assert status == 201 and body["amount"] == {"value": 250_000, "currency": "EUR"} and not body["replayed"]
    again_status, again = fund(shop, 250_000, key="topup-1", reference="bank-77")
    assert again_status == 200 and again["replayed"] and again["funding_id"] == body["funding_id"]
    conflict_status, conflict = fund(shop, 999, key="topup-1", reference="bank-77")
    assert conflict_status == 409 and conflict["type"].endswith("idempotency-conflict")
    after, movements = budget_of(shop)
    assert after["available"] == before["available"] + 250_000
    assert after["funded"] == before["funded"] + 250_000
    assert movements[0]["id"] == body["funding_id"] and movements[0]["type"] == "funding"


def test_a_funding_needs_an_admin_key_a_positive_amount_and_an_idempotency_key(shop):
    assert fund(shop, 100, scope="finance")[0] == 403
    assert fund(shop, 100, scope="partner")[0] == 403
    status, body = fund(shop, 0)
    assert status == 422 and "positive" in body["detail"]
    event = api_event("finance/post_funding.json", auth=shop["auth"]["admin"])
    event["headers"].pop("Idempotency-Key")
    response = finance.handler(event, LambdaContext())
    assert response["statusCode"] == 400 and "Idempotency-Key" in body_of(response)["detail"]


def test_a_gift_card_draws_face_value_and_fee_and_the_books_reconcile(shop):
    member = member_with(shop, 3000)
    before, _ = budget_of(shop)
    status, placed = place(shop, order_body(member, "atelier-mode-eur", 2500))
    assert status == 202, placed
    assert wait(shop, placed["order_id"])["status"] == "COMPLETED"
    after, movements = budget_of(shop)
    status, payouts, _ = fin(shop, "get_payouts", query={"from": TODAY()})
    row = next(p for p in payouts["items"] if p["order_id"] == placed["order_id"])
    assert row["face_value"] == 2500 and row["currency"] == "EUR" and row["status"] == "COMPLETED"
    assert row["provider"] == "simulated" and row["provider_reference"]
    assert before["available"] - after["available"] == 2500 + row["fee"]
    assert after["paid_face_value"] - before["paid_face_value"] == 2500
    draws = [m for m in movements if m["order_id"] == placed["order_id"]]
    assert sorted(m["credit"] for m in draws) == sorted(["payouts:face"] + (["payouts:fees"] if row["fee"] else []))
    assert trial(shop)["balanced"]
    assert reconciliation(shop)["differences"] == []


def test_too_little_budget_fails_the_order_with_insufficient_funds_and_releases_the_points(payout, store):
    poor = new_program(store, "Poor")
    fund(poor, 1000)
    member = member_with(poor, 3000)
    status, placed = place(poor, order_body(member, "atelier-mode-eur", 2500))
    assert status == 202
    order = wait(poor, placed["order_id"])
    assert order["status"] == "FAILED" and order["failure_reason"] == "insufficient_funds"
    assert balance(poor, member)["available"] == 3000 and balance(poor, member)["held"] == 0
    budget, movements = budget_of(poor)
    assert budget["available"] == 1000 and [m["type"] for m in movements] == ["funding"]
    assert reconciliation(poor)["differences"] == []


def test_a_donation_draws_its_amount_and_a_voucher_draws_nothing(shop):
    member = member_with(shop, 5000)
    before, _ = budget_of(shop)
    _, donation = place(shop, order_body(member, "kuestenwald", 1000, method="api"))
    _, voucher = place(shop, order_body(member, "voucher-5-off", method="api"))
    assert wait(shop, donation["order_id"])["status"] == "COMPLETED"
    assert wait(shop, voucher["order_id"])["status"] == "COMPLETED"
    after, _ = budget_of(shop)
    assert before["available"] - after["available"] == 1000
    assert reconciliation(shop)["differences"] == []


def test_a_provider_failure_after_the_draw_gives_the_money_back(shop):
    member = member_with(shop, 3000)
    before, _ = budget_of(shop)
    set_fault(runtime.store().ddb, runtime.store().table, shop["program_id"], "rejected", brand="Atelier Mode")
    _, placed = place(shop, order_body(member, "atelier-mode-eur", 2500))
    order = wait(shop, placed["order_id"])
    assert order["status"] == "FAILED" and order["failure_reason"] == "provider_rejected"
    after, movements = budget_of(shop)
    assert after["available"] == before["available"] and after["paid_face_value"] == before["paid_face_value"]
    mine = [m["type"] for m in movements if m["order_id"] == placed["order_id"]]
    assert mine.count("draw") == mine.count("return") >= 1
    assert reconciliation(shop)["differences"] == []
    assert trial(shop)["balanced"]


def test_canceling_a_gift_card_returns_its_money_to_the_budget(shop):
    member = member_with(shop, 3000)
    before, _ = budget_of(shop)
    _, placed = place(shop, order_body(member, "atelier-mode-eur", 2500))
    assert wait(shop, placed["order_id"])["status"] == "COMPLETED"
    status, body, _ = call(orders, "orders/cancel_order.json", shop["auth"]["partner"],
                           path=f"/v1/orders/{placed['order_id']}/cancel",
                           path_parameters={"order_id": placed["order_id"]}, body={"reason": "customer changed mind"})
    assert status == 200 and body["status"] == "CANCELED", body
    after, _ = budget_of(shop)
    assert after["available"] == before["available"]
    assert reconciliation(shop)["differences"] == []


def test_crossing_the_low_balance_threshold_emits_one_budget_low_event(payout, store):
    brand = new_program(store, "Thin")
    fund(brand, 6000)
    status, body, _ = call(finance, "finance/put_budget_threshold.json", brand["auth"]["admin"],
                           body={"low_balance_threshold": 4000})
    assert status == 200, body
    member = member_with(brand, 10_000)
    for _ in range(2):
        _, placed = place(brand, order_body(member, "kaffeekranz-eur", 1000))
        assert wait(brand, placed["order_id"])["status"] == "COMPLETED"
    events = [e["data"] for e in events_of(brand) if e["type"] == "budget.low"]
    assert len(events) == 1 and events[0]["currency"] == "EUR" and events[0]["threshold"]["value"] == 4000
    assert events[0]["balance"]["value"] < 4000
    budget, _ = budget_of(brand)
    assert budget["low"] and budget["low_balance_threshold"] == 4000
    # a funding lowers the flag: the next fall below the threshold is news again, once
    fund(brand, 1000, key="top-up")
    for _ in range(2):
        _, placed = place(brand, order_body(member, "kaffeekranz-eur", 1000))
        assert wait(brand, placed["order_id"])["status"] == "COMPLETED"
    assert len([e for e in events_of(brand) if e["type"] == "budget.low"]) == 2


# ---------------------------------------------------------------- reports


def test_the_reconciliation_names_a_held_balance_that_the_batches_do_not_account_for():
    money = {"EUR": {"budget:fundings": -10_000, "budget:available": 7_000, "budget:held": 3_000}}

    def check(holds):
        out = finance_logic.reconcile("2026-12-01", [], [], lambda o: None, lambda o: None, {}, money, {}, holds)
        return [(d["check"], d["expected"], d["actual"]) for d in out["differences"]]

    assert check({"EUR": 3_000}) == []
    assert check({"EUR": 2_000}) == [("budget_held", 3_000, 2_000)]
    assert check({}) == [("budget_held", 3_000, 0)]


def test_journal_lists_postings_and_movements_in_time_order_with_a_cursor(shop):
    member = member_with(shop, 3000)
    _, placed = place(shop, order_body(member, "atelier-mode-eur", 2500))
    wait(shop, placed["order_id"])
    seen, cursor = [], None
    while True:
        query = {"from": TODAY(), "limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page, _ = fin(shop, "get_journal", query=query)
        assert status == 200, page
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [e["created_at"] for e in seen] == sorted(e["created_at"] for e in seen)
    mine = [e["type"] for e in seen if e["order_id"] == placed["order_id"]]
    assert {"hold", "capture", "draw"} <= set(mine)
    units = {e["unit"] for e in seen}
    assert {"points", "EUR"} <= units
    assert fin(shop, "get_journal", query={"cursor": "bm90LWEtY3Vyc29y"})[0] == 400


def test_every_list_answers_csv_with_its_documented_columns(shop):
    member = member_with(shop, 3000)
    _, placed = place(shop, order_body(member, "atelier-mode-eur", 2500))
    wait(shop, placed["order_id"])
    cases = {
        "get_payouts": finance_logic.PAYOUT_COLUMNS,
        "get_journal": finance_logic.JOURNAL_COLUMNS,
        "get_trial_balance": finance_logic.TRIAL_BALANCE_COLUMNS,
        "get_liability": finance_logic.LIABILITY_COLUMNS,
        "get_reconciliation": finance_logic.DIFFERENCE_COLUMNS,
        "get_kpis": finance_logic.KPI_COLUMNS,
        "get_budget": finance_logic.MOVEMENT_COLUMNS,
    }
    for sample, columns in cases.items():
        query = {"date": TODAY()} if sample == "get_reconciliation" else {}
        status, raw = fin_csv(shop, sample, query=query)
        assert status == 200, (sample, raw["body"])
        assert raw["multiValueHeaders"]["Content-Type"][0].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(raw["body"])))
        assert tuple(rows[0]) == columns, sample
        if sample in ("get_payouts", "get_journal", "get_trial_balance", "get_liability", "get_budget"):
            assert len(rows) > 1, sample
    _, raw = fin_csv(shop, "get_payouts", query={"from": TODAY()})
    rows = list(csv.DictReader(io.StringIO(raw["body"])))
    row = next(r for r in rows if r["order_id"] == placed["order_id"])
    assert row["face_value"] == "2500" and row["currency"] == "EUR"


def test_trial_balance_and_liability_follow_the_ledger(shop):
    member = member_with(shop, 4000)
    _, placed = place(shop, order_body(member, "atelier-mode-eur", 2500))
    wait(shop, placed["order_id"])
    report = trial(shop)
    points = next(u for u in report["units"] if u["unit"] == "points")
    accounts = {a["account"]: a["balance"] for a in points["accounts"]}
    assert points["total"] == 0 and accounts["program:redeemed"] >= 2500
    eur = next(u for u in report["units"] if u["unit"] == "EUR")
    assert eur["total"] == 0
    status, liability, _ = fin(shop, "get_liability")
    assert status == 200
    assert liability["points"]["outstanding"] == accounts["member:available"] + accounts["member:held"]
    assert liability["value"] == {"value": liability["points"]["outstanding"], "currency": "EUR"}  # 1 point = 1 cent


def test_kpis_count_members_activity_and_rates(payout, store):
    brand = new_program(store, "Kpi")
    fund(brand, 100_000)
    a = member_with(brand, 3000)
    member_with(brand, 0)  # enrolled, never active
    from tests.integration.helpers import buy, purchase

    assert purchase(brand["auth"]["partner"], a, buy("kpi-2", 200_000))[0] == 200  # a second purchase
    _, placed = place(brand, order_body(a, "atelier-mode-eur", 2500))
    wait(brand, placed["order_id"])
    status, kpis, _ = fin(brand, "get_kpis", query={"from": TODAY(), "to": TODAY()})
    assert status == 200, kpis
    assert kpis["members"] == 2 and kpis["active_members"] == 1 and kpis["active_members_ratio_bps"] == 5000
    assert kpis["points_earned"] == 5000 and kpis["points_redeemed"] == 2500
    assert kpis["redemption_rate_bps"] == 5000 and kpis["repurchase_rate_bps"] == 10_000
    assert kpis["liability"] == {"value": 2500, "currency": "EUR"}
    assert kpis["payouts"] == [{"currency": "EUR", "face_value": 2500, "fees": 38}]


def test_bad_periods_are_clear_errors(shop):
    status, body, _ = fin(shop, "get_payouts", query={"from": "yesterday"})
    assert status == 400 and "from" in body["detail"]
    status, body, _ = fin(shop, "get_payouts", query={"from": "2026-11-24", "to": "2026-11-01"})
    assert status == 400 and "before" in body["detail"]
    status, body, _ = fin(shop, "get_reconciliation", query={"date": "24.11.2026"})
    assert status == 422


# ---------------------------------------------------------------- access


@pytest.mark.parametrize("route", sorted((r.method, r.path) for r in of_function("Finance")))
def test_a_partner_key_gets_403_on_every_finance_route(shop, route):
    method, resource = route
    event = api_event("finance/get_trial_balance.json", auth=shop["auth"]["partner"])
    event.update(httpMethod=method, resource=resource, path=resource.replace("{currency}", "EUR"))
    response = finance.handler(event, LambdaContext())
    assert response["statusCode"] == 403, (route, response["body"])
    assert "scope" in body_of(response)["detail"]


def test_finance_routes_of_one_program_never_show_another(shop, store):
    other = new_program(store, "Other")
    member = member_with(shop, 3000)
    _, placed = place(shop, order_body(member, "atelier-mode-eur", 2500))
    wait(shop, placed["order_id"])
    assert fin(other, "get_payouts")[1]["items"] == []
    assert fin(other, "get_journal")[1]["items"] == []
    assert fin(other, "get_budget")[1] == {"budgets": [], "movements": [], "next_cursor": None}
    assert fin(other, "get_liability")[1]["points"]["outstanding"] == 0
    assert all(u["unit"] == "points" and all(a["balance"] == 0 for a in u["accounts"])
               for u in fin(other, "get_trial_balance")[1]["units"])
    recon = fin(other, "get_reconciliation", query={"date": TODAY()})[1]
    assert recon["checked"]["orders"] == 0 and recon["differences"] == []
    runtime.audit_trail().seal_pending()
    records = fin(other, "get_audit")[1]["items"]
    assert records and all(r["subject_id"] != placed["order_id"] for r in records)


# ---------------------------------------------------------------- audit trail


def test_audit_records_carry_actor_request_and_source_and_the_chain_verifies(shop):
    member = member_with(shop, 3000)
    _, placed = place(shop, order_body(member, "atelier-mode-eur", 2500))
    wait(shop, placed["order_id"])
    trail = AuditStore(runtime.store())
    sealed = trail.seal_program(shop["program_id"])
    assert sealed > 0 and trail.pending_count(shop["program_id"]) == 0
    assert trail.seal_program(shop["program_id"]) == 0  # nothing twice
    records = list(trail.chain(shop["program_id"]))
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    actions = {r["action"] for r in records}
    assert {"api_key.created", "budget.funding", "posting.earn", "posting.hold", "order.transition",
            "budget.draw", "posting.capture"} <= actions
    hold = next(r for r in records if r["action"] == "posting.hold")
    assert hold["actor"] == shop["auth"]["partner"]["key_id"] and hold["scope"] == "partner"
    assert hold["request_id"] and hold["source_ip"] == "203.0.113.10"
    capture = next(r for r in records if r["action"] == "posting.capture")
    assert capture["actor"] == "workflow:payout"
    result = trail.verify(shop["program_id"])
    assert result.intact and result.checked == len(records) and result.subjects_checked > 0


def _alter(ddb, table, pk, sk, **changes):
    item = from_item(ddb.get_item(TableName=table, Key=to_item({"pk": pk, "sk": sk}))["Item"])
    item.update(changes)
    ddb.put_item(TableName=table, Item=to_item(item))


def test_an_audit_record_altered_in_dynamodb_is_named_by_verify(shop):
    member_with(shop, 3000)
    trail = AuditStore(runtime.store())
    trail.seal_program(shop["program_id"])
    records = list(trail.chain(shop["program_id"]))
    victim = records[len(records) // 2]
    data = dict(victim["data"], note="edited")
    _alter(runtime.store().ddb, runtime.store().table, f"P#{shop['program_id']}#AUDIT#{victim['id']}", "AUDIT",
           data=data)
    result = trail.verify(shop["program_id"])
    assert not result.intact
    assert result.broken["seq"] == victim["seq"] and result.broken["record_id"] == victim["id"]
    assert "altered" in result.broken["problem"]


def test_a_ledger_posting_altered_in_dynamodb_is_named_by_verify(shop):
    member = member_with(shop, 3000)
    trail = AuditStore(runtime.store())
    trail.seal_program(shop["program_id"])
    earn = next(r for r in trail.chain(shop["program_id"]) if r["action"] == "posting.earn"
                and r["data"]["member_id"] == member)
    _alter(runtime.store().ddb, runtime.store().table, f"P#{shop['program_id']}#MEMBER#{member}",
           f"ENTRY#{earn['subject_id']}", points=300_000)
    result = trail.verify(shop["program_id"])
    assert result.broken["record_id"] == earn["id"] and "posting" in result.broken["problem"]


def test_a_deleted_or_reordered_audit_record_breaks_the_chain(shop):
    member_with(shop, 3000)
    trail = AuditStore(runtime.store())
    trail.seal_program(shop["program_id"])
    records = list(trail.chain(shop["program_id"]))
    ddb, table = runtime.store().ddb, runtime.store().table
    ddb.delete_item(TableName=table, Key=to_item({"pk": f"P#{shop['program_id']}#AUDIT#{records[2]['id']}",
                                                  "sk": "AUDIT"}))
    result = trail.verify(shop["program_id"])
    assert result.broken["seq"] == 3 and "missing" in result.broken["problem"]


def test_concurrent_sealers_chain_each_record_once(shop):
    from concurrent.futures import ThreadPoolExecutor

    for _ in range(3):
        member_with(shop, 100)
    trail = AuditStore(runtime.store())
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: trail.seal_pending(), range(4)))
    trail.seal_pending()
    assert trail.pending_count(shop["program_id"]) == 0
    assert trail.verify(shop["program_id"]).intact


def test_the_audit_route_lists_sealed_records_after_a_sequence_number(shop):
    member_with(shop, 100)
    runtime.audit_trail().seal_pending()
    status, page, _ = fin(shop, "get_audit", query={"after": "0", "limit": "3"})
    assert status == 200 and [r["seq"] for r in page["items"]] == [1, 2, 3] and page["next_after"] == 3
    status, rest, _ = fin(shop, "get_audit", query={"after": "3", "limit": "1000"})
    assert rest["items"][0]["seq"] == 4 and rest["pending"] == 0
