"""The audit trail: who did what, when and from where; append-only and hash-chained per program.

Every write that matters to finance (ledger postings, budget movements, order transitions, fundings,
API key creation and revocation, code reveals) adds one audit record to the same DynamoDB
transaction, so a record exists exactly when its change does. A sealer then chains the records of
each program in the order it finds them: record ``n`` carries ``seq = n``, the hash of record
``n - 1`` and its own hash over its content and that previous hash. Changing, removing or
reordering a sealed record breaks the chain at that record, which :func:`verify` names.

Records about immutable items (postings, budget movements) also carry ``subject_hash``, the hash of
that item as written, so verification can check the ledger items themselves, not only the trail.

The actor comes from the request: the API key (id and scope), the request id and the source IP,
bound once per invocation with :func:`acting`; workflow steps and operators bind their own.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from treue.core.ids import new_id

GENESIS = "0" * 64
# The fields a record's hash covers, in this order; storage keys and index attributes are not content.
HASHED_FIELDS = (
    "seq", "prev_hash", "id", "program_id", "action", "subject_type", "subject_id", "subject_hash",
    "actor", "scope", "request_id", "source_ip", "at", "data",
)


@dataclass(frozen=True)
class Actor:
    """Who causes the writes of this invocation."""

    actor: str  # e.g. "key_01j…" (an API key), "workflow:payout", "operator:alice"
    scope: str  # partner | finance | admin | system | operator
    request_id: str = ""
    source_ip: str = ""


SYSTEM = Actor(actor="system", scope="system")
_current: ContextVar[Actor] = ContextVar("treue_audit_actor", default=SYSTEM)


def current() -> Actor:
    return _current.get()


@contextmanager
def acting(actor: Actor) -> Iterator[Actor]:
    """Attribute the audit records written inside the block to ``actor``."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(data: dict[str, Any]) -> str:
    """The hash of an item's content (``None`` values dropped: DynamoDB does not store them)."""
    return hashlib.sha256(canonical({k: v for k, v in data.items() if v is not None})).hexdigest()


def new_record(
    program_id: str,
    action: str,
    subject_type: str,
    subject_id: str,
    at: str,
    data: dict[str, Any] | None = None,
    subject_hash: str | None = None,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """An unsealed audit record (``seq``, ``prev_hash`` and ``hash`` are added when sealed)."""
    who = actor or current()
    record = {
        "id": new_id("aud"),
        "program_id": program_id,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "actor": who.actor,
        "scope": who.scope,
        "request_id": who.request_id,
        "source_ip": who.source_ip,
        "at": at,
        "data": {k: v for k, v in (data or {}).items() if v is not None},
    }
    if subject_hash:
        record["subject_hash"] = subject_hash
    return record


def record_hash(record: dict[str, Any]) -> str:
    """sha256 over the previous hash and the record's content (its ``seq`` and ``prev_hash`` included)."""
    content = {name: record.get(name) for name in HASHED_FIELDS}
    return hashlib.sha256(record["prev_hash"].encode() + canonical(content)).hexdigest()


def seal(record: dict[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    sealed = dict(record, seq=seq, prev_hash=prev_hash)
    sealed["hash"] = record_hash(sealed)
    return sealed


@dataclass
class Verification:
    """The outcome of walking a program's chain."""

    program_id: str
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    broken: dict[str, Any] | None = None
    subjects_checked: int = 0

    @property
    def intact(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "program_id": self.program_id,
            "intact": self.intact,
            "records_checked": self.checked,
            "subjects_checked": self.subjects_checked,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
        }
        if self.broken:
            out["first_broken"] = self.broken
        return out


def verify(
    program_id: str,
    records: Iterable[dict[str, Any]],
    head: dict[str, Any] | None,
    subject_hashes: dict[str, str | None] | None = None,
) -> Verification:
    """Recompute the chain from the first record; stop at the first record that does not hold.

    ``records`` come in ``seq`` order. ``head`` is the sealer's head item (its seq and hash), which
    catches removed records at the end. ``subject_hashes`` maps record id → the hash of its subject
    item as stored now (None when the item is gone), for records that carry ``subject_hash``.
    """
    result = Verification(program_id=program_id)
    expected_seq, prev = 1, GENESIS

    def broken(record: dict[str, Any] | None, seq: int, problem: str) -> Verification:
        result.broken = {"seq": seq, "record_id": (record or {}).get("id"), "problem": problem}
        if record:
            result.broken.update(action=record.get("action"), subject_id=record.get("subject_id"), at=record.get("at"))
        return result

    for record in records:
        seq = record.get("seq")
        if seq != expected_seq:
            return broken(None, expected_seq, f"record {expected_seq} is missing (found {seq} next)")
        if record.get("prev_hash") != prev:
            return broken(record, seq, "prev_hash does not match the hash of the record before")
        if record_hash(record) != record.get("hash"):
            return broken(record, seq, "content does not match its hash (the record was altered)")
        if program_id != record.get("program_id"):
            return broken(record, seq, "the record belongs to another program")
        if record.get("subject_hash") and subject_hashes is not None:
            stored = subject_hashes.get(record["id"], record["subject_hash"])
            if stored is None:
                return broken(record, seq, f"{record['subject_type']} {record['subject_id']} was deleted")
            if stored != record["subject_hash"]:
                return broken(record, seq, f"{record['subject_type']} {record['subject_id']} was altered "
                                           "after it was written")
            result.subjects_checked += 1
        result.checked += 1
        prev = record["hash"]
        expected_seq += 1
    result.head_seq, result.head_hash = expected_seq - 1, prev
    if head and head.get("seq", 0) != expected_seq - 1:
        return broken(None, expected_seq, f"the chain ends at {expected_seq - 1} but its head says {head.get('seq')}")
    if head and head.get("hash", GENESIS) != prev:
        return broken(None, expected_seq - 1, "the head's hash does not match the last record")
    return result


# ---------------------------------------------------------------- sealing, fair between programs

SEAL_TURN = 200  # records a program gets sealed per turn before the next program's turn


class PendingRecords(Protocol):
    """Where the sealer finds and chains unsealed records (``treue.store.audit.AuditStore``)."""

    def programs_with_pending(self) -> list[str]: ...

    def seal_next(self, program_id: str, limit: int) -> int: ...


def seal_round_robin(
    trail: PendingRecords,
    *,
    max_records: int,
    turn: int | None = None,
    time_left: Callable[[], float] = lambda: 1.0,
    order: Callable[[list[str]], None] = random.shuffle,
) -> dict[str, int]:
    """Seal pending records a turn per program in rotation until none wait, ``max_records`` are sealed
    or ``time_left()`` reaches 0 (checked before every turn); the count sealed per program.
    ``turn``: records per program and turn (default ``SEAL_TURN``).

    The rotation starts in random order (``order``), so no program waits behind others run after run
    because of how its id sorts, and a program with a large backlog gets ``turn`` records per round
    like everyone else (less when ``max_records`` leaves less: a round shares what is left equally).
    A program leaves the rotation when a turn seals fewer than asked: its backlog
    is done, or another sealer holds its chain head (that sealer or the next run goes on).
    """
    turn = turn or SEAL_TURN
    rotation = trail.programs_with_pending()
    order(rotation)
    sealed: dict[str, int] = {}
    total = 0
    while rotation:
        still = []
        share = max(1, (max_records - total) // len(rotation))  # under a cap, every program gets its part
        for program_id in rotation:
            want = min(turn, share, max_records - total)
            if want <= 0 or time_left() <= 0:
                return sealed
            done = trail.seal_next(program_id, want)
            if done:
                sealed[program_id] = sealed.get(program_id, 0) + done
                total += done
            if done == want:
                still.append(program_id)
        rotation = still
    return sealed
