"""The rules API's logic (treue.logic.rule_admin): creation under an Idempotency-Key, a PUT as a new version (the
same definition writes nothing), If-Match, lost races, retiring (twice is one retirement), versions."""

from __future__ import annotations

from typing import Any

import pytest

from treue.errors import (
    Contention,
    IdempotencyConflict,
    MalformedRequest,
    PreconditionFailed,
    RuleNotFound,
    RuleRetired,
    RuleVersionNotFound,
)
from treue.logic import rule_admin
from treue.logic.rules import RuleDefinition
from treue.store.rules import version_of
from treue.store.table import Replay

PID = "prg_1"
T1, T2, T3 = "2026-12-01T10:00:00.000Z", "2026-12-02T10:00:00.000Z", "2026-12-03T10:00:00.000Z"
BOOKS = RuleDefinition.model_validate({"name": "Books count double", "trigger": "purchase",
                                       "conditions": {"category": "books"}, "effect": {"multiplier_bps": 20000}})
TRIPLE = BOOKS.model_copy(update={"effect": BOOKS.effect.model_copy(update={"multiplier_bps": 30000})})


class Rules:
    """An in-memory RuleStorePort: the conditions of the store's transactions (the version and status read, one
    guard per key). ``race`` lands before a write (another change winning)."""

    def __init__(self) -> None:
        self.rules: dict[str, dict[str, Any]] = {}
        self.versions: dict[tuple[str, int], dict[str, Any]] = {}
        self.guards: dict[str, Replay] = {}
        self.writes = 0
        self.race: list[dict[str, Any]] = []

    def create(self, program_id, current, idempotency, answer):
        key, fingerprint = idempotency
        if key in self.guards:
            return self.guards[key]
        self.guards[key] = Replay(fingerprint, answer)
        self._land(current)
        return None

    def _land(self, current):
        self.writes += 1
        self.rules[current["id"]] = dict(current)
        self.versions[current["id"], current["version"]] = version_of(current)

    def write_version(self, program_id, read_version, new):
        if self.race:
            self._land(self.race.pop(0))
        now = self.rules[new["id"]]
        if now["version"] != read_version or now["status"] != "active":
            return False
        self._land(new)
        return True

    def retire(self, program_id, read, at, actor):
        if self.race:
            self._land(self.race.pop(0))
        now = self.rules[read["id"]]
        if now["version"] != read["version"] or now["status"] != "active":
            return False
        self.writes += 1
        self.rules[read["id"]] = {**now, "status": "retired", "retired_at": at, "retired_by": actor}
        return True

    def current(self, program_id, rule_id):
        return dict(self.rules[rule_id]) if rule_id in self.rules else None

    def version(self, program_id, rule_id, version):
        return self.versions.get((rule_id, version))

    def history(self, program_id, rule_id):
        return self.current(program_id, rule_id), [v for (rid, _), v in sorted(self.versions.items()) if rid == rule_id]

    def page(self, program_id, limit, cursor, status=None, trigger=None):
        found = [r for _, r in sorted(self.rules.items()) if status in (None, r["status"])
                 and trigger in (None, r["trigger"])]
        return found[:limit], None


@pytest.fixture
def rules():
    return Rules()


def created(rules, body=BOOKS, key="k-1"):
    rule, replayed = rule_admin.create(rules, PID, body, key, "admin:key_1", T1)
    assert not replayed
    return rule


def test_a_created_rule_is_version_1_active_with_its_whole_definition(rules):
    rule = created(rules)
    assert rule["id"].startswith("rul_") and rule["version"] == 1 and rule["status"] == "active"
    assert rule["name"] == "Books count double" and rule["trigger"] == "purchase"
    assert rule["conditions"]["category"] == ["books"] and rule["conditions"]["sku"] is None
    assert rule["effect"]["multiplier_bps"] == 20000 and rule["effect"]["points"] is None
    assert rule["priority"] == 0 and rule["stackable"] is True and rule["starts_at"] is None
    assert (rule["created_at"], rule["created_by"]) == (T1, "admin:key_1")
    assert (rule["updated_at"], rule["updated_by"]) == (T1, "admin:key_1") and rule["retired_at"] is None
    assert rules.writes == 1


def test_the_same_key_and_body_answer_the_first_rule_and_another_body_is_a_conflict(rules):
    first = created(rules)
    again, replayed = rule_admin.create(rules, PID, RuleDefinition.model_validate(
        {"name": "Books count double", "trigger": "purchase", "conditions": {"category": ["books"]},
         "effect": {"multiplier_bps": 20000}}), "k-1", "admin:key_2", T2)
    assert replayed and again == first and rules.writes == 1  # "books" and ["books"] are one definition
    with pytest.raises(IdempotencyConflict):
        rule_admin.create(rules, PID, TRIPLE, "k-1", "admin:key_1", T2)
    assert len(rules.rules) == 1
    other, replayed = rule_admin.create(rules, PID, BOOKS, "k-2", "admin:key_1", T2)
    assert not replayed and other["id"] != first["id"]  # another key: another rule


def test_a_put_is_a_new_version_and_the_old_one_stays(rules):
    rid = created(rules)["id"]
    rule, written = rule_admin.replace(rules, PID, rid, TRIPLE, None, "admin:key_2", T2)
    assert written and rule["version"] == 2 and rule["effect"]["multiplier_bps"] == 30000
    assert (rule["created_at"], rule["updated_at"], rule["updated_by"]) == (T1, T2, "admin:key_2")
    assert rule_admin.version(rules, PID, rid, 1)["effect"]["multiplier_bps"] == 20000
    assert rule_admin.version(rules, PID, rid, 2)["created_at"] == T2
    detail = rule_admin.detail(rules, PID, rid)
    assert detail["version"] == 2 and [(v["version"], v["created_at"], v["created_by"]) for v in detail["versions"]] \
        == [(1, T1, "admin:key_1"), (2, T2, "admin:key_2")]
    with pytest.raises(RuleVersionNotFound):
        rule_admin.version(rules, PID, rid, 3)


def test_the_same_definition_again_writes_nothing(rules):
    rid = created(rules)["id"]
    rule, written = rule_admin.replace(rules, PID, rid, BOOKS, 1, "admin:key_2", T2)
    assert not written and rule["version"] == 1 and rules.writes == 1


def test_if_match_a_stale_version_is_a_412_and_writes_nothing(rules):
    rid = created(rules)["id"]
    rule_admin.replace(rules, PID, rid, TRIPLE, 1, "admin:key_1", T2)
    with pytest.raises(PreconditionFailed) as stale:
        rule_admin.replace(rules, PID, rid, BOOKS, 1, "admin:key_1", T3)
    assert stale.value.extra["current_version"] == 2 and rules.rules[rid]["version"] == 2
    with pytest.raises(PreconditionFailed):
        rule_admin.retire(rules, PID, rid, 1, "admin:key_1", T3)
    assert rules.rules[rid]["status"] == "active"
    assert rule_admin.if_match('"2"') == 2 and rule_admin.if_match('W/"2"') == 2 and rule_admin.if_match("*") is None
    for bad in ('"two"', '"0"', '"01"', '"12345678901"'):
        with pytest.raises(MalformedRequest):
            rule_admin.if_match(bad)


def test_without_if_match_a_change_that_lost_a_race_is_made_on_the_version_that_won(rules):
    first = created(rules)
    rid = first["id"]
    winner = {**first, **TRIPLE.model_dump(mode="json", exclude_none=True), "version": 2, "updated_at": T2}
    rules.race.append(winner)
    ten = BOOKS.model_copy(update={"priority": 10})
    rule, written = rule_admin.replace(rules, PID, rid, ten, None, "admin:key_1", T3)
    assert written and rule["version"] == 3 and rule["priority"] == 10
    assert [v for (r, v) in rules.versions if r == rid] == [1, 2, 3]


def test_retiring_keeps_the_rule_and_twice_is_one_retirement(rules):
    rid = created(rules)["id"]
    rule, retired = rule_admin.retire(rules, PID, rid, None, "admin:key_1", T2)
    assert retired and rule["status"] == "retired" and rule["retired_at"] == T2 and rule["retired_by"] == "admin:key_1"
    again, retired = rule_admin.retire(rules, PID, rid, 1, "admin:key_2", T3)
    assert not retired and again["retired_at"] == T2 and rules.writes == 2
    assert rule_admin.view(again)["status"] == "retired"
    with pytest.raises(RuleRetired):
        rule_admin.replace(rules, PID, rid, TRIPLE, None, "admin:key_1", T3)
    assert rule_admin.detail(rules, PID, rid)["versions"][0]["version"] == 1  # kept with its history


def test_a_retirement_that_lost_a_race_to_a_put_retires_the_new_version(rules):
    first = created(rules)
    rules.race.append({**first, "version": 2, "updated_at": T2})
    rule, retired = rule_admin.retire(rules, PID, first["id"], None, "admin:key_1", T3)
    assert retired and rule["version"] == 2 and rule["status"] == "retired"


def test_unknown_and_malformed_rule_ids_are_not_found(rules):
    for rid in ("rul_nope", "../etc", "a" * 65, "rul#1"):
        with pytest.raises(RuleNotFound):
            rule_admin.detail(rules, PID, rid)
        with pytest.raises(RuleNotFound):
            rule_admin.replace(rules, PID, rid, BOOKS, None, "admin:key_1", T2)
        with pytest.raises(RuleNotFound):
            rule_admin.retire(rules, PID, rid, None, "admin:key_1", T2)
        with pytest.raises(RuleNotFound):
            rule_admin.version(rules, PID, rid, 1)


def test_a_store_that_keeps_losing_is_a_contention(rules):
    rid = created(rules)["id"]

    class Losing(Rules):
        def write_version(self, program_id, read_version, new):
            return False

    losing = Losing()
    losing.rules, losing.versions = rules.rules, rules.versions
    with pytest.raises(Contention):
        rule_admin.replace(losing, PID, rid, TRIPLE, None, "admin:key_1", T2)


def test_the_list_answers_rules_as_they_stand_by_status_and_trigger(rules):
    books = created(rules)
    review = created(rules, RuleDefinition.model_validate(
        {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
         "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}), key="k-2")
    rule_admin.retire(rules, PID, books["id"], None, "admin:key_1", T2)
    items, _ = rule_admin.page(rules, PID, 10, None, "active", None)
    assert [i["id"] for i in items] == [review["id"]] and items[0]["limits"]["per_member_per_day"] == 1
    items, _ = rule_admin.page(rules, PID, 10, None, None, "purchase")
    assert [(i["id"], i["status"]) for i in items] == [(books["id"], "retired")]
