"""Point accrual, adjustments, balances and statements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType, request_fingerprint
from treue.core.programs import Program
from treue.errors import CurrencyMismatch, IdempotencyConflict, MemberNotFound
from treue.logic.members import require_id
from treue.logic.models import Adjustment, Purchase

if TYPE_CHECKING:
    from treue.logic.ports import LedgerPort


def accrue(store: LedgerPort, program: Program, member_id: str, purchase: Purchase, actor: str, now: str
           ) -> dict[str, Any]:
    """Credit the points a purchase earns, exactly once per ``transaction_id``.

    Answers ``{"points_earned", "balance", "transaction_id", "replayed"}``; a replay answers the points
    of the first request and the member's current balance.
    """
    require_id(member_id)
    if purchase.amount.currency != program.currency:
        raise CurrencyMismatch(
            f"the program earns on {program.currency}, the purchase is in {purchase.amount.currency}",
            expected=program.currency,
        )
    points = program.points_for(purchase.amount.value)
    fingerprint = request_fingerprint({"member_id": member_id, **purchase.fingerprint_payload()})
    posting = None
    if points > 0:
        posting = Posting(
            id=new_id("pst"),
            program_id=program.id,
            member_id=member_id,
            type=PostingType.EARN,
            debit=Account.PROGRAM_ISSUED,
            credit=Account.MEMBER_AVAILABLE,
            points=points,
            reference=purchase.transaction_id,
            reason="purchase",
            actor=actor,
            created_at=now,
            metadata={
                "amount": purchase.amount.model_dump(),
                "occurred_at": purchase.occurred_at.isoformat(),
                "lines": len(purchase.lines or []),
            },
        )
    result = {"points_earned": points, "transaction_id": purchase.transaction_id}
    replay = store.post(
        program.id, member_id, ("purchase", purchase.transaction_id, fingerprint), result, posting, now
    )
    if replay is not None:
        if replay.fingerprint != fingerprint:
            raise IdempotencyConflict(
                f"transaction {purchase.transaction_id} was already accrued with a different payload",
                transaction_id=purchase.transaction_id,
            )
        result = {"points_earned": replay.result["points_earned"], "transaction_id": purchase.transaction_id}
    return {**result, "replayed": replay is not None, "balance": balance(store, program.id, member_id)}


def adjust(
    store: LedgerPort, program: Program, member_id: str, request: Adjustment, actor: str, now: str
) -> dict[str, Any]:
    """A manual correction as its own posting (never an edit), idempotent by ``reference``."""
    require_id(member_id)
    if request.points > 0:
        debit, credit = Account.PROGRAM_ADJUSTMENTS, Account.MEMBER_AVAILABLE
    else:
        debit, credit = Account.MEMBER_AVAILABLE, Account.PROGRAM_ADJUSTMENTS
    posting = Posting(
        id=new_id("pst"),
        program_id=program.id,
        member_id=member_id,
        type=PostingType.ADJUSTMENT,
        debit=debit,
        credit=credit,
        points=abs(request.points),
        reference=request.reference,
        reason=request.reason,
        actor=actor,
        created_at=now,
    )
    fingerprint = request_fingerprint({"member_id": member_id, **request.model_dump()})
    result = {"points": request.points, "reference": request.reference, "entry_id": posting.id}
    replay = store.post(program.id, member_id, ("adjustment", request.reference, fingerprint), result, posting, now)
    if replay is not None:
        if replay.fingerprint != fingerprint:
            raise IdempotencyConflict(
                f"adjustment {request.reference} was already made with a different payload",
                reference=request.reference,
            )
        result = {k: replay.result[k] for k in ("points", "reference", "entry_id")}
    return {**result, "replayed": replay is not None, "balance": balance(store, program.id, member_id)}


def balance(store: LedgerPort, program_id: str, member_id: str) -> dict[str, int]:
    found = store.get_balance(program_id, require_id(member_id))
    if found is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    return found


def statement(store: LedgerPort, program_id: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    require_id(member_id)
    entries, next_cursor = store.list_entries(program_id, member_id, limit, cursor)
    if not entries and cursor is None:
        balance(store, program_id, member_id)  # 404 for an unknown member, empty list for a new one
    return {
        "entries": [
            {
                "id": e["id"],
                "type": e["type"],
                "points": e["member_delta"],
                "held": e.get("held_delta", 0),
                "reason": e["reason"],
                "reference": e["reference"],
                "created_at": e["created_at"],
                "actor": e["actor"],
            }
            for e in entries
        ],
        "next_cursor": next_cursor,
    }
