"""The earning rules as admins write them and everyone reads them (``/v1/rules``), kept as versions.

A rule is created (``POST``, version 1, active) under an ``Idempotency-Key``: the same key and body answer the
first answer again (200), the same key with another body is a 409. ``PUT`` replaces the whole definition with
a new version (never an edit in place; the same definition again writes nothing); ``If-Match: "<version>"``
refuses a stale one with a 412, and without it a change that lost a race is made again on the version that
won. ``DELETE`` retires the rule (status ``retired``, ``retired_at``): it stays readable with all its versions
and is never in force from ``retired_at`` on; retiring a retired rule answers it as it is. A retired rule takes
no new version (409).

Each change is one transaction of the rule's current item, its new version's item and an audit record
(``treue.store.rules``), which also defines which version is in force when (``RuleStore.in_force``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from treue.core.ids import new_id
from treue.core.ledger import request_fingerprint
from treue.core.statuses import RuleStatus
from treue.errors import (
    Contention,
    IdempotencyConflict,
    MalformedRequest,
    PreconditionFailed,
    RuleNotFound,
    RuleRetired,
    RuleVersionNotFound,
)
from treue.logic.rules import RuleDefinition

if TYPE_CHECKING:
    from treue.logic.ports import RuleStorePort

ACTIVE, RETIRED = RuleStatus.ACTIVE, RuleStatus.RETIRED
ATTEMPTS = 5  # reads and writes of a change without If-Match before a 503
DEFINITION = tuple(RuleDefinition.model_fields)
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # as treue.logic.rules.RuleId
STATE = ("status", "created_at", "created_by", "updated_at", "updated_by", "retired_at", "retired_by")


def _stored(definition: RuleDefinition) -> dict[str, Any]:
    """A definition as stored: JSON values, absent fields left out."""
    return definition.model_dump(mode="json", exclude_none=True)


def definition_of(item: dict[str, Any]) -> RuleDefinition:
    """The definition a stored rule or version carries (compared as definitions: ``"books"`` = ``["books"]``)."""
    return RuleDefinition.model_validate({k: v for k, v in item.items() if k in DEFINITION})


def _full(item: dict[str, Any]) -> dict[str, Any]:
    """Every field of the definition, absent ones as null (conditions, effect and limits in full)."""
    return definition_of(item).model_dump(mode="json")


def view(current: dict[str, Any]) -> dict[str, Any]:
    """A rule as it stands, as the API answers it."""
    return {"id": current["id"], "version": current["version"], **_full(current),
            **{name: current.get(name) for name in STATE},
            "updated_at": current.get("updated_at") or current["created_at"],
            "updated_by": current.get("updated_by") or current["created_by"]}


def version_view(item: dict[str, Any]) -> dict[str, Any]:
    """One stored version whole: its definition, who made it and when."""
    return {"id": item["id"], "version": item["version"], **_full(item), "created_at": item["created_at"],
            "created_by": item["created_by"]}


def summary(item: dict[str, Any]) -> dict[str, Any]:
    """A version in a rule's list of versions."""
    return {"version": item["version"], "created_at": item["created_at"], "created_by": item["created_by"],
            "starts_at": item.get("starts_at"), "ends_at": item.get("ends_at")}


def rule_id(value: str) -> str:
    """A rule id from a path, or a 404 (no rule has another form)."""
    if len(value) > 64 or not _RULE_ID.match(value):
        raise RuleNotFound(f"rule {value[:40]} does not exist")
    return value


def if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, the ETag of the answers; ``*``: any), or a 400."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or not 1 <= len(text) <= 10 or text.startswith("0"):
        raise MalformedRequest('If-Match is the ETag of GET /v1/rules/{id}, e.g. "3" (the version in quotes)',
                               header="If-Match")
    return int(text)


def require(store: RuleStorePort, program_id: str, rid: str) -> dict[str, Any]:
    found = store.current(program_id, rule_id(rid))
    if found is None:
        raise RuleNotFound(f"rule {rid[:40]} does not exist")
    return found


def create(store: RuleStorePort, program_id: str, body: RuleDefinition, idempotency_key: str, actor: str,
           now: str) -> tuple[dict[str, Any], bool]:
    """Store a new rule (version 1, active) → (its answer, whether this is a replay of an earlier request)."""
    fingerprint = request_fingerprint(_stored(body))
    current = {**_stored(body), "id": new_id("rul"), "version": 1, "status": ACTIVE, "created_at": now,
               "created_by": actor}
    answer = view(current)
    replay = store.create(program_id, current, (idempotency_key, fingerprint), answer)
    if replay is None:
        return answer, False
    if replay.fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different rule",
                                  idempotency_key=idempotency_key)
    return replay.result, True


def _stale(expected: int | None, current: dict[str, Any]) -> None:
    if expected is not None and current["version"] != expected:
        raise PreconditionFailed(
            f"If-Match names version {expected}, the current version is {current['version']}: read the rule again "
            f"(GET /v1/rules/{current['id']}) and send the change on top of it", current_version=current["version"])


def replace(store: RuleStorePort, program_id: str, rid: str, body: RuleDefinition, expected: int | None, actor: str,
            now: str) -> tuple[dict[str, Any], bool]:
    """Make ``body`` the rule's next version → (the rule as it stands, whether a version was written)."""
    for _ in range(ATTEMPTS):
        current = require(store, program_id, rid)
        _stale(expected, current)
        if current["status"] != ACTIVE:
            raise RuleRetired(f"rule {rid} was retired at {current.get('retired_at')}; create a new rule instead",
                              retired_at=current.get("retired_at"))
        if definition_of(current) == body:
            return current, False
        new = {**_stored(body), "id": current["id"], "version": current["version"] + 1, "status": ACTIVE,
               "created_at": current["created_at"], "created_by": current["created_by"], "updated_at": now,
               "updated_by": actor}
        try:
            if store.write_version(program_id, current["version"], new):
                return new, True
        except Contention:
            pass  # a concurrent transaction on the same item: read again
    raise Contention("the rule is changing concurrently; retry")


def retire(store: RuleStorePort, program_id: str, rid: str, expected: int | None, actor: str, now: str
           ) -> tuple[dict[str, Any], bool]:
    """Retire the rule → (the rule as it stands, whether this call retired it); a retired rule as it is."""
    for _ in range(ATTEMPTS):
        current = require(store, program_id, rid)
        if current["status"] == RETIRED:
            return current, False
        _stale(expected, current)
        try:
            if store.retire(program_id, current, now, actor):
                return {**current, "status": RETIRED, "retired_at": now, "retired_by": actor}, True
        except Contention:
            pass
    raise Contention("the rule is changing concurrently; retry")


def detail(store: RuleStorePort, program_id: str, rid: str) -> dict[str, Any]:
    """The rule as it stands with the list of its versions, oldest first."""
    current, versions = store.history(program_id, rule_id(rid))
    if current is None:
        raise RuleNotFound(f"rule {rid[:40]} does not exist")
    return {**view(current), "versions": [summary(v) for v in versions]}


def version(store: RuleStorePort, program_id: str, rid: str, number: int) -> dict[str, Any]:
    found = store.version(program_id, rule_id(rid), number)
    if found is None:
        current = require(store, program_id, rid)
        raise RuleVersionNotFound(f"rule {rid} has versions 1 to {current['version']}")
    return version_view(found)


def page(store: RuleStorePort, program_id: str, limit: int, cursor: str | None, status: str | None,
         trigger: str | None) -> tuple[list[dict[str, Any]], str | None]:
    items, next_cursor = store.page(program_id, limit, cursor, status, trigger)
    return [view(i) for i in items], next_cursor
