"""Paid membership on moto (issue 17 item 5): plans in the program's settings; a start grants the plan's tier on
the TIER item (the tier answer, the catalog level and the earn multiplier read it with nothing more), pays the
welcome points once from the plan's bonus account and books the fee as revenue in the money journal, never in
the budget; replays and a second membership are refused as they should be; a renewal moves the period on, a
cancel keeps the benefits until its end; the daily run (the MembershipReview function, "now" from the event)
ends a lapsed membership exactly once and the tier drops back to the one qualified for. Every handler runs as
its own function's role (the permission evaluator of tests/integration/conftest.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import call, enroll, events_of, member_call, purchase
from tests.integration.test_finance import fin, fund
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core import memberships as rules
from treue.core import times
from treue.handlers import accrual, membership_review, memberships, segments
from treue.handlers import program as program_handler

TIERS = {"metric": "points", "period": {"type": "rolling", "months": 12},
         "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                    {"id": "gold", "name": "Gold", "threshold": 100_000,
                     "benefits": {"earn_multiplier_bps": 15000, "catalog_discount_bps": 1000}}]}
PLUS = {"id": "plus", "name": "Treue Plus", "price": {"value": 999, "currency": "EUR"}, "period_months": 1,
        "tier": "gold", "welcome_points": 500, "earn_multiplier_bps": 12000}


def patch(program, body) -> tuple[int, dict]:
    status, answer, _ = call(program_handler, "program/patch_program.json", program["auth"]["admin"], body=body,
                             headers={"Content-Type": "application/merge-patch+json", "If-Match": "*"})
    return status, answer


def start(program, member_id, body, scope="partner"):
    return call(memberships, "memberships/post_membership.json", program["auth"][scope],
                path=f"/v1/members/{member_id}/memberships", path_parameters={"member_id": member_id}, body=body)


def act(program, member_id, membership_id, what, body=None):
    return call(memberships, f"memberships/post_{what}.json", program["auth"]["partner"],
                path=f"/v1/members/{member_id}/memberships/{membership_id}/{what}",
                path_parameters={"member_id": member_id, "membership_id": membership_id}, body=body)


def listed(program, member_id):
    return call(memberships, "memberships/get_memberships.json", program["auth"]["partner"],
                path=f"/v1/members/{member_id}/memberships", path_parameters={"member_id": member_id})


def tier_of(program, member_id) -> dict:
    status, body, _ = member_call(accrual, "accrual/get_tier.json", program["auth"]["partner"], member_id, "/tier")
    assert status == 200, body
    return body


def segment_ids(program, member_id) -> set[str]:
    status, body, _ = member_call(segments, "segments/member_segments.json", program["auth"]["partner"], member_id,
                                  "/segments")
    assert status == 200, body
    return {s["id"] for s in body["segments"]}


def run(at: datetime) -> dict:
    event = load_event("membership_review/scheduled.json")
    event["time"] = times.iso(at)
    return membership_review.handler(event, LambdaContext())


def bought(txn: str, value: int) -> dict:
    return {"transaction_id": txn, "amount": {"value": value, "currency": "EUR"},
            "occurred_at": times.iso(datetime.now(UTC) - timedelta(seconds=5))}


@pytest.fixture
def club(program):
    status, body = patch(program, {"tiers": TIERS, "membership_plans": [PLUS]})
    assert status == 200, body
    assert body["membership_plans"] == [PLUS]
    return program


def test_plans_are_checked_like_tiers(program):
    status, problem = patch(program, {"membership_plans": [PLUS]})  # its tier names no level: no tiers yet
    assert status == 422 and problem["errors"][0]["field"] == "membership_plans", problem
    assert "membership_plans[0].tier must name one of the program's tier levels" in problem["detail"]
    status, problem = patch(program, {"tiers": TIERS, "membership_plans": [PLUS, PLUS]})
    assert status == 422 and "unique" in problem["detail"], problem
    status, problem = patch(program, {"membership_plans": [{**PLUS, "period_months": 0}]})
    assert status == 422, problem
    status, body = patch(program, {"tiers": TIERS, "membership_plans": [{**PLUS, "welcome_points": None,
                                                                         "earn_multiplier_bps": None}]})
    assert status == 200 and body["membership_plans"][0]["welcome_points"] == 0, body
    assert body["membership_plans"][0]["earn_multiplier_bps"] == 10000
    status, problem = patch(program, {"tiers": None})  # the plan still names gold
    assert status == 422 and problem["errors"][0]["field"] == "membership_plans", problem
    status, body = patch(program, {"membership_plans": None})
    assert status == 200 and body["membership_plans"] == []


def test_a_start_grants_the_tier_pays_the_welcome_once_and_books_the_fee_as_revenue(club):
    auth = club["auth"]["partner"]
    assert fund(club, 10_000)[0] == 201
    ada = enroll(auth, {"email": "ada@example.com"})[1]["id"]
    assert tier_of(club, ada)["tier"] == "bronze" and "premium" not in segment_ids(club, ada)
    status, answer, response = start(club, ada, {"plan_id": "plus", "payment_reference": "psp-1"})
    assert status == 201, answer
    assert answer["status"] == "active" and answer["replayed"] is False and answer["periods"] == 1
    assert answer["welcome"]["points_earned"] == 500 and answer["cancel_at_period_end"] is False
    starts = times.parse(answer["starts_at"])
    assert times.parse(answer["current_period_end"]) == rules.add_months(starts, 1)
    membership_id = answer["membership_id"]
    assert response["multiValueHeaders"]["Location"] == [f"/v1/members/{ada}/memberships/{membership_id}"]
    # the tier the plan grants, above the one qualified for; the member is premium
    tier = tier_of(club, ada)
    assert (tier["tier"], tier["qualified_tier"], tier["membership"]["plan_id"]) == ("gold", "bronze", "plus")
    assert tier["benefits"]["catalog_discount_bps"] == 1000
    assert "premium" in segment_ids(club, ada)
    status, offered, _ = member_call(segments, "segments/member_offers.json", auth, ada, "/offers")
    assert status == 200 and offered["tier"] == "gold", offered  # the offers are priced for the granted tier
    # a purchase earns the base, the tier and the plan's multiplier (each on the base)
    status, earned, _ = purchase(auth, ada, bought("m-1", 10_000))
    assert status == 200, earned
    lines = {line["rule_id"]: line["points"] for line in earned["breakdown"]}
    assert lines == {"base": 100, "tier:gold": 50, "membership:plus": 20}, lines
    assert earned["balance"]["available"] == 500 + 170
    # the same payment again: the same membership, nothing more paid or booked
    status, again, _ = start(club, ada, {"plan_id": "plus", "payment_reference": "psp-1"})
    assert status == 200 and again["replayed"] is True and again["membership_id"] == membership_id, again
    assert again["welcome"]["points_earned"] == 500
    status, problem, _ = start(club, ada, {"plan_id": "plus", "payment_reference": "psp-1",
                                           "starts_at": "2026-11-01T00:00:00Z"})
    assert status == 409 and problem["type"].endswith("idempotency-conflict"), problem
    status, problem, _ = start(club, ada, {"plan_id": "plus", "payment_reference": "psp-2"})
    assert status == 409 and problem["type"].endswith("membership-active"), problem
    status, problem, _ = start(club, ada, {"plan_id": "gold-club", "payment_reference": "psp-3"})
    assert status == 422 and problem["errors"][0]["field"] == "plan_id", problem
    assert len(events_of(club, ["membership.started"])) == 1
    # the welcome points came once, from the plan's own bonus account
    status, page, _ = fin(club, "get_journal", query={"limit": "100"})
    assert status == 200, page
    welcome = [e for e in page["items"] if e["debit"] == "program:bonus:membership:plus"]
    assert [(e["amount"], e["credit"], e["member_id"]) for e in welcome] == [(500, "member:available", ada)]
    # the fee: one movement in the journal, revenue in the trial balance, nothing in the budget
    fees = [e for e in page["items"] if e["type"] == "membership_fee"]
    assert [(e["unit"], e["amount"], e["debit"], e["credit"], e["reference"]) for e in fees] == [
        ("EUR", 999, "membership:fees_received", "revenue:memberships", "psp-1")]
    status, trial, _ = fin(club, "get_trial_balance")
    assert status == 200 and trial["balanced"] is True, trial
    eur = next(u for u in trial["units"] if u["unit"] == "EUR")
    accounts = {a["account"]: a["balance"] for a in eur["accounts"]}
    assert accounts["revenue:memberships"] == 999 and accounts["membership:fees_received"] == -999
    assert accounts["budget:available"] == 10_000 and eur["total"] == 0
    status, budget, _ = fin(club, "get_budget", query={"currency": "EUR"})
    assert status == 200 and budget["budgets"][0]["available"] == 10_000, budget
    assert budget["budgets"][0]["funded"] == 10_000
    status, report, _ = fin(club, "get_reconciliation", query={"date": times.now()[:10]})
    assert status == 200 and report["differences"] == [], report


def test_renew_cancel_and_the_daily_run_end_the_membership_once_and_the_tier_drops_back(club):
    auth = club["auth"]["partner"]
    bob = enroll(auth, {"email": "bob@example.com"})[1]["id"]
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    status, first, _ = start(club, bob, {"plan_id": "plus", "payment_reference": "pay-1",
                                         "starts_at": times.iso(began)})
    assert status == 201, first
    mid = first["membership_id"]
    status, renewed, _ = act(club, bob, mid, "renew", {"payment_reference": "pay-2"})
    assert status == 200 and renewed["replayed"] is False, renewed
    end = rules.add_months(began, 2)
    assert times.parse(renewed["current_period_end"]) == end and renewed["periods"] == 2
    assert [p["payment_reference"] for p in renewed["payments"]] == ["pay-1", "pay-2"]
    status, again, _ = act(club, bob, mid, "renew", {"payment_reference": "pay-2"})
    assert status == 200 and again["replayed"] is True and again["periods"] == 2
    assert tier_of(club, bob)["membership"]["until"] == rules.iso(end)
    # a cancel ends it at the period's end: still active and gold until then; a second cancel changes nothing
    status, canceled, _ = act(club, bob, mid, "cancel")
    assert status == 200 and canceled["cancel_at_period_end"] is True and canceled["status"] == "active"
    status, twice, _ = act(club, bob, mid, "cancel")
    assert status == 200 and twice["canceled_at"] == canceled["canceled_at"] and twice["replayed"] is True
    assert tier_of(club, bob)["tier"] == "gold"
    # the daily run: nothing before the end, then the membership ends once and the grant goes
    assert run(end - timedelta(seconds=1))["due"] == 0
    counts = run(end)
    assert (counts["due"], counts["ended"], counts["skipped"]) == (1, 1, 0), counts
    assert run(end + timedelta(days=1))["due"] == 0  # out of the index: a rerun finds nothing
    status, page, _ = listed(club, bob)
    assert status == 200 and [(m["status"], m["ended_reason"], m["ended_at"]) for m in page["items"]] == [
        ("ended", "canceled", rules.iso(end))]
    ended = events_of(club, ["membership.ended"])
    assert [(e["data"]["tier_before"], e["data"]["tier_after"], e["data"]["reason"]) for e in ended] == [
        ("gold", "bronze", "canceled")]
    tier = tier_of(club, bob)
    assert (tier["tier"], tier["membership"]) == ("bronze", None)
    assert "premium" not in segment_ids(club, bob)
    status, problem, _ = act(club, bob, mid, "renew", {"payment_reference": "pay-3"})
    assert status == 409 and problem["type"].endswith("membership-ended"), problem
    # a new membership can start now; its purchase earns the multiplier again
    status, second, _ = start(club, bob, {"plan_id": "plus", "payment_reference": "pay-4"})
    assert status == 201 and second["membership_id"] != mid, second
    assert len(listed(club, bob)[1]["items"]) == 2


def test_a_lapsed_membership_grants_nothing_before_the_run_and_a_purchase_keeps_the_tier_state(club):
    auth = club["auth"]["partner"]
    cy = enroll(auth, {"email": "cy@example.com"})[1]["id"]
    began = datetime.now(UTC) - timedelta(days=40)  # its month is over: ended, not written yet
    status, answer, _ = start(club, cy, {"plan_id": "plus", "payment_reference": "late-1",
                                         "starts_at": times.iso(began)})
    assert status == 422 and answer["errors"][0]["field"] == "starts_at", answer
    began = datetime.now(UTC) - timedelta(days=27)
    status, answer, _ = start(club, cy, {"plan_id": "plus", "payment_reference": "late-2",
                                         "starts_at": times.iso(began)})
    assert status == 201, answer
    status, earned, _ = purchase(auth, cy, bought("c-1", 10_000))
    assert {line["rule_id"] for line in earned["breakdown"]} == {"base", "tier:gold", "membership:plus"}
    # read as at the period's end (the run's clock): the grant no longer counts, whether the run has run or not
    end = times.parse(answer["current_period_end"])
    assert run(end)["ended"] == 1
    status, after, _ = purchase(auth, cy, bought("c-2", 10_000))
    assert status == 200 and {line["rule_id"] for line in after["breakdown"]} == {"base"}, after


def test_unknown_members_and_memberships_are_404(club):
    status, problem, _ = start(club, "mbr_01unknown0000000000000000", {"plan_id": "plus", "payment_reference": "x"})
    assert status == 404 and problem["type"].endswith("member-not-found"), problem
    dan = enroll(club["auth"]["partner"], {"email": "dan@example.com"})[1]["id"]
    status, problem, _ = act(club, dan, "msh_" + "0" * 26, "cancel")
    assert status == 404 and problem["type"].endswith("membership-not-found"), problem
    assert listed(club, dan)[1] == {"items": []}
    status, problem, _ = listed(club, "mbr_01unknown0000000000000000")
    assert status == 404, problem


def test_concurrent_starts_make_one_membership_and_concurrent_runs_end_it_once(club):
    serialize_moto_dynamodb()  # moto's backend is not thread-safe under concurrent transactions (DynamoDB is)
    auth = club["auth"]["partner"]
    eve = enroll(auth, {"email": "eve@example.com"})[1]["id"]
    began = times.iso(datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    same = {"plan_id": "plus", "payment_reference": "same-1", "starts_at": began}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: start(club, eve, same if n % 2 else {**same, "payment_reference": f"o-{n}"}),
                                range(8)))
    created = [body for status, body, _ in answers if status == 201]
    assert len(created) == 1, [(s, b.get("type")) for s, b, _ in answers]
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) <= {200, 201, 409}, statuses
    (membership,) = listed(club, eve)[1]["items"]
    assert membership["membership_id"] == created[0]["membership_id"]
    assert len([e for e in events_of(club, ["membership.started"]) if e["data"]["member_id"] == eve]) == 1
    status, balance, _ = member_call(accrual, "accrual/get_balance.json", auth, eve, "/balance")
    assert status == 200 and balance["available"] == 500, balance  # the welcome once
    end = times.parse(membership["current_period_end"])
    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(pool.map(lambda _: run(end), range(4)))
    assert sum(c["ended"] for c in counts) == 1, counts
    assert len([e for e in events_of(club, ["membership.ended"]) if e["data"]["member_id"] == eve]) == 1


def test_the_welcome_points_get_the_expiry_date_of_any_credit(club):
    assert patch(club, {"expiry": {"policy": "rolling", "months": 12}})[0] == 200
    auth = club["auth"]["partner"]
    fay = enroll(auth, {"email": "fay@example.com"})[1]["id"]
    began = datetime.now(UTC) - timedelta(days=1)  # the points count from the membership's start
    status, answer, _ = start(club, fay, {"plan_id": "plus", "payment_reference": "exp-1",
                                          "starts_at": times.iso(began)})
    assert status == 201, answer
    on = rules.add_months(began, 12).date().isoformat()
    (welcome,), _ = runtime.store().list_entries(club["program_id"], fay, 10, None)
    assert (welcome["points"], welcome["reference"]) == (500, answer["membership_id"]), welcome
    assert welcome["metadata"]["expires_on"] == on, welcome
    assert runtime.store().buckets(club["program_id"], fay) == {on: 500}  # its expiry bucket


def test_a_program_without_tiers_pays_the_plan_s_multiplier(program):
    basic = {**PLUS, "id": "basic", "tier": None}
    status, body = patch(program, {"membership_plans": [basic]})
    assert status == 200 and body["tiers"] is None, body
    auth = program["auth"]["partner"]
    gus = enroll(auth, {"email": "gus@example.com"})[1]["id"]
    assert purchase(auth, gus, bought("g-0", 10_000))[1]["points_earned"] == 100  # not a member yet
    assert start(program, gus, {"plan_id": "basic", "payment_reference": "b-1"})[0] == 201
    status, earned, _ = purchase(auth, gus, bought("g-1", 10_000))
    assert status == 200 and {line["rule_id"]: line["points"] for line in earned["breakdown"]} == {
        "base": 100, "membership:basic": 20}, earned
    assert "premium" in segment_ids(program, gus)


def test_a_return_gives_the_plan_s_multiplier_back_to_the_account_it_came_from(club):
    """The membership:<plan> line is paid from program:issued like the base and the tier's; a return reverses it
    there, never into the plan's welcome account program:bonus:membership:<plan>."""
    auth = club["auth"]["partner"]
    hal = enroll(auth, {"email": "hal@example.com"})[1]["id"]
    assert start(club, hal, {"plan_id": "plus", "payment_reference": "ret-1"})[0] == 201
    status, earned, _ = purchase(auth, hal, bought("h-1", 10_000))
    assert status == 200 and earned["points_earned"] == 170, earned
    body = {"return_id": "r-h-1", "transaction_id": "h-1", "amount": {"value": 10_000, "currency": "EUR"},
            "occurred_at": times.iso(datetime.now(UTC) - timedelta(seconds=1))}
    status, returned, _ = member_call(accrual, "accrual/post_return.json", auth, hal, "/returns", body=body)
    assert status == 200 and returned["points_reversed"] == 170, returned
    status, trial, _ = fin(club, "get_trial_balance")
    points = next(u for u in trial["units"] if u["unit"] == "points")
    accounts = {a["account"]: a["balance"] for a in points["accounts"]}
    assert accounts["program:bonus:membership:plus"] == -500, accounts  # the welcome only
    assert accounts["program:issued"] == 0 and points["total"] == 0, accounts
