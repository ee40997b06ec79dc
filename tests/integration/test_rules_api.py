"""/v1/rules on moto, each call as the Rules function's role allows it: the issue's example rules created (an
Idempotency-Key replays, another body under it is a 409), listed, read with their versions, replaced as versions
(If-Match), retired; partner and finance keys read but do not write; a purchase's occurred_at picks the version
in force then."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import call
from tests.support import LambdaContext, api_event, body_of
from treue import runtime
from treue.handlers import rules as handler
from treue.store.rules import RuleStore

BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}
REVIEW = {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
          "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}
FRIENDS = {"name": "Friends", "trigger": "referral", "effect": {"referrer_points": 500, "referee_points": 250}}


def create(program, body, key, scope="admin"):
    status, payload, response = call(handler, "rules/create_rule.json", program["auth"][scope], body=body,
                                     headers={"Idempotency-Key": key})
    return status, payload, response


def at(sample, rule_id, **kw):
    path = f"/v1/rules/{rule_id}" + (f"/versions/{kw['version']}" if "version" in kw else "")
    params = {"rule_id": rule_id, **({"version": str(kw.pop("version"))} if "version" in kw else {})}
    return api_event(sample, path=path, path_parameters=params, **kw)


def send(event):
    response = handler.handler(event, LambdaContext())
    return response["statusCode"], body_of(response), response


def put(program, rule_id, body, if_match=None, scope="admin"):
    event = at("rules/put_rule.json", rule_id, auth=program["auth"][scope], body=body)
    if if_match is None:
        event["headers"].pop("If-Match")
        event["multiValueHeaders"].pop("If-Match")
    else:
        event["headers"]["If-Match"] = if_match
        event["multiValueHeaders"]["If-Match"] = [if_match]
    return send(event)


def test_the_issues_example_rules_are_created_listed_and_read(program):
    made = {}
    for n, body in enumerate((BOOKS, REVIEW, FRIENDS)):
        status, rule, response = create(program, body, f"example-{n}")
        assert status == 201, rule
        assert rule["version"] == 1 and rule["status"] == "active" and rule["id"].startswith("rul_")
        assert rule["created_by"].startswith("admin:") and rule["name"] == body["name"]
        assert response["multiValueHeaders"]["Location"] == [f"/v1/rules/{rule['id']}"]
        assert response["multiValueHeaders"]["ETag"] == ['"1"']
        made[body["name"]] = rule
    assert made["Books count double"]["conditions"]["category"] == ["books"]
    assert made["Review bonus"]["limits"]["per_member_per_day"] == 1
    assert made["Friends"]["effect"]["referrer_points"] == 500 and made["Friends"]["effect"]["referee_points"] == 250
    # every scope reads them
    for scope in ("partner", "finance", "admin"):
        status, page, _ = call(handler, "rules/list_rules.json", program["auth"][scope], query={})
        assert status == 200 and [r["name"] for r in page["items"]] == [
            "Books count double", "Review bonus", "Friends"] and page["next_cursor"] is None
    status, page, _ = call(handler, "rules/list_rules.json", program["auth"]["partner"],
                           query={"trigger": "activity"})
    assert [r["name"] for r in page["items"]] == ["Review bonus"]
    status, first, _ = call(handler, "rules/list_rules.json", program["auth"]["partner"], query={"limit": "2"})
    assert len(first["items"]) == 2 and first["next_cursor"]
    status, rest, _ = call(handler, "rules/list_rules.json", program["auth"]["partner"],
                           query={"limit": "2", "cursor": first["next_cursor"]})
    assert [r["name"] for r in rest["items"]] == ["Friends"]
    rid = made["Review bonus"]["id"]
    status, detail, response = send(at("rules/get_rule.json", rid, auth=program["auth"]["partner"]))
    assert status == 200 and detail["effect"]["points"] == 50 and response["multiValueHeaders"]["ETag"] == ['"1"']
    assert [v["version"] for v in detail["versions"]] == [1] and detail["versions"][0]["created_at"] == detail[
        "created_at"]
    status, problem, _ = send(at("rules/get_rule.json", "rul_nothing", auth=program["auth"]["partner"]))
    assert status == 404 and problem["type"].endswith("/rule-not-found")


def test_an_idempotency_key_replays_the_first_rule_and_refuses_another_body(program):
    status, first, _ = create(program, BOOKS, "books-1")
    assert status == 201
    status, again, _ = create(program, {**BOOKS, "conditions": {"category": ["books"]}}, "books-1")
    assert status == 200 and again == first
    status, problem, _ = create(program, REVIEW, "books-1")
    assert status == 409 and problem["type"].endswith("/idempotency-conflict")
    status, page, _ = call(handler, "rules/list_rules.json", program["auth"]["admin"], query={})
    assert [r["id"] for r in page["items"]] == [first["id"]]
    event = api_event("rules/create_rule.json", auth=program["auth"]["admin"], body=BOOKS)
    event["headers"].pop("Idempotency-Key")
    event["multiValueHeaders"].pop("Idempotency-Key")
    status, problem, _ = send(event)
    assert status == 400 and problem["header"] == "Idempotency-Key"


def test_partner_and_finance_keys_cannot_write_rules(program):
    rid = create(program, BOOKS, "books")[1]["id"]
    for scope in ("partner", "finance"):
        assert create(program, REVIEW, f"review-{scope}", scope=scope)[0] == 403
        assert put(program, rid, REVIEW, scope=scope)[0] == 403
        assert send(at("rules/delete_rule.json", rid, auth=program["auth"][scope]))[0] == 403
    status, page, _ = call(handler, "rules/list_rules.json", program["auth"]["admin"], query={})
    assert [(r["id"], r["version"], r["status"]) for r in page["items"]] == [(rid, 1, "active")]


def test_a_put_is_a_new_version_effective_from_when_it_was_made(program):
    rid = create(program, BOOKS, "books")[1]["id"]
    time.sleep(0.01)
    before_put = runtime.now()
    time.sleep(0.01)
    triple = {**BOOKS, "effect": {"multiplier_bps": 30000}}
    status, rule, response = put(program, rid, triple, if_match='"1"')
    assert status == 200 and rule["version"] == 2 and rule["effect"]["multiplier_bps"] == 30000
    assert response["multiValueHeaders"]["ETag"] == ['"2"'] and rule["updated_at"] > before_put
    # the same definition again: no new version
    status, same, _ = put(program, rid, triple, if_match='"2"')
    assert status == 200 and same["version"] == 2 and same["updated_at"] == rule["updated_at"]
    # a stale If-Match: 412, nothing written
    status, problem, _ = put(program, rid, BOOKS, if_match='"1"')
    assert status == 412 and problem["current_version"] == 2
    status, detail, _ = send(at("rules/get_rule.json", rid, auth=program["auth"]["partner"]))
    assert [(v["version"], v["created_at"]) for v in detail["versions"]] == [
        (1, detail["created_at"]), (2, rule["updated_at"])]
    status, v1, _ = send(at("rules/get_rule_version.json", rid, version=1, auth=program["auth"]["finance"]))
    assert status == 200 and v1["version"] == 1 and v1["effect"]["multiplier_bps"] == 20000
    status, problem, _ = send(at("rules/get_rule_version.json", rid, version=3, auth=program["auth"]["finance"]))
    assert status == 404 and problem["type"].endswith("/rule-version-not-found")
    # a purchase that occurred before the PUT is evaluated with version 1, one after it with version 2
    rules = runtime.rules()
    old = rules.in_force(program["program_id"], before_put)
    assert [(r.id, r.version, r.effect.multiplier_bps) for r in old] == [(rid, 1, 20000)]
    new = rules.in_force(program["program_id"], rule["updated_at"])
    assert [(r.id, r.version, r.effect.multiplier_bps) for r in new] == [(rid, 2, 30000)]
    assert rules.in_force(program["program_id"], "2020-01-01T00:00:00Z") == []  # before the rule existed


def test_a_retired_rule_is_kept_and_never_in_force_again(program):
    rid = create(program, BOOKS, "books")[1]["id"]
    status, rule, _ = send(at("rules/delete_rule.json", rid, auth=program["auth"]["admin"]))
    assert status == 200 and rule["status"] == "retired" and rule["retired_at"] and rule["version"] == 1
    status, again, _ = send(at("rules/delete_rule.json", rid, auth=program["auth"]["admin"]))
    assert status == 200 and again["retired_at"] == rule["retired_at"]
    status, problem, _ = put(program, rid, {**BOOKS, "priority": 1})
    assert status == 409 and problem["type"].endswith("/rule-retired")
    status, detail, _ = send(at("rules/get_rule.json", rid, auth=program["auth"]["partner"]))
    assert status == 200 and detail["status"] == "retired" and len(detail["versions"]) == 1
    status, page, _ = call(handler, "rules/list_rules.json", program["auth"]["partner"], query={"status": "retired"})
    assert [r["id"] for r in page["items"]] == [rid]
    status, page, _ = call(handler, "rules/list_rules.json", program["auth"]["partner"], query={"status": "active"})
    assert page["items"] == []
    assert runtime.rules().in_force(program["program_id"], rule["retired_at"]) == []
    assert [r.id for r in runtime.rules().in_force(program["program_id"], rule["created_at"])] == [rid]


def test_incoherent_rules_are_422_problems_naming_why(program):
    for body, words in (
        ({**BOOKS, "effect": {"multiplier_bps": 20000, "points": 5}}, "exactly one"),
        ({**REVIEW, "conditions": {"category": "books"}}, "purchase rules only"),
        ({**BOOKS, "starts_at": "2026-12-01T00:00:00"}, "time zone"),
        ({**BOOKS, "trigger": "sometimes"}, "trigger"),
    ):
        status, problem, _ = create(program, body, f"bad-{words}")
        assert status == 422 and words in problem["detail"] + str(problem.get("errors")), problem


def _barrier_on_first_read(monkeypatch, parties):
    """Each worker thread holds on its first read of the rule until all have read it: they all read one version."""
    read = RuleStore.current
    barrier = threading.Barrier(parties, timeout=20)
    seen: set[int] = set()

    def current(self, program_id, rule_id):
        found = read(self, program_id, rule_id)
        if threading.current_thread() is not threading.main_thread() and threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            barrier.wait()
        return found

    monkeypatch.setattr(RuleStore, "current", current)


def test_concurrent_puts_without_if_match_all_land_one_version_each(program, monkeypatch):
    serialize_moto_dynamodb()  # moto's DynamoDB is not thread-safe; DynamoDB checks conditions atomically
    rid = create(program, BOOKS, "books")[1]["id"]
    _barrier_on_first_read(monkeypatch, 3)
    bodies = [{**BOOKS, "priority": n} for n in (1, 2, 3)]
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda body: put(program, rid, body), bodies))
    assert [a[0] for a in answers] == [200, 200, 200], [a[1] for a in answers]
    assert sorted(a[1]["version"] for a in answers) == [2, 3, 4]
    status, detail, _ = send(at("rules/get_rule.json", rid, auth=program["auth"]["admin"]))
    assert [v["version"] for v in detail["versions"]] == [1, 2, 3, 4]
    priorities = {send(at("rules/get_rule_version.json", rid, version=v, auth=program["auth"]["admin"]))[1]["priority"]
                  for v in (2, 3, 4)}
    assert priorities == {1, 2, 3}  # no change lost


def test_concurrent_puts_with_the_same_if_match_one_wins_the_others_are_412(program, monkeypatch):
    serialize_moto_dynamodb()  # moto's DynamoDB is not thread-safe; DynamoDB checks conditions atomically
    rid = create(program, BOOKS, "books")[1]["id"]
    _barrier_on_first_read(monkeypatch, 3)
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda n: put(program, rid, {**BOOKS, "priority": n}, if_match='"1"'), (1, 2, 3)))
    assert sorted(a[0] for a in answers) == [200, 412, 412], [a[1] for a in answers]
    status, detail, _ = send(at("rules/get_rule.json", rid, auth=program["auth"]["admin"]))
    assert detail["version"] == 2 and len(detail["versions"]) == 2


def test_concurrent_creations_under_one_key_make_one_rule(program):
    serialize_moto_dynamodb()  # moto's DynamoDB is not thread-safe; DynamoDB checks conditions atomically
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: create(program, BOOKS, "books-once"), range(5)))
    assert sorted(a[0] for a in answers) == [200, 200, 200, 200, 201], [a[1] for a in answers]
    assert len({a[1]["id"] for a in answers}) == 1
    status, page, _ = call(handler, "rules/list_rules.json", program["auth"]["admin"], query={})
    assert len(page["items"]) == 1


def test_the_audit_trail_vouches_for_every_version_and_the_retirement(program, store):
    from treue.store.audit import AuditStore
    from treue.store.items import item_key
    from treue.store.schema import rule_version_sk, rules_pk

    pid = program["program_id"]
    rid = create(program, BOOKS, "books")[1]["id"]
    assert put(program, rid, {**BOOKS, "priority": 5})[0] == 200
    assert send(at("rules/delete_rule.json", rid, auth=program["auth"]["admin"]))[0] == 200
    trail = AuditStore(store)
    trail.seal_pending(max_records=10_000)
    checked = trail.verify(pid)
    assert checked.intact and checked.subjects_checked >= 3, checked
    # a version changed after it was written is found
    store.ddb.update_item(TableName=store.table, Key=item_key(rules_pk(pid), rule_version_sk(rid, 1)),
                          UpdateExpression="SET priority = :p", ExpressionAttributeValues={":p": {"N": "99"}})
    broken = trail.verify(pid)
    assert not broken.intact and broken.broken["subject_id"] == rid, broken
