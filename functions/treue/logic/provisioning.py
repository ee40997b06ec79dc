"""Creating programs and their API keys (the CLI's job: the first key cannot come from the API)."""

from __future__ import annotations

from typing import Any

from treue.logic import keys
from treue.logic.ids import new_id
from treue.logic.programs import Program


def create_program(store, name: str, currency: str, now: str, **settings: Any) -> dict[str, Any]:
    """A new program with one key per scope; the keys are in the answer and nowhere else."""
    program = Program(id=new_id("prg"), name=name, currency=currency.upper(), created_at=now, **settings)
    store.put_program(program)
    api_keys = {str(scope): create_key(store, program.id, scope, now)["api_key"] for scope in keys.Scope}
    return {"program_id": program.id, "api_keys": api_keys}


def create_key(store, program_id: str, scope: str, now: str) -> dict[str, Any]:
    if store.get_program(program_id) is None:
        raise LookupError(f"no program {program_id}")
    plaintext, record = keys.generate(program_id, keys.Scope(scope), now)
    store.put_api_key(record)
    return {"key_id": record.key_id, "program_id": program_id, "scope": str(record.scope), "api_key": plaintext}
