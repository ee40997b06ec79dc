"""The rules' store on moto: each change is one transaction of the current item, the version item and the audit
record; ``in_force`` picks, per rule, the version in force at a time (effective dating across versions and
retirement, intersected with the version's own window)."""

from __future__ import annotations

import boto3
import pytest

from treue import runtime
from treue.core import audit
from treue.logic.rules import Rule, RuleDefinition
from treue.store.audit import content
from treue.store.items import from_item
from treue.store.rules import RuleStore, version_of
from treue.store.schema import rule_sk, rules_pk

BOOKS = {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
         "effect": {"multiplier_bps": 20000}}
REVIEW = {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
          "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}


def stored(rule_id, body, version, at, by="admin:key", created=None):
    definition = RuleDefinition.model_validate(body).model_dump(mode="json", exclude_none=True)
    first = created or at
    return {**definition, "id": rule_id, "version": version, "status": "active", "created_at": first,
            "created_by": by, **({"updated_at": at, "updated_by": by} if version > 1 else {})}


@pytest.fixture
def rules(store):
    return RuleStore(store, Rule.model_validate)


def items(pid):
    ddb = boto3.client("dynamodb")
    table = runtime.store().table
    out = ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={":pk": {"S": rules_pk(pid)}}, ConsistentRead=True)
    scanned = ddb.scan(TableName=table, FilterExpression="sk = :a AND subject_type = :r",
                       ExpressionAttributeValues={":a": {"S": "AUDIT"}, ":r": {"S": "rule"}})
    return [from_item(i) for i in out["Items"]], sorted((from_item(i) for i in scanned["Items"]),
                                                        key=lambda r: r["data"]["version"])


def test_creating_writes_the_rule_its_first_version_and_an_audit_record_once_per_key(program, rules):
    pid = program["program_id"]
    current = stored("rul_books", BOOKS, 1, "2026-12-01T10:00:00.000Z")
    answer = {"id": "rul_books", "version": 1}
    assert rules.create(pid, current, ("key-1", "fp-1"), answer) is None
    written, records = items(pid)
    assert [i["sk"] for i in written] == ["R#rul_books#C", "R#rul_books#V#0000000001"]
    assert written[0]["status"] == "active" and written[0]["gsi1pk"] == f"P#{pid}#RULES"
    version = written[1]
    assert version["created_at"] == "2026-12-01T10:00:00.000Z" and version["conditions"] == {"category": ["books"]}
    (record,) = records
    assert record["action"] == "rule.created" and record["subject_id"] == "rul_books"
    assert (record["subject_pk"], record["subject_sk"]) == (version["pk"], version["sk"])
    assert record["subject_hash"] == audit.content_hash(content(version))
    # the same key again: nothing written, the first answer
    again = stored("rul_other", BOOKS, 1, "2026-12-01T10:00:01.000Z")
    replay = rules.create(pid, again, ("key-1", "fp-2"), {"id": "rul_other", "version": 1})
    assert replay is not None and replay.result == answer and replay.fingerprint == "fp-1"
    assert len(items(pid)[0]) == 2 and rules.current(pid, "rul_other") is None


def test_a_new_version_is_conditioned_on_the_version_read_and_keeps_the_old_one(program, rules):
    pid = program["program_id"]
    t1, t2 = "2026-12-01T10:00:00.000Z", "2026-12-02T10:00:00.000Z"
    rules.create(pid, stored("rul_a", BOOKS, 1, t1), ("k", "f"), {})
    v2 = stored("rul_a", {**BOOKS, "effect": {"multiplier_bps": 30000}}, 2, t2, created=t1)
    assert rules.write_version(pid, 1, v2) is True
    assert rules.write_version(pid, 1, v2) is False  # stale: version 2 is there
    current, versions = rules.history(pid, "rul_a")
    assert current["version"] == 2 and current["effect"] == {"multiplier_bps": 30000}
    assert current["created_at"] == t1 and current["updated_at"] == t2
    assert [(v["version"], v["created_at"], v["effect"]["multiplier_bps"]) for v in versions] == [
        (1, t1, 20000), (2, t2, 30000)]
    assert rules.version(pid, "rul_a", 1)["effect"] == {"multiplier_bps": 20000}
    _, records = items(pid)
    assert [r["action"] for r in records] == ["rule.created", "rule.updated"]
    assert records[1]["subject_hash"] == audit.content_hash(version_of(v2))
    # retiring is conditioned the same way, and a retired rule takes no new version
    assert rules.retire(pid, rules.current(pid, "rul_a"), "2026-12-03T10:00:00.000Z", "admin:key") is True
    assert rules.retire(pid, current, "2026-12-03T11:00:00.000Z", "admin:key") is False
    assert rules.current(pid, "rul_a")["retired_at"] == "2026-12-03T10:00:00.000Z"
    assert rules.write_version(pid, 2, {**v2, "version": 3}) is False
    assert [r["action"] for r in items(pid)[1]] == ["rule.created", "rule.updated", "rule.retired"]


def test_in_force_picks_the_version_of_the_time_and_none_before_creation_or_after_retirement(program, rules):
    pid = program["program_id"]
    t1, t2, t3 = "2026-12-01T10:00:00.000Z", "2026-12-02T10:00:00.000Z", "2026-12-03T10:00:00.000Z"
    rules.create(pid, stored("rul_a", BOOKS, 1, t1), ("k1", "f"), {})
    rules.create(pid, stored("rul_b", {**REVIEW, "priority": 5}, 1, t1), ("k2", "f"), {})
    rules.write_version(pid, 1, stored("rul_a", {**BOOKS, "effect": {"multiplier_bps": 30000}}, 2, t2, created=t1))

    def seen(at):
        return [(r.id, r.version) for r in rules.in_force(pid, at)]

    assert seen("2026-12-01T09:59:59.999Z") == []
    assert seen(t1) == [("rul_b", 1), ("rul_a", 1)]  # priority first
    assert seen("2026-12-02T11:59:59+02:00") == [("rul_b", 1), ("rul_a", 1)]  # 09:59:59Z: before version 2
    assert seen("2026-12-02T12:00:00+02:00") == [("rul_b", 1), ("rul_a", 2)]
    assert rules.in_force(pid, t2)[1].effect.multiplier_bps == 30000
    rules.retire(pid, rules.current(pid, "rul_a"), t3, "admin:key")
    assert seen("2026-12-03T09:59:59.999Z") == [("rul_b", 1), ("rul_a", 2)]
    assert seen(t3) == [("rul_b", 1)] and seen("2027-01-01T00:00:00Z") == [("rul_b", 1)]
    # the version's own window narrows its time: version 2 of rul_b runs 1 to 10 January only
    window = {**REVIEW, "starts_at": "2027-01-01T00:00:00Z", "ends_at": "2027-01-10T00:00:00Z"}
    rules.write_version(pid, 1, stored("rul_b", window, 2, "2026-12-20T00:00:00.000Z", created=t1))
    assert seen("2026-12-25T00:00:00Z") == []
    assert seen("2027-01-05T00:00:00Z") == [("rul_b", 2)]
    assert seen("2027-01-10T00:00:00Z") == []
    assert rules.in_force("other-program", t2) == []


def test_listing_pages_filters_and_keys(program, rules):
    pid = program["program_id"]
    for n in range(5):
        body = REVIEW if n % 2 else BOOKS
        rules.create(pid, stored(f"rul_{n}", body, 1, f"2026-12-01T10:00:0{n}.000Z"), (f"k{n}", "f"), {})
    rules.retire(pid, rules.current(pid, "rul_3"), "2026-12-02T00:00:00.000Z", "admin:key")
    page, cursor = rules.page(pid, 2, None)
    assert [r["id"] for r in page] == ["rul_0", "rul_1"] and cursor
    assert "gsi1pk" not in page[0] and "pk" not in page[0]
    page, cursor = rules.page(pid, 2, cursor)
    assert [r["id"] for r in page] == ["rul_2", "rul_3"]
    assert [r["id"] for r in rules.page(pid, 2, cursor)[0]] == ["rul_4"]
    assert [r["id"] for r in rules.page(pid, 10, None, status="active", trigger="activity")[0]] == ["rul_1"]
    assert [r["id"] for r in rules.page(pid, 10, None, status="retired")[0]] == ["rul_3"]
    assert [r["id"] for r in rules.page(pid, 1, None, trigger="purchase")[0]] == ["rul_0"]
    assert rule_sk("rul_0") == "R#rul_0#C"
