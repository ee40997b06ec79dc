"""Earning rules and their versions (``/v1/rules``, ``treue.logic.rule_admin``).

    pk              sk                     what
    P#<pid>#RULES   R#<rid>#C              the rule as it stands: its current version's definition, ``version``,
                                           ``status`` (active, retired), ``created_at``/``created_by`` (of version 1),
                                           ``updated_at``/``updated_by`` (of the current version), ``retired_at``/
                                           ``retired_by``; listed on the index (``P#<pid>#RULES``, ``R#<rid>``)
    P#<pid>#RULES   R#<rid>#V#<version>    one version: the whole definition, ``id``, ``version``, ``created_at``
                                           and ``created_by`` (when and by whom this version was made); never
                                           written again

Every change is one transaction of the current item (conditioned on the version and status read), the new
version's item (if any) and its audit record (``rule.created``, ``rule.updated``, ``rule.retired``), which
vouches for the item it names by its hash. A rule's creation also writes the idempotency guard of its
``Idempotency-Key`` first, with the answer a replay gets. A birthday or ``membership_years`` milestone rule's
creation or new version also lists its program for the occasions schedule (``treue.store.occasions``).

**Effective dating** (:meth:`RuleStore.in_force`): version ``v`` of a rule is in force at ``at`` when

    created_at(v) ≤ at < created_at(v + 1)       (no upper bound for the current version)
    and at < retired_at                          (when the rule is retired)
    and starts_at(v) ≤ at < ends_at(v)           (the version's own window; an absent bound is none)

so at any instant at most one version of a rule is in force, none before the rule was created, and none at
or after its retirement. Times are compared as instants (``at`` may carry any offset).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from treue.core import audit
from treue.core.statuses import RuleStatus
from treue.store.dynamodb import OnTable
from treue.store.items import decode_cursor, encode_cursor, from_item, item_key, strip_keys, to_item
from treue.store.schema import GSI, GSI_PK, GSI_SK, rule_sk, rule_version_sk, rules_keys, rules_pk
from treue.store.table import Replay, audit_put

ACTIVE, RETIRED = RuleStatus.ACTIVE, RuleStatus.RETIRED
R = TypeVar("R")  # what in_force answers per version (``treue.logic.rules.Rule``, parsed by the caller's function)
# The fields of a version item besides the definition
VERSION_FIELDS = ("id", "version", "created_at", "created_by")
# The fields of the current item besides the definition
STATE_FIELDS = ("id", "version", "status", "created_at", "created_by", "updated_at", "updated_by", "retired_at",
                "retired_by")


def instant(value: str) -> datetime:
    """An ISO 8601 time as an instant (``Z`` or an offset; a time without one is read as UTC)."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _within(version: dict[str, Any], when: datetime) -> bool:
    """The version's own window: starts_at ≤ when < ends_at (an absent bound is none)."""
    starts, ends = version.get("starts_at"), version.get("ends_at")
    return (starts is None or instant(starts) <= when) and (ends is None or when < instant(ends))


def version_of(current: dict[str, Any]) -> dict[str, Any]:
    """The version item's data of the rule as it stands (its definition, id, version, who and when)."""
    data = {k: v for k, v in current.items() if k not in STATE_FIELDS}
    data.update(id=current["id"], version=current["version"],
                created_at=current.get("updated_at") or current["created_at"],
                created_by=current.get("updated_by") or current["created_by"])
    return data


class RuleStore(OnTable, Generic[R]):
    """``parse`` makes a version item (its definition, ``id`` and ``version``) into what :meth:`in_force` answers:
    ``treue.logic.rules.Rule.model_validate`` in the functions (``treue.runtime.rules``); the store itself
    knows the items only."""

    def __init__(self, store: Any, parse: Callable[[dict[str, Any]], R]) -> None:
        super().__init__(store)
        self.parse = parse

    # ------------------------------------------------------------ writes

    def create(self, program_id: str, current: dict[str, Any], idempotency: tuple[str, str],
               answer: dict[str, Any]) -> Replay | None:
        """Store a new rule (``current``: version 1, active) with its version item and audit record, guarded by
        ``idempotency`` (key, fingerprint): None when written, the first request's Replay when the key was used."""
        key, fingerprint = idempotency
        rid = current["id"]
        data = version_of(current)
        record = audit.new_record(program_id, "rule.created", "rule", rid, current["created_at"],
                                  {"version": 1, "name": current["name"], "trigger": current["trigger"]},
                                  subject_hash=audit.content_hash(data))
        items = [
            self.store._idem_put(program_id, "rule", key, fingerprint, answer, current["created_at"]),
            self._put_new(rules_pk(program_id), rule_sk(rid), {**rules_keys(program_id, rid), **current}),
            self._put_new(rules_pk(program_id), rule_version_sk(rid, 1), data),
            audit_put(self.table, record, (rules_pk(program_id), rule_version_sk(rid, 1))),
        ]
        items += self._occasions_marker(program_id, current, current["created_at"])
        return self.store.transact_guarded(items, program_id, "rule", key)

    def write_version(self, program_id: str, read_version: int, new: dict[str, Any]) -> bool:
        """Make ``new`` (version ``read_version + 1``) the rule as it stands, with its version item and audit
        record; False when the rule is no longer active at ``read_version`` (nothing was written)."""
        rid, version = new["id"], new["version"]
        if version != read_version + 1:
            raise ValueError("a change writes the version after the one it read")
        data = version_of(new)
        record = audit.new_record(program_id, "rule.updated", "rule", rid, new["updated_at"],
                                  {"version": version, "name": new["name"]}, subject_hash=audit.content_hash(data))
        put = self._put(rules_pk(program_id), rule_sk(rid), {**rules_keys(program_id, rid), **new})
        put["Put"].update(ConditionExpression="#v = :read AND #s = :active",
                          ExpressionAttributeNames={"#v": "version", "#s": "status"},
                          ExpressionAttributeValues={":read": {"N": str(read_version)}, ":active": {"S": ACTIVE}})
        items = [put, self._put_new(rules_pk(program_id), rule_version_sk(rid, version), data),
                 audit_put(self.table, record, (rules_pk(program_id), rule_version_sk(rid, version)))]
        items += self._occasions_marker(program_id, new, new["updated_at"])
        return self._first(items)

    def retire(self, program_id: str, read: dict[str, Any], at: str, actor: str) -> bool:
        """Retire the rule ``read`` (active, at its version): status retired, ``retired_at``/``retired_by``, with
        the audit record; False when it is no longer active at that version (nothing was written)."""
        rid = read["id"]
        retired = {**read, "status": RETIRED, "retired_at": at, "retired_by": actor}
        record = audit.new_record(program_id, "rule.retired", "rule", rid, at, {"version": read["version"]},
                                  subject_hash=audit.content_hash(retired))
        put = self._put(rules_pk(program_id), rule_sk(rid), {**rules_keys(program_id, rid), **retired})
        put["Put"].update(ConditionExpression="#v = :read AND #s = :active",
                          ExpressionAttributeNames={"#v": "version", "#s": "status"},
                          ExpressionAttributeValues={":read": {"N": str(read["version"])}, ":active": {"S": ACTIVE}})
        return self._first([put, audit_put(self.table, record, (rules_pk(program_id), rule_sk(rid)))])

    def _occasions_marker(self, program_id: str, rule: dict[str, Any], at: str) -> list[dict[str, Any]]:
        """The item listing the program for the occasions schedule when ``rule`` is one it pays (birthday,
        membership anniversary: ``treue.store.occasions``); loaded by rule writes only, never by accrual."""
        from treue.store.occasions import marker_put, occasional

        return [marker_put(self.table, program_id, at)] if occasional(rule) else []

    def _first(self, items: list[dict[str, Any]]) -> bool:
        return self.store.transact_first(items)  # False: the rule changed since it was read

    def _put(self, pk: str, sk: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self.table, "Item": {**item_key(pk, sk), **to_item(data)}}}

    def _put_new(self, pk: str, sk: str, data: dict[str, Any]) -> dict[str, Any]:
        put = self._put(pk, sk, data)
        put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        return put

    # ------------------------------------------------------------ reads

    def current(self, program_id: str, rule_id: str) -> dict[str, Any] | None:
        """The rule as it stands, read consistently (the version a change is conditioned on)."""
        out = self.ddb.get_item(TableName=self.table, Key=item_key(rules_pk(program_id), rule_sk(rule_id)),
                                ConsistentRead=True)
        return strip_keys(from_item(out["Item"]), index=True) if "Item" in out else None

    def version(self, program_id: str, rule_id: str, version: int) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table,
                                Key=item_key(rules_pk(program_id), rule_version_sk(rule_id, version)))
        return strip_keys(from_item(out["Item"])) if "Item" in out else None

    def history(self, program_id: str, rule_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The rule as it stands and all its versions, oldest first (one query of its items)."""
        items = self.query_prefix(rules_pk(program_id), f"R#{rule_id}#")
        current = next((i for i in items if i["sk"] == rule_sk(rule_id)), None)
        versions = [strip_keys(i) for i in items if i["sk"] != rule_sk(rule_id)]
        return (strip_keys(current, index=True) if current else None), versions

    def page(self, program_id: str, limit: int, cursor: str | None, status: str | None = None,
             trigger: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Rules as they stand in rule id order (oldest first: ids are time-ordered), those of ``status`` and
        ``trigger`` when given, one page (up to ``limit``), and the cursor of the next (None on the last)."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":pk": {"S": rules_keys(program_id, "")[GSI_PK]}}
        filters = []
        if status is not None:
            names["#s"], values[":s"] = "status", {"S": status}
            filters.append("#s = :s")
        if trigger is not None:
            names["#t"], values[":t"] = "trigger", {"S": trigger}
            filters.append("#t = :t")
        after = decode_cursor(cursor, "R#") if cursor else None
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            params: dict[str, Any] = {"TableName": self.table, "IndexName": GSI,
                                      "KeyConditionExpression": f"{GSI_PK} = :pk", "ExpressionAttributeValues": values,
                                      "Limit": limit - len(found)}
            if filters:
                params.update(FilterExpression=" AND ".join(filters), ExpressionAttributeNames=names)
            if after:
                rid = after[2:]
                params["ExclusiveStartKey"] = {**item_key(rules_pk(program_id), rule_sk(rid)),
                                               GSI_PK: values[":pk"], GSI_SK: {"S": after}}
            out = self.ddb.query(**params)
            items = [from_item(i) for i in out.get("Items", [])]
            found.extend(items)
            last = out.get("LastEvaluatedKey")
            if last is None:
                return [strip_keys(i, index=True) for i in found], None
            after = last[GSI_SK]["S"]
        return [strip_keys(i, index=True) for i in found], encode_cursor(found[-1][GSI_SK])

    def in_force(self, program_id: str, at: str) -> list[R]:
        """The rule versions in force at ``at`` (see the module's docstring), at most one per rule, in evaluation
        order (priority descending, then rule id), each parsed: what ``treue.logic.earning.evaluate`` takes."""
        when = instant(at)
        states: dict[str, dict[str, Any]] = {}
        versions: dict[str, list[dict[str, Any]]] = {}
        for item in self.query_prefix(rules_pk(program_id), "R#"):
            rid = item["id"]
            if item["sk"] == rule_sk(rid):
                states[rid] = item
            else:
                versions.setdefault(rid, []).append(item)
        chosen: list[dict[str, Any]] = []
        for rid, state in states.items():
            if state.get("retired_at") and when >= instant(state["retired_at"]):
                continue
            made = sorted(versions.get(rid, []), key=lambda v: v["version"])
            for this, after in zip(made, [*made[1:], None], strict=True):
                if instant(this["created_at"]) <= when and (after is None or when < instant(after["created_at"])):
                    if _within(this, when):
                        chosen.append(this)
                    break
        chosen.sort(key=lambda v: (-v.get("priority", 0), v["id"]))
        return [self.parse({k: v for k, v in strip_keys(item).items() if k not in ("created_at", "created_by")})
                for item in chosen]

