"""Per-execution-environment wiring: settings validated once, the store, a program cache, the clock."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from treue.errors import ProgramNotFound
from treue.logic.programs import Program


class Settings(BaseModel):
    table_name: str = Field(min_length=3)
    accrual_dlq_url: str | None = None
    program_cache_seconds: int = Field(default=60, ge=0, le=3600)


def _load_settings() -> Settings:
    try:
        return Settings(
            table_name=os.environ.get("TABLE_NAME", ""),
            accrual_dlq_url=os.environ.get("ACCRUAL_DLQ_URL") or None,
            program_cache_seconds=int(os.environ.get("PROGRAM_CACHE_SECONDS", "60")),
        )
    except (ValidationError, ValueError) as err:
        raise RuntimeError(f"invalid function configuration: {err}") from err


_settings: Settings | None = None
_store = None
_programs: dict[str, tuple[float, Program]] = {}  # program id → (monotonic read time, program)


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = _load_settings()
    return _settings


def store():
    global _store
    if _store is None:
        from treue.store.dynamodb import Store

        _store = Store(settings().table_name)
    return _store


def program(program_id: str) -> Program:
    """The program's settings, read at most once per ``program_cache_seconds`` per environment."""
    cached = _programs.get(program_id)
    now = time.monotonic()
    if cached and now - cached[0] < settings().program_cache_seconds:
        return cached[1]
    found = store().get_program(program_id)
    if found is None:
        raise ProgramNotFound(f"program {program_id} does not exist")
    _programs[program_id] = (now, found)
    return found


def now() -> str:
    """UTC timestamp with milliseconds, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reset() -> None:
    """Forget settings, store and caches (tests switch tables between cases)."""
    global _settings, _store
    _settings = None
    _store = None
    _programs.clear()
