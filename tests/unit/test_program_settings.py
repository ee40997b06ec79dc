"""The program's settings as partners read them and their changes as versions (treue.logic.program): the
merge patch rules, versioning, the no-op patch, invalid values, the fields that are not editable, If-Match."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from treue.core.programs import Program
from treue.errors import Contention, MalformedRequest, PreconditionFailed, ProgramVersionNotFound, ValidationFailed
from treue.logic import program
from treue.logic.settings import ProgramPatch

NOW = "2026-12-03T10:00:00Z"
CREATED = Program(id="prg_1", name="Café Treue", currency="EUR", created_at="2026-01-01T00:00:00Z", country="DE",
                  fx_ppm={"USD": 920000, "GBP": 1150000})


class Settings:
    """An in-memory ProgramSettingsPort: the current program and the version items, the condition on the
    version read as the store's transaction has it. ``race`` runs before a write (another change landing)."""

    def __init__(self, current: Program | None = CREATED) -> None:
        self.current_program = current
        self.items: dict[int, dict[str, Any]] = {}
        self.writes = 0
        self.race: list[Program] = []

    def current(self, program_id: str) -> Program | None:
        return self.current_program if self.current_program and self.current_program.id == program_id else None

    def write_version(self, read: Program, new: Program, changes: dict[str, Any]) -> bool:
        if self.race:
            self._land(self.race.pop(0), {"name": {"from": "?", "to": "?"}})
        assert self.current_program is not None
        if self.current_program.version != read.version:
            return False
        if read.version == 1:
            self.items[1] = {**read.__dict__, "changes": {}}
        self._land(new, changes)
        return True

    def _land(self, new: Program, changes: dict[str, Any]) -> None:
        self.writes += 1
        self.items[new.version] = {**new.__dict__, "changes": changes}
        self.current_program = new

    def version(self, program_id: str, version: int) -> dict[str, Any] | None:
        return self.items.get(version)

    def versions(self, program_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        ordered = sorted(self.items, reverse=True)
        start = int(cursor) if cursor else 0
        page = ordered[start:start + limit]
        return [self.items[v] for v in page], (str(start + limit) if start + limit < len(ordered) else None)


def patch(**fields: Any) -> ProgramPatch:
    return ProgramPatch.model_validate(fields)


# ---------------------------------------------------------------- the merge patch


def test_a_field_left_out_keeps_its_value_and_a_given_one_replaces_it():
    settings, changes = program.apply_patch(CREATED, patch(earn_points=3, name="Treue Plus"))
    assert settings == {"name": "Treue Plus", "country": "DE", "earn_points": 3, "earn_per_minor": 100,
                        "value_points": 100, "value_minor": 100, "markup_bps": 0,
                        "fx_ppm": {"USD": 920000, "GBP": 1150000}, "tiers": None, "pending_days": 0, "expiry": None,
                        "expiry_notice_days": 30, "membership_plans": []}
    assert changes == {"name": {"from": "Café Treue", "to": "Treue Plus"}, "earn_points": {"from": 1, "to": 3}}


def test_fx_rates_are_merged_a_null_rate_removes_it_and_a_null_map_removes_them_all():
    settings, changes = program.apply_patch(CREATED, patch(fx_ppm={"CHF": 1050000, "GBP": None, "USD": 930000}))
    assert settings["fx_ppm"] == {"USD": 930000, "CHF": 1050000}
    assert changes == {"fx_ppm": {"from": {"USD": 920000, "GBP": 1150000},
                                  "to": {"USD": 930000, "CHF": 1050000}}}
    assert program.apply_patch(CREATED, patch(fx_ppm=None))[0]["fx_ppm"] == {}
    assert program.apply_patch(CREATED, patch(fx_ppm={"JPY": None}))[1] == {}  # removing what is not there


def test_null_removes_the_country_and_the_markup_but_no_other_setting():
    settings, changes = program.apply_patch(replace(CREATED, markup_bps=250), patch(country=None, markup_bps=None))
    assert (settings["country"], settings["markup_bps"]) == ("", 0)
    assert changes == {"country": {"from": "DE", "to": ""}, "markup_bps": {"from": 250, "to": 0}}
    for name in ("name", "earn_points", "earn_per_minor", "value_points", "value_minor"):
        with pytest.raises(ValidationFailed) as refused:
            program.apply_patch(CREATED, patch(**{name: None}))
        assert refused.value.extra["errors"] == [{"location": "body", "field": name,
                                                  "reason": f"{name} cannot be removed (null); send a new value"}]


def test_a_patch_that_changes_nothing_has_no_changes():
    assert program.apply_patch(CREATED, patch())[1] == {}
    assert program.apply_patch(CREATED, patch(name="Café Treue", country="DE", fx_ppm={"USD": 920000}))[1] == {}


@pytest.mark.parametrize(("body", "field"), [
    ({"earn_points": 0}, "earn_points"),
    ({"earn_per_minor": -100}, "earn_per_minor"),
    ({"value_points": "100"}, "value_points"),  # strict: a string is no integer
    ({"value_minor": 1.5}, "value_minor"),
    ({"markup_bps": 10_001}, "markup_bps"),
    ({"country": "Germany"}, "country"),
    ({"fx_ppm": {"usd": 920000}}, "fx_ppm.usd.[key]"),
    ({"fx_ppm": {"USD": 0}}, "fx_ppm.USD"),
    ({"name": ""}, "name"),
    ({"tiers": []}, "tiers"),  # nothing else is a setting (yet)
])
def test_an_invalid_value_is_refused_naming_its_field(body, field):
    with pytest.raises(ValidationError) as refused:
        ProgramPatch.model_validate(body)
    assert [".".join(map(str, e["loc"])) for e in refused.value.errors()] == [field]


@pytest.mark.parametrize(("name", "reason"), [("id", "id is not editable"), ("currency", "currency is not editable")])
@pytest.mark.parametrize("value", ["USD", None, "EUR"])
def test_id_and_currency_are_not_editable_even_as_they_are(name, reason, value):
    with pytest.raises(ValidationError) as refused:
        ProgramPatch.model_validate({name: value})
    (error,) = refused.value.errors()
    assert error["loc"] == (name,) and reason in error["msg"]


def test_the_programs_own_checks_refuse_what_the_model_let_through():
    """The patch is checked as a whole by Program: a value the model did not check is still refused, by field."""
    with pytest.raises(ValidationFailed) as refused:
        program.apply_patch(CREATED, ProgramPatch.model_construct(markup_bps=20_000, _fields_set={"markup_bps"}))
    assert refused.value.extra["errors"][0]["field"] == "markup_bps"


# ---------------------------------------------------------------- versions


def test_each_change_is_a_new_version_with_who_when_and_what_and_version_1_is_kept():
    store = Settings()
    first, written = program.change(store, "prg_1", patch(earn_points=2), None, "admin:key_1", NOW)
    assert written and first.version == 2 and first.earn_points == 2
    assert (first.updated_at, first.updated_by) == (NOW, "admin:key_1")
    second, _ = program.change(store, "prg_1", patch(country="AT"), None, "admin:key_2", "2026-12-03T11:00:00Z")
    assert second.version == 3 and second.earn_points == 2 and second.country == "AT"
    items, next_cursor = program.versions(store, "prg_1", 10, None)
    assert [i["version"] for i in items] == [3, 2, 1] and next_cursor is None
    assert items[0]["changes"] == {"country": {"from": "DE", "to": "AT"}}
    assert items[1]["changes"] == {"earn_points": {"from": 1, "to": 2}} and items[1]["updated_by"] == "admin:key_1"
    assert items[2]["earn_points"] == 1 and items[2]["changes"] == {} and items[2]["updated_by"] is None
    assert items[2]["updated_at"] == CREATED.created_at
    assert program.version(store, "prg_1", 2)["earn_points"] == 2
    with pytest.raises(ProgramVersionNotFound):
        program.version(store, "prg_1", 4)


def test_a_program_never_changed_has_version_1_as_its_history():
    store = Settings()
    (only,), _ = program.versions(store, "prg_1", 10, None)
    assert only["version"] == 1 and only["name"] == "Café Treue" and only["changes"] == {}
    assert program.version(store, "prg_1", 1) == only
    with pytest.raises(ProgramVersionNotFound):
        program.version(store, "prg_1", 2)


def test_a_patch_that_changes_nothing_writes_nothing_and_answers_the_current_version():
    store = Settings()
    program.change(store, "prg_1", patch(earn_points=2), None, "admin:key_1", NOW)
    current, written = program.change(store, "prg_1", patch(earn_points=2), 2, "admin:key_1", NOW)
    assert not written and current.version == 2 and store.writes == 1


def test_if_match_a_stale_version_is_refused_and_writes_nothing():
    store = Settings()
    program.change(store, "prg_1", patch(earn_points=2), 1, "admin:key_1", NOW)
    with pytest.raises(PreconditionFailed) as stale:
        program.change(store, "prg_1", patch(earn_points=5), 1, "admin:key_2", NOW)
    assert stale.value.status == 412 and stale.value.extra == {"current_version": 2}
    assert store.current_program.earn_points == 2 and store.writes == 1


def test_a_change_that_loses_a_race_is_applied_on_the_winner_without_if_match_and_refused_with_it():
    store = Settings()
    store.race = [replace(CREATED, version=2, name="Winner", updated_at=NOW, updated_by="admin:key_w")]
    current, written = program.change(store, "prg_1", patch(earn_points=4), None, "admin:key_1", NOW)
    assert written and current.version == 3 and (current.name, current.earn_points) == ("Winner", 4)
    store = Settings()
    store.race = [replace(CREATED, version=2, name="Winner")]
    with pytest.raises(PreconditionFailed):
        program.change(store, "prg_1", patch(earn_points=4), 1, "admin:key_1", NOW)


def test_a_change_that_loses_every_race_is_a_503_not_a_loop():
    store = Settings()
    store.race = [replace(CREATED, version=v, name=f"Winner {v}") for v in range(2, 2 + program.ATTEMPTS)]
    with pytest.raises(Contention):
        program.change(store, "prg_1", patch(earn_points=4), None, "admin:key_1", NOW)


@pytest.mark.parametrize(("header", "version"), [(None, None), ("*", None), ('"3"', 3), ('W/"12"', 12), ("7", 7)])
def test_if_match_names_a_version(header, version):
    assert program.if_match(header) == version


@pytest.mark.parametrize("header", ['"0"', '"v3"', "", "3, 4", '"99999999999"'])
def test_an_if_match_that_names_no_version_is_a_400(header):
    with pytest.raises(MalformedRequest):
        program.if_match(header)


# ---------------------------------------------------------------- the reading


@pytest.mark.parametrize(("settings", "per_unit", "worth"), [
    ({}, "1", "0.01"),  # 1 point per 100 cents; 100 points = 100 cents
    ({"earn_points": 3, "earn_per_minor": 200}, "1.5", "0.01"),
    ({"earn_points": 1, "earn_per_minor": 300}, "0.3333", "0.01"),  # rounded down
    ({"earn_points": 10, "earn_per_minor": 1, "value_points": 1, "value_minor": 5}, "1000", "0.05"),
    ({"currency": "JPY", "earn_points": 1, "earn_per_minor": 100}, "0.01", "1"),  # no minor unit
    ({"currency": "KWD", "earn_points": 1, "earn_per_minor": 1000, "value_minor": 1}, "1", "0.00001"),
])
def test_the_earn_rate_and_point_value_read_plainly(settings, per_unit, worth):
    shown = program.view(replace(CREATED, **settings))
    assert (shown["points_per_unit"], shown["point_value"]) == (per_unit, worth)


def test_the_view_shows_what_exists_and_version_1_was_made_at_creation():
    shown = program.view(CREATED)
    assert shown["version"] == 1 and shown["updated_at"] == CREATED.created_at and shown["updated_by"] is None
    assert list(shown["fx_ppm"]) == ["GBP", "USD"]
    assert shown["tiers"] is None  # no tiers until PATCH /v1/program sets them (issue 16 item 4)
    assert "rules" not in set(shown)  # GET /v1/program adds the rules in force (ProgramOverview)
    assert (shown["pending_days"], shown["expiry"], shown["expiry_notice_days"]) == (0, None, 30)
    assert program.view(replace(CREATED, country=""))["country"] is None
