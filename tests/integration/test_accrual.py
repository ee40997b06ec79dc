from tests.integration.helpers import buy, call, enroll, member_call, purchase
from treue.handlers import accrual


def new_member(program):
    return enroll(program["auth"]["partner"], {"email": "ada@example.com"})[1]["id"]


def test_a_purchase_earns_points_once(program):
    auth = program["auth"]["partner"]
    mid = new_member(program)
    status, body, _ = purchase(auth, mid, buy("pos-1", 4999))
    assert status == 200
    assert body == {
        "transaction_id": "pos-1",
        "points_earned": 49,
        "breakdown": [{"rule_id": "base", "version": 1, "points": 49, "line_index": None, "reason": None}],
        "replayed": False,
        "available_at": None,
        "balance": {"available": 49, "pending": 0, "held": 0, "debt": 0, "expiring": [],
                    "lifetime_earned": 49, "lifetime_redeemed": 0},
    }
    status, again, _ = purchase(auth, mid, buy("pos-1", 4999))
    assert status == 200 and again["replayed"] and again["points_earned"] == 49
    assert again["balance"]["available"] == 49


def test_the_same_transaction_with_another_payload_is_409_and_changes_nothing(program):
    auth = program["auth"]["partner"]
    mid = new_member(program)
    purchase(auth, mid, buy("pos-1", 4999))
    status, problem, _ = purchase(auth, mid, buy("pos-1", 9999))
    assert status == 409 and problem["type"].endswith("/idempotency-conflict")
    _, balance, _ = member_call(accrual, "accrual/get_balance.json", auth, mid, "/balance")
    assert balance["available"] == 49


def test_small_purchases_earn_zero_points_and_still_count_as_seen(program):
    auth = program["auth"]["partner"]
    mid = new_member(program)
    status, body, _ = purchase(auth, mid, buy("pos-small", 99))
    assert status == 200 and body["points_earned"] == 0
    _, statement, _ = member_call(accrual, "accrual/get_ledger.json", auth, mid, "/ledger")
    assert statement["entries"] == []
    assert purchase(auth, mid, buy("pos-small", 5000))[0] == 409


def test_currency_must_match_the_program(program):
    status, problem, _ = purchase(program["auth"]["partner"], new_member(program), buy("pos-1", 100, "USD"))
    assert status == 422 and problem["type"].endswith("/currency-mismatch") and problem["expected"] == "EUR"


def test_unknown_members_are_404(program):
    status, problem, _ = purchase(program["auth"]["partner"], "mbr_nobody", buy("pos-1", 100))
    assert status == 404 and problem["type"].endswith("/member-not-found")
    for sample, suffix in (("accrual/get_balance.json", "/balance"), ("accrual/get_ledger.json", "/ledger")):
        assert member_call(accrual, sample, program["auth"]["partner"], "mbr_nobody", suffix)[0] == 404


def test_adjustments_need_admin_and_never_overdraw(program):
    mid = new_member(program)
    purchase(program["auth"]["partner"], mid, buy("pos-1", 1000))  # 10 points
    adj = {"points": -25, "reason": "reversal of a fraudulent grant", "reference": "case-1"}
    status, problem, _ = member_call(accrual, "accrual/post_adjustment.json", program["auth"]["partner"], mid,
                                     "/adjustments", body=adj)
    assert status == 403 and problem["type"].endswith("/forbidden")
    status, problem, _ = member_call(accrual, "accrual/post_adjustment.json", program["auth"]["admin"], mid,
                                     "/adjustments", body=adj)
    assert status == 422 and problem["type"].endswith("/insufficient-points")
    adj["points"] = -4
    status, body, _ = member_call(accrual, "accrual/post_adjustment.json", program["auth"]["admin"], mid,
                                  "/adjustments", body=adj)
    assert status == 200 and body["balance"]["available"] == 6 and body["points"] == -4
    status, replay, _ = member_call(accrual, "accrual/post_adjustment.json", program["auth"]["admin"], mid,
                                    "/adjustments", body=adj)
    assert replay["replayed"] and replay["entry_id"] == body["entry_id"] and replay["balance"]["available"] == 6


def test_statement_is_newest_first_with_cursor_pagination(program):
    auth = program["auth"]["partner"]
    mid = new_member(program)
    for i in range(7):
        purchase(auth, mid, buy(f"pos-{i}", 100 * (i + 1)))
    seen, cursor = [], None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, page, _ = member_call(accrual, "accrual/get_ledger.json", program["auth"]["finance"], mid, "/ledger",
                                      query=query)
        assert status == 200 and len(page["entries"]) <= 3
        seen += page["entries"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [e["reference"] for e in seen] == [f"pos-{i}" for i in reversed(range(7))]
    assert [e["points"] for e in seen] == [7, 6, 5, 4, 3, 2, 1]
    assert all(e["type"] == "earn" and e["reason"] == "purchase" and e["actor"].startswith("partner:") for e in seen)


def test_bad_cursors_and_limits_are_400_or_422(program):
    auth = program["auth"]["partner"]
    mid = new_member(program)
    status, problem, _ = member_call(accrual, "accrual/get_ledger.json", auth, mid, "/ledger",
                                     query={"cursor": "not-a-cursor"})
    assert status == 400 and problem["parameter"] == "cursor"
    status, _, _ = member_call(accrual, "accrual/get_ledger.json", auth, mid, "/ledger", query={"limit": "1000"})
    assert status == 422


def test_request_without_authorizer_context_is_401(program):
    status, problem, _ = call(accrual, "accrual/get_balance.json", {"program_id": "", "key_id": "k", "scope": "x"},
                              path="/v1/members/m/balance", path_parameters={"member_id": "m"})
    assert status == 401 and problem["type"].endswith("/unauthenticated")
