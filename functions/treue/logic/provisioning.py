"""Creating programs and their API keys (the CLI's job: the first key cannot come from the API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treue.core import keys
from treue.core.ids import SeededSource, new_id
from treue.core.programs import Program

if TYPE_CHECKING:
    from treue.logic.ports import ProgramPort, UsagePlanPort


def create_program(store: ProgramPort, name: str, currency: str, now: str, usage_plan: UsagePlanPort | None = None,
                   source: SeededSource | None = None, **settings: Any) -> dict[str, Any]:
    """A new program with one key per scope; the keys are in the answer and nowhere else. With
    ``usage_plan``, the program's API access is enabled too (see :func:`enable_api`). With a ``source``
    (the twin's demo program, ``SEED``) the program id, key ids and keys come from that seed."""
    program = Program(id=new_id("prg", source, "program"), name=name, currency=currency.upper(), created_at=now,
                      **settings)
    store.put_program(program)
    api_keys = {str(scope): create_key(store, program.id, scope, now, source)["api_key"] for scope in keys.Scope}
    out: dict[str, Any] = {"program_id": program.id, "api_keys": api_keys}
    if usage_plan is not None:
        out["usage_plan_key_id"] = enable_api(store, usage_plan, program.id)
    return out


def enable_api(store: ProgramPort, usage_plan: UsagePlanPort, program_id: str) -> str:
    """Give the program its key in the API's usage plan (its own rate limit); idempotent."""
    if store.get_program(program_id) is None:
        raise LookupError(f"no program {program_id}")
    return usage_plan.enroll(program_id)


def create_key(store: ProgramPort, program_id: str, scope: str, now: str, source: SeededSource | None = None
               ) -> dict[str, Any]:
    if store.get_program(program_id) is None:
        raise LookupError(f"no program {program_id}")
    plaintext, record = keys.generate(program_id, keys.Scope(scope), now, source)
    store.put_api_key(record)
    return {"key_id": record.key_id, "program_id": program_id, "scope": str(record.scope), "api_key": plaintext}
