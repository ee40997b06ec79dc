"""GET/PATCH /v1/program and the versions on moto, each call as the Program function's role allows it: one
transaction writes the current settings, the version item and the audit record; If-Match refuses a stale change;
concurrent changes without it all land, one version each."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

from infra.twin.serialize import serialize_moto_dynamodb
from tests.integration.helpers import buy, call, enroll, purchase
from treue import runtime
from treue.core import audit
from treue.handlers import program as handler
from treue.store.audit import content
from treue.store.items import from_item
from treue.store.programs import ProgramStore
from treue.store.schema import program_versions_pk

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def patch(program, body, scope="admin", if_match=None):
    headers = dict(MERGE_PATCH, **({"If-Match": if_match} if if_match is not None else {}))
    status, payload, response = call(handler, "program/patch_program.json", program["auth"][scope], body=body,
                                     headers=headers)
    return status, payload, response


def unconditional(program, body, scope="admin"):
    """A PATCH without If-Match (the sample carries one)."""
    from tests.support import LambdaContext, api_event, body_of

    event = api_event("program/patch_program.json", auth=program["auth"][scope], body=body)
    event["headers"].pop("If-Match")
    event["multiValueHeaders"].pop("If-Match")
    response = handler.handler(event, LambdaContext())
    return response["statusCode"], body_of(response)


def get(program, scope="partner"):
    status, payload, response = call(handler, "program/get_program.json", program["auth"][scope])
    return status, payload, response["multiValueHeaders"].get("ETag", [None])[0]


def versions(program, scope="finance", **query):
    return call(handler, "program/list_versions.json", program["auth"][scope], query=query)[:2]


def items_of(pid):
    """Every item of the table under the program's settings history and its audit records of program changes."""
    ddb = boto3.client("dynamodb")
    table = runtime.store().table
    found = ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                      ExpressionAttributeValues={":pk": {"S": program_versions_pk(pid)}}, ConsistentRead=True)
    history = [from_item(i) for i in found["Items"]]
    scanned = ddb.scan(TableName=table, FilterExpression="sk = :a AND #action = :u",
                       ExpressionAttributeNames={"#action": "action"},
                       ExpressionAttributeValues={":a": {"S": "AUDIT"}, ":u": {"S": "program.updated"}})
    return history, [from_item(i) for i in scanned["Items"]]


def test_a_change_is_one_transaction_of_the_current_settings_the_version_and_its_audit_record(program):
    pid = program["program_id"]
    status, before, etag = get(program)
    assert status == 200 and etag == '"1"' and before["version"] == 1 and before["earn_points"] == 1
    assert before["points_per_unit"] == "1" and before["point_value"] == "0.01" and before["currency"] == "EUR"
    status, changed, response = patch(program, {"earn_points": 2, "fx_ppm": {"USD": 920000}}, if_match='"1"')
    assert status == 200, changed
    assert response["multiValueHeaders"]["ETag"] == ['"2"']
    assert changed["version"] == 2 and changed["earn_points"] == 2 and changed["points_per_unit"] == "2"
    assert changed["fx_ppm"] == {"USD": 920000} and changed["updated_by"].startswith("admin:")
    # every key reads the change
    for scope in ("partner", "finance", "admin"):
        assert get(program, scope)[1] == {**changed, "rules": []}  # GET adds the rules in force: none here
    history, records = items_of(pid)
    assert [h["sk"] for h in history] == ["V#0000000001", "V#0000000002"]
    assert history[0]["earn_points"] == 1 and history[0]["changes"] == {}
    assert history[1]["changes"] == {"earn_points": {"from": 1, "to": 2}, "fx_ppm": {"from": {}, "to": {"USD": 920000}}}
    (record,) = records
    assert record["subject_type"] == "program" and record["subject_id"] == pid
    assert record["data"] == {"version": 2, "changes": history[1]["changes"]}
    assert (record["subject_pk"], record["subject_sk"]) == (history[1]["pk"], history[1]["sk"])
    assert record["subject_hash"] == audit.content_hash(content(history[1]))  # it vouches for the version
    assert record["scope"] == "admin"
    # the history, newest first, and one version
    status, page = versions(program)
    assert status == 200 and [v["version"] for v in page["items"]] == [2, 1] and page["next_cursor"] is None
    assert page["items"][0]["changes"]["earn_points"] == {"from": 1, "to": 2}
    status, first = call(handler, "program/get_version.json", program["auth"]["partner"])[:2]
    assert status == 200 and first["earn_points"] == 1 and first["version"] == 1


def test_if_match_a_stale_version_is_a_412_that_writes_nothing(program):
    assert patch(program, {"earn_points": 2}, if_match='"1"')[0] == 200
    status, problem, response = patch(program, {"earn_points": 5}, if_match='"1"')
    assert status == 412 and problem["type"].endswith("/precondition-failed") and problem["current_version"] == 2
    assert response["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    assert get(program)[1]["earn_points"] == 2
    assert len(items_of(program["program_id"])[0]) == 2
    status, problem, _ = patch(program, {"earn_points": 5}, if_match="version two")
    assert status == 400 and problem["header"] == "If-Match"


def test_a_patch_that_changes_nothing_answers_the_current_version_and_writes_nothing(program):
    assert patch(program, {"country": "DE"}, if_match='"1"')[0] == 200
    history = items_of(program["program_id"])
    status, same, response = patch(program, {"country": "DE", "name": "Café Treue"}, if_match='"2"')
    assert status == 200 and same["version"] == 2 and response["multiValueHeaders"]["ETag"] == ['"2"']
    assert items_of(program["program_id"]) == history


def test_two_concurrent_changes_without_if_match_both_land_as_the_next_two_versions(program, monkeypatch):
    serialize_moto_dynamodb()  # moto's DynamoDB is not thread-safe; DynamoDB checks conditions atomically
    """Both read version 1 before either writes: one transaction wins, the other is read again and applied on
    top of it; no change is lost."""
    read = ProgramStore.current
    barrier = threading.Barrier(2, timeout=20)
    first_reads: set[int] = set()

    def current(self, program_id):
        found = read(self, program_id)
        if threading.current_thread() is not threading.main_thread() and threading.get_ident() not in first_reads:
            first_reads.add(threading.get_ident())
            barrier.wait()  # both hold version 1 now
        return found

    monkeypatch.setattr(ProgramStore, "current", current)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda body: unconditional(program, body),
                                [{"earn_points": 3}, {"country": "AT"}]))
    assert sorted(a[0] for a in answers) == [200, 200], answers
    assert sorted(a[1]["version"] for a in answers) == [2, 3]
    now = get(program)[1]
    assert now["version"] == 3 and now["earn_points"] == 3 and now["country"] == "AT"
    history, records = items_of(program["program_id"])
    assert [h["version"] for h in history] == [1, 2, 3] and len(records) == 2
    assert {field for h in history for field in h["changes"]} == {"earn_points", "country"}


def test_only_admin_keys_change_settings_and_bad_values_are_422_naming_the_field(program):
    for scope in ("partner", "finance"):
        status, problem, _ = patch(program, {"earn_points": 2}, scope=scope)
        assert status == 403 and problem["status"] == 403
    status, problem, _ = patch(program, {"currency": "USD"})
    assert status == 422 and problem["errors"][0]["field"] == "currency"
    assert "not editable" in problem["errors"][0]["reason"]
    status, problem, _ = patch(program, {"earn_points": 0, "country": "Deutschland"})
    assert status == 422 and {e["field"] for e in problem["errors"]} == {"earn_points", "country"}
    status, problem, _ = patch(program, {"value_minor": None})
    assert status == 422 and problem["errors"] == [{"location": "body", "field": "value_minor",
                                                    "reason": "value_minor cannot be removed (null); send a new value"}]
    status, problem, _ = patch(program, "[1, 2]")
    assert status == 422
    assert get(program)[1]["version"] == 1 and items_of(program["program_id"]) == ([], [])


def test_versions_page_with_the_cursor_and_an_unknown_version_is_404(program):
    for points in (2, 3, 4):
        assert unconditional(program, {"earn_points": points})[0] == 200
    status, page = versions(program, limit="2")
    assert [v["version"] for v in page["items"]] == [4, 3] and page["next_cursor"]
    status, rest = versions(program, limit="2", cursor=page["next_cursor"])
    assert [v["version"] for v in rest["items"]] == [2, 1] and rest["next_cursor"] is None
    assert versions(program, cursor="not-ours")[0] == 400
    for version, expected in (("9", 404), ("0", 422), ("two", 422)):
        status, problem = call(handler, "program/get_version.json", program["auth"]["partner"],
                               path=f"/v1/program/versions/{version}", path_parameters={"version": version})[:2]
        assert status == expected, problem


def test_accruals_use_a_change_once_the_program_cache_expires_and_a_purchase_keeps_its_points(program, monkeypatch):
    auth = program["auth"]["partner"]
    mid = enroll(auth, {"email": "ada@example.com"})[1]["id"]
    assert purchase(auth, mid, buy("pos-1", 10_000))[1]["points_earned"] == 100
    assert patch(program, {"earn_points": 2}, if_match='"1"')[0] == 200
    # within program_cache_seconds the accruing function still has the settings it read
    assert purchase(auth, mid, buy("pos-2", 10_000))[1]["points_earned"] == 100
    later = time.monotonic() + runtime.settings().program_cache_seconds + 1
    monkeypatch.setattr(runtime.time, "monotonic", lambda: later)
    assert purchase(auth, mid, buy("pos-3", 10_000))[1]["points_earned"] == 200
    # a replay of the first purchase answers the points it was posted with
    assert purchase(auth, mid, buy("pos-1", 10_000))[1]["points_earned"] == 100


def test_the_settings_list_the_earning_rules_in_force_now_in_evaluation_order(program):
    from treue.handlers import rules as rules_handler

    def create(body, key):
        status, made, _ = call(rules_handler, "rules/create_rule.json", program["auth"]["admin"], body=body,
                               headers={"Idempotency-Key": key})
        assert status == 201, made
        return made["id"]

    books = create({"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
                    "effect": {"multiplier_bps": 20000}}, "books")
    review = create({"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
                     "effect": {"points": 50}, "limits": {"per_member_per_day": 1}, "priority": 5}, "review")
    create({"name": "Next year", "trigger": "purchase", "effect": {"points": 5},
            "starts_at": "2999-01-01T00:00:00Z"}, "later")
    gone = create({"name": "Retired", "trigger": "purchase", "effect": {"points": 7}}, "gone")
    status, _, _ = call(rules_handler, "rules/delete_rule.json", program["auth"]["admin"], path=f"/v1/rules/{gone}",
                        path_parameters={"rule_id": gone})
    assert status in (200, 204)
    status, settings, etag = get(program)
    assert status == 200 and etag == '"1"'
    assert [(r["id"], r["version"], r["trigger"]) for r in settings["rules"]] == [
        (review, 1, "activity"), (books, 1, "purchase")]
    assert settings["rules"][0]["limits"]["per_member_per_day"] == 1
    assert settings["rules"][1]["effect"]["multiplier_bps"] == 20000
