"""A program's settings as partners read them, and their changes as versions (``GET``/``PATCH /v1/program``).

A change is a JSON merge patch (RFC 7396) of the editable settings (``treue.core.programs.EDITABLE``),
applied on top of the current version (``tiers`` is replaced whole: its levels are a list) and checked as a
whole by ``Program``'s own checks. Every change that
changes something is a new version: the store writes the current settings, the version's immutable item and
its audit record in one transaction conditioned on the version read (``treue.store.programs``). With
``If-Match`` a caller who read an older version gets a 412 and nothing is written; without it a change that
lost a race is applied again on top of the version that won, so no change is lost. A patch that changes
nothing writes nothing and answers the current version.

The functions read a program at most once per ``program_cache_seconds`` (``treue.runtime.program``, 60 s by
default): a change applies to purchases accrued after that; a purchase keeps the points it was posted with.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from treue.core.memberships import parse_plans
from treue.core.programs import EDITABLE, Program
from treue.core.tiers import parse as parse_tiers
from treue.errors import (
    Contention,
    MalformedRequest,
    PreconditionFailed,
    ProgramNotFound,
    ProgramVersionNotFound,
    ValidationFailed,
)

if TYPE_CHECKING:
    from treue.logic.ports import ProgramSettingsPort
    from treue.logic.settings import ProgramPatch

ATTEMPTS = 5  # reads and writes of a change without If-Match before a 503 (each lost race is another change)
REMOVABLE = {"country": "", "markup_bps": 0, "fx_ppm": {}, "tiers": None, "pending_days": 0, "expiry": None,
             "expiry_notice_days": 30, "membership_plans": []}  # what null sets them to
# ISO 4217 currencies without cents, or with three decimals; the others have two
DECIMALS = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                             "VND", "VUV", "XAF", "XOF", "XPF"), 0),
            **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)}
_ETAG = re.compile(r'^(?:W/)?"?([1-9][0-9]{0,9})"?$')


def decimals(currency: str) -> int:
    return DECIMALS.get(currency, 2)


def _decimal(numerator: int, denominator: int, places: int) -> str:
    """numerator / denominator rounded down to ``places`` decimals, without trailing zeros."""
    value = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def points_per_unit(program: Program) -> str:
    """Points earned per 1.00 of the currency (one whole unit), as a decimal rounded down to 4 places."""
    return _decimal(program.earn_points * 10 ** decimals(program.currency), program.earn_per_minor, 4)


def point_value(program: Program) -> str:
    """What one point is worth in the currency (whole units), as a decimal rounded down to 6 places."""
    return _decimal(program.value_minor, program.value_points * 10 ** decimals(program.currency), 6)


def view(program: Program) -> dict[str, Any]:
    """The settings as ``GET /v1/program`` answers them."""
    return {
        "id": program.id,
        "name": program.name,
        "currency": program.currency,
        "country": program.country or None,
        "earn_points": program.earn_points,
        "earn_per_minor": program.earn_per_minor,
        "points_per_unit": points_per_unit(program),
        "value_points": program.value_points,
        "value_minor": program.value_minor,
        "point_value": point_value(program),
        "markup_bps": program.markup_bps,
        "fx_ppm": dict(sorted(program.fx_ppm.items())),
        "tiers": program.tiers,
        "pending_days": program.pending_days,
        "expiry": program.expiry,
        "expiry_notice_days": program.expiry_notice_days,
        "membership_plans": program.membership_plans,
        "version": program.version,
        "created_at": program.created_at,
        "updated_at": program.updated_at or program.created_at,
        "updated_by": program.updated_by or None,
    }


def version_view(item: dict[str, Any]) -> dict[str, Any]:
    """One stored version (the settings at it, who, when and what changed) as the API answers it."""
    program = Program(**{k: v for k, v in item.items() if k != "changes"})
    out = view(program)
    out["changes"] = item.get("changes") or {}
    return out


def _initial(program: Program) -> dict[str, Any]:
    """Version 1 of a program never changed (no version item exists until its first change)."""
    return {**program.__dict__, "changes": {}}


def require(store: ProgramSettingsPort, program_id: str) -> Program:
    found = store.current(program_id)
    if found is None:
        raise ProgramNotFound(f"program {program_id} does not exist")
    return found


def if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, as the ETag of the answers; ``*``: any), or a 400."""
    if value is None or value.strip() == "*":
        return None
    found = _ETAG.match(value.strip())
    if found is None:
        raise MalformedRequest('If-Match is the ETag of GET /v1/program, e.g. "3" (the version in quotes)',
                               header="If-Match")
    return int(found.group(1))


def _invalid(field: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {reason}", errors=[{"location": "body", "field": field, "reason": reason}])


def apply_patch(current: Program, patch: ProgramPatch) -> tuple[dict[str, Any], dict[str, Any]]:
    """The editable settings after ``patch`` (a merge patch on ``current``) and what changed, field by field
    as ``{"from": old, "to": new}`` (empty: nothing changes). ValidationFailed names the field and why."""
    given = patch.model_dump(exclude_unset=True)
    merged: dict[str, Any] = {name: getattr(current, name) for name in EDITABLE}
    for name, value in given.items():
        if name == "fx_ppm" and value is not None:
            rates = dict(current.fx_ppm)
            for code, rate in value.items():
                if rate is None:
                    rates.pop(code, None)
                else:
                    rates[code] = rate
            merged["fx_ppm"] = rates
        elif name == "tiers" and value is not None:  # replaced whole (not merged), normalized: benefits all shown
            try:
                merged["tiers"] = parse_tiers(value).to_json()
            except ValueError as err:  # "tiers.levels[1].threshold must be …": the field, then why
                field, _, reason = str(err).partition(" ")
                raise _invalid(field, reason) from err
        elif name == "membership_plans" and value is not None:  # replaced whole, normalized (tiers checked below)
            try:
                merged["membership_plans"] = [plan.to_json() for plan in parse_plans(value, None)]
            except ValueError as err:
                field, _, reason = str(err).partition(" ")
                raise _invalid(field, reason) from err
        elif value is None:
            if name not in REMOVABLE:
                raise _invalid(name, f"{name} cannot be removed (null); send a new value")
            merged[name] = REMOVABLE[name]
        else:
            merged[name] = value
    try:
        Program(**{**current.__dict__, **merged})
    except ValueError as err:
        reason = str(err)
        field = next((name for name in sorted(EDITABLE, key=len, reverse=True) if reason.startswith(name)), "")
        raise _invalid(field, reason) from err
    changes = {name: {"from": getattr(current, name), "to": merged[name]}
               for name in EDITABLE if merged[name] != getattr(current, name)}
    return merged, changes


def change(store: ProgramSettingsPort, program_id: str, patch: ProgramPatch, expected: int | None, actor: str,
           now: str) -> tuple[Program, bool]:
    """Apply ``patch`` as a new version → (the current settings, whether a version was written).

    ``expected`` (If-Match): the version the caller read; another current version is a 412 and writes nothing.
    Without it, a change that lost a race to another is applied again on the settings that won."""
    for _ in range(ATTEMPTS):
        current = require(store, program_id)
        if expected is not None and current.version != expected:
            raise PreconditionFailed(
                f"If-Match names version {expected}, the current version is {current.version}: read the settings "
                "again (GET /v1/program) and send the change on top of them", current_version=current.version)
        settings, changes = apply_patch(current, patch)
        if not changes:
            return current, False
        new = replace(current, **settings, version=current.version + 1, updated_at=now, updated_by=actor)
        try:
            if store.write_version(current, new, changes):
                return new, True
        except Contention:
            pass  # a concurrent transaction on the same items: read again
    raise Contention("the program's settings are changing concurrently; retry")


def versions(store: ProgramSettingsPort, program_id: str, limit: int, cursor: str | None
             ) -> tuple[list[dict[str, Any]], str | None]:
    """The settings' versions newest first, one page, and the next page's cursor."""
    current = require(store, program_id)
    if current.version == 1:  # never changed: version 1 is the current settings
        if cursor is not None:
            store.versions(program_id, limit, cursor)  # a cursor this API did not return is a 400
            return [], None
        return [version_view(_initial(current))], None
    items, next_cursor = store.versions(program_id, limit, cursor)
    return [version_view(i) for i in items], next_cursor


def version(store: ProgramSettingsPort, program_id: str, number: int) -> dict[str, Any]:
    current = require(store, program_id)
    if number == 1 and current.version == 1:
        return version_view(_initial(current))
    found = store.version(program_id, number) if number <= current.version else None
    if found is None:
        raise ProgramVersionNotFound(f"the program's settings have versions 1 to {current.version}")
    return version_view(found)
