"""Earning rules on the twin, through API Gateway's stand-in, the authorizer and the Rules function's role: an
admin creates the issue's three example rules, lists, replaces and retires them; partner and finance keys read
them and cannot write them."""

from __future__ import annotations

import pytest

from treue.client import ApiError

pytestmark = pytest.mark.e2e

PROBLEM = "https://treue.dev/problems/"
BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}
REVIEW = {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
          "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}
FRIENDS = {"name": "Friends", "trigger": "referral", "effect": {"referrer_points": 500, "referee_points": 250}}


@pytest.fixture(scope="module")
def shop(twin):
    """A program of its own: its rules are the only ones listed."""
    return twin.program_apis("Rules shop")


def test_the_issues_example_rules_are_created_listed_replaced_and_retired(shop):
    admin, partner = shop["admin"], shop["partner"]
    made = {}
    for body in (BOOKS, REVIEW, FRIENDS):
        answer = admin.create_rule(body, idempotency_key=f"example-{body['name']}")
        assert answer.status == 201 and answer["version"] == 1 and answer["status"] == "active"
        assert answer.headers["ETag"] == '"1"' and answer.headers["Location"] == f"/v1/rules/{answer['id']}"
        made[body["name"]] = answer
    # a replay answers the first rule; another body under the key is a 409
    again = admin.create_rule(BOOKS, idempotency_key="example-Books count double")
    assert again.status == 200 and again["id"] == made["Books count double"]["id"]
    with pytest.raises(ApiError) as conflict:
        admin.create_rule(REVIEW, idempotency_key="example-Books count double")
    assert conflict.value.status == 409 and conflict.value.type == PROBLEM + "idempotency-conflict"

    page = partner.list_rules()
    assert [r["name"] for r in page["items"]] == ["Books count double", "Review bonus", "Friends"]
    assert [r["name"] for r in partner.list_rules(trigger="referral")["items"]] == ["Friends"]
    friends = shop["finance"].get_rule(made["Friends"]["id"])
    assert friends["effect"]["referrer_points"] == 500 and friends["effect"]["referee_points"] == 250

    rid = made["Books count double"]["id"]
    triple = {**BOOKS, "name": "Books count triple", "effect": {"multiplier_bps": 30000}}
    changed = admin.put_rule(rid, triple, if_match=1)
    assert changed["version"] == 2 and changed.headers["ETag"] == '"2"' and changed["name"] == "Books count triple"
    with pytest.raises(ApiError) as stale:
        admin.put_rule(rid, BOOKS, if_match=1)
    assert stale.value.status == 412 and stale.value.type == PROBLEM + "precondition-failed"
    detail = partner.get_rule(rid)
    assert [v["version"] for v in detail["versions"]] == [1, 2] and detail["effect"]["multiplier_bps"] == 30000
    assert partner.get_rule_version(rid, 1)["effect"]["multiplier_bps"] == 20000

    retired = admin.retire_rule(rid)
    assert retired.status == 200 and retired["status"] == "retired" and retired["retired_at"]
    assert admin.retire_rule(rid)["retired_at"] == retired["retired_at"]
    assert [r["id"] for r in partner.list_rules(status="retired")["items"]] == [rid]
    assert rid not in [r["id"] for r in partner.list_rules(status="active")["items"]]
    with pytest.raises(ApiError) as gone:
        admin.put_rule(rid, BOOKS)
    assert gone.value.status == 409 and gone.value.type == PROBLEM + "rule-retired"


def test_partner_and_finance_keys_read_rules_but_cannot_write_them(shop):
    rid = shop["admin"].create_rule(REVIEW, idempotency_key="review-for-scopes")["id"]
    for scope in ("partner", "finance"):
        api = shop[scope]
        assert api.get_rule(rid)["id"] == rid
        for method, args in (("create_rule", (BOOKS,)), ("put_rule", (rid, BOOKS)), ("retire_rule", (rid,))):
            with pytest.raises(ApiError) as refused:
                getattr(api, method)(*args)
            assert refused.value.status == 403, (scope, method)
    assert shop["admin"].get_rule(rid)["version"] == 1 and shop["admin"].get_rule(rid)["status"] == "active"
