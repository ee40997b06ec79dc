"""Enrollment (referral codes and links, the welcome bonus) and member lookup."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from treue.core import ids
from treue.core.ledger import request_fingerprint
from treue.core.statuses import MemberStatus, ReferralStatus
from treue.errors import (
    Contention,
    IdempotencyConflict,
    IdentifierTaken,
    MemberNotFound,
    StaleCondition,
    ValidationFailed,
)
from treue.logic.models import Enrollment

if TYPE_CHECKING:
    from treue.core.ledger import Posting
    from treue.logic.ports import LedgerPort, Replayed, RulesAt
    from treue.logic.rules import Rule

LOOKUP_KINDS = ("email", "phone", "card_number", "external_id", "qr_token", "referral_code")
SELF_REFERRAL_KINDS = ("email", "phone", "card_number")  # the same person, whatever the other identifiers say
CODE_ATTEMPTS = 3  # a new referral code taken by another member (1 in 2^40 per member) is drawn again
WELCOME_ATTEMPTS = 5  # as accrual's ATTEMPTS
# The new member's id → the welcome postings, the rule counters' items and the answer (``treue.logic.welcome``)
WelcomeBonus = Callable[[str], tuple[list["Posting"], list[dict[str, Any]] | None, dict[str, Any]]]


def referrer(store: LedgerPort, program_id: str, code: str, identifiers: dict[str, str]) -> dict[str, Any]:
    """The member whose referral ``code`` (normalized) an enrollment names; 422 when no member has it, or when
    the new member's email, phone or card number (normalized as identifiers are) is the referrer's own."""
    member_id = store.find_member_id(program_id, "referral_code", code)
    found = store.get_member(program_id, member_id) if member_id else None
    if found is None:
        raise ValidationFailed(f"referred_by: no member of this program has the referral code {code}",
                               parameter="referred_by", reason="unknown_referral_code")
    same = [kind for kind in SELF_REFERRAL_KINDS if identifiers.get(kind) and identifiers[kind] == found.get(kind)]
    if same:
        raise ValidationFailed(f"referred_by: a member cannot refer themselves (the {same[0]} is the referrer's)",
                               parameter="referred_by", reason="self_referral", identifier=same[0])
    return found


def enroll(store: LedgerPort, program_id: str, request: Enrollment, now: str, idempotency_key: str | None = None,
           welcome: WelcomeBonus | None = None) -> tuple[dict[str, Any], bool]:
    """Enroll a member; returns ``(member, created)``. A replayed Idempotency-Key returns the first member.

    Every member gets a referral code; ``referred_by`` (a code) links the new member to its owner (refused
    when unknown or the new member's own: ``referrer``). ``welcome`` (``treue.logic.welcome``, given when
    enrollment rules are in force) pays their bonus in the transaction that creates the member: the member
    answers it as ``welcome`` ({points_earned, breakdown}), a replay the first one.
    """
    identifiers = request.present_identifiers()
    referred_by = referrer(store, program_id, request.referred_by, identifiers) if request.referred_by else None
    if "card_number" not in identifiers:
        identifiers["card_number"] = ids.new_card_number()
    identifiers["qr_token"] = ids.new_qr_token()
    member: dict[str, Any] = {
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
    if referred_by is not None:
        member["referred_by"] = referred_by["id"]
    if request.birth_date is not None:
        member["birth_date"] = request.birth_date.isoformat()
    idem = None
    if idempotency_key:
        idem = (idempotency_key, request_fingerprint(request.model_dump(mode="json")))
    for attempt in range(CODE_ATTEMPTS):
        member["referral_code"] = ids.new_referral_code()
        try:
            replay, bonus = _write(store, member, {**identifiers, "referral_code": member["referral_code"]}, idem,
                                   welcome)
        except IdentifierTaken as err:
            if err.extra.get("identifier") != "referral_code" or attempt == CODE_ATTEMPTS - 1:
                raise
            continue
        break
    if replay is None:
        return ({**member, "welcome": bonus} if bonus is not None else member), True
    if idem is None or replay.fingerprint != idem[1]:  # a replay comes only with an Idempotency-Key
        raise IdempotencyConflict(
            "this Idempotency-Key was already used to enroll with a different body", idempotency_key=idempotency_key
        )
    first = get(store, program_id, replay.result["member_id"])
    if "welcome" in replay.result:
        first["welcome"] = replay.result["welcome"]
    return first, False


def welcome_rules(rules: RulesAt, program_id: str, now: str) -> list[Rule]:
    """The enrollment rules in force at ``now``: the ones a welcome bonus pays."""
    return [rule for rule in rules(program_id, now) if rule.trigger == "enrollment"]


def _write(store: LedgerPort, member: dict[str, Any], identifiers: dict[str, str], idem: tuple[str, str] | None,
           welcome: WelcomeBonus | None) -> tuple[Replayed | None, dict[str, Any] | None]:
    """One enrollment transaction; with a welcome bonus, its postings and rule counters in it (evaluated again
    when a concurrent payment reached a rule's budget first)."""
    if welcome is None:
        return store.enroll(member["program_id"], member, identifiers, idem), None
    for _ in range(WELCOME_ATTEMPTS):
        paid, extra, bonus = welcome(member["id"])
        try:
            replay = store.enroll(member["program_id"], member, identifiers, idem, welcome=paid, extra=extra,
                                  result={"welcome": bonus})
        except StaleCondition:
            continue  # a rule's budget was reached meanwhile: evaluate with the counters as they are now
        return replay, bonus
    raise Contention("concurrent welcome bonuses kept reaching an enrollment rule's budget first; retry")


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
        "referral_code": ids.normalize_referral_code,
    }.get(kind)
    if normalize:
        value = normalize(value)
    member_id = store.find_member_id(program_id, kind, value)
    return store.get_member(program_id, member_id) if member_id else None


def referrals(store: LedgerPort, program_id: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """The member's referral code, who referred them, and the members they referred (newest first, a page):
    each ``pending`` until its first qualifying purchase, then ``completed`` with the points each side got."""
    member = get(store, program_id, member_id)
    items, next_cursor = store.list_referrals(program_id, member_id, limit, cursor)
    return {
        "member_id": member_id,
        "referral_code": member.get("referral_code"),
        "referred_by": member.get("referred_by"),
        "items": [_referral(item) for item in items],
        "next_cursor": next_cursor,
    }


def _referral(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"member_id": item["referee_id"], "enrolled_at": item["created_at"],
                           "status": ReferralStatus.COMPLETED if item.get("completed_at") else ReferralStatus.PENDING}
    for key in ("completed_at", "referrer_points", "referee_points"):
        if key in item:
            out[key] = item[key]
    return out
