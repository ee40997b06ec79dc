"""Enrollment and member lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treue.core import ids
from treue.core.ledger import request_fingerprint
from treue.core.statuses import MemberStatus
from treue.errors import IdempotencyConflict, MemberNotFound
from treue.logic.models import Enrollment

if TYPE_CHECKING:
    from treue.logic.ports import LedgerPort

LOOKUP_KINDS = ("email", "phone", "card_number", "external_id", "qr_token")


def enroll(store: LedgerPort, program_id: str, request: Enrollment, now: str, idempotency_key: str | None = None
           ) -> tuple[dict[str, Any], bool]:
    """Enroll a member; returns ``(member, created)``. A replayed Idempotency-Key returns the first member."""
    identifiers = request.present_identifiers()
    if "card_number" not in identifiers:
        identifiers["card_number"] = ids.new_card_number()
    identifiers["qr_token"] = ids.new_qr_token()
    member = {
        "id": ids.new_id("mbr"),
        "program_id": program_id,
        "status": MemberStatus.ACTIVE,
        "name": request.name,
        "locale": request.locale,
        "country": request.country,
        "marketing_consent": request.marketing_consent,
        "created_at": now,
        **identifiers,
    }
    idem = None
    if idempotency_key:
        idem = (idempotency_key, request_fingerprint(request.model_dump(mode="json")))
    replay = store.enroll(program_id, member, identifiers, idem)
    if replay is None:
        return member, True
    if idem is None or replay.fingerprint != idem[1]:  # a replay comes only with an Idempotency-Key
        raise IdempotencyConflict(
            "this Idempotency-Key was already used to enroll with a different body", idempotency_key=idempotency_key
        )
    return get(store, program_id, replay.result["member_id"]), False


def require_id(member_id: str) -> str:
    """A malformed member id names no member: 404, before any storage call."""
    if not ids.well_formed(member_id, "mbr"):
        raise MemberNotFound(f"member {member_id[:40]} does not exist")
    return member_id


def get(store: LedgerPort, program_id: str, member_id: str) -> dict[str, Any]:
    member = store.get_member(program_id, require_id(member_id))
    if member is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    return member


def find(store: LedgerPort, program_id: str, kind: str, value: str) -> dict[str, Any] | None:
    """The member holding identifier ``kind=value`` (normalized as at enrollment), or None."""
    normalize = {
        "email": ids.normalize_email,
        "phone": ids.normalize_phone,
        "card_number": ids.normalize_card_number,
    }.get(kind)
    if normalize:
        value = normalize(value)
    member_id = store.find_member_id(program_id, kind, value)
    return store.get_member(program_id, member_id) if member_id else None
