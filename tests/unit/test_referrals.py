"""Referral codes, self-referral matching, the enrollment's birth_date and the milestone condition (issue 16
items 5, 7 and 8): pure parts, without storage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from treue.core import ids
from treue.errors import ValidationFailed
from treue.logic import members, progress
from treue.logic.models import Enrollment
from treue.logic.rules import Rule, RuleDefinition

PID = "prg_01demo0000000000000000000"
ADA = {"id": "mbr_01demo00000000000000000000", "email": "ada@example.com", "phone": "+4915112345678",
       "card_number": "1234567890", "referral_code": "K7QM4XPA"}


class Members:
    """The two reads ``members.referrer`` makes."""

    def __init__(self, *found: dict[str, Any]) -> None:
        self.by_code = {m["referral_code"]: m for m in found}

    def find_member_id(self, program_id: str, kind: str, value: str) -> str | None:
        assert kind == "referral_code"
        return self.by_code[value]["id"] if value in self.by_code else None

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        return next((m for m in self.by_code.values() if m["id"] == member_id), None)


def test_a_referral_code_is_8_symbols_without_0_o_1_or_i():
    assert len(ids.REFERRAL_ALPHABET) == len(set(ids.REFERRAL_ALPHABET)) == 32
    assert not set("01OI") & set(ids.REFERRAL_ALPHABET)
    codes = {ids.new_referral_code() for _ in range(500)}
    assert len(codes) == 500
    assert all(len(c) == 8 and set(c) <= set(ids.REFERRAL_ALPHABET) for c in codes)
    assert set("".join(codes)) == set(ids.REFERRAL_ALPHABET)  # every symbol is drawn


@pytest.mark.parametrize(("given", "normalized"), [
    ("K7QM4XPA", "K7QM4XPA"), ("k7qm-4xpa", "K7QM4XPA"), (" K7QM 4XPA ", "K7QM4XPA"), ("K7-QM-4X-PA", "K7QM4XPA")])
def test_a_typed_code_is_normalized(given, normalized):
    assert ids.normalize_referral_code(given) == normalized


@pytest.mark.parametrize("bad", ["K7QM4XP", "K7QM4XPAB", "K7QM4XP0", "K7QM4XPO", "K7QM4XP1", "K7QM4XPI", "K7QM_XPA",
                                 ""])
def test_a_code_of_another_length_or_with_an_ambiguous_symbol_is_refused(bad):
    with pytest.raises(ValueError, match="not a referral code"):
        ids.normalize_referral_code(bad)


@pytest.mark.parametrize(("request_body", "identifier"), [
    ({"email": "ADA@Example.com"}, "email"),
    ({"phone": "+49 (151) 1234-5678"}, "phone"),
    ({"card_number": "1234 5678 90", "email": "other@example.com"}, "card_number"),
])
def test_self_referral_matches_normalized_identifiers(request_body, identifier):
    request = Enrollment.model_validate({**request_body, "referred_by": "k7qm-4xpa"})
    assert request.referred_by == "K7QM4XPA"
    with pytest.raises(ValidationFailed) as raised:
        members.referrer(Members(ADA), PID, request.referred_by, request.present_identifiers())
    assert raised.value.extra == {"parameter": "referred_by", "reason": "self_referral", "identifier": identifier}


def test_another_member_and_an_unknown_code():
    request = Enrollment.model_validate({"email": "bob@example.com", "phone": "+4915199999999",
                                         "external_id": "crm-1", "referred_by": "K7QM4XPA"})
    assert members.referrer(Members(ADA), PID, "K7QM4XPA", request.present_identifiers())["id"] == ADA["id"]
    with pytest.raises(ValidationFailed) as raised:
        members.referrer(Members(ADA), PID, "ABCDEFGH", request.present_identifiers())
    assert raised.value.extra["reason"] == "unknown_referral_code" and raised.value.status == 422


def test_a_birth_date_is_a_plausible_past_day():
    assert Enrollment.model_validate({"email": "a@example.com", "birth_date": "1990-05-17"}).birth_date == date(
        1990, 5, 17)
    tomorrow_but_one = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    for bad, why in ((tomorrow_but_one, "lies in the future"), ("1899-12-31", "before 1900"),
                     ("1990-02-30", "date"), ("17.05.1990", "date")):
        with pytest.raises(ValidationError, match=why):
            Enrollment.model_validate({"email": "a@example.com", "birth_date": bad})


MILESTONE = {"name": "Second purchase", "trigger": "milestone", "effect": {"points": 75},
             "conditions": {"milestone": {"metric": "purchases", "threshold": 2}}}


def test_a_milestone_rule_needs_its_condition_and_only_it_may_have_one():
    assert RuleDefinition.model_validate(MILESTONE).conditions.milestone.threshold == 2
    for metric in ("spend", "points", "membership_years"):
        RuleDefinition.model_validate({**MILESTONE, "conditions": {"milestone": {"metric": metric, "threshold": 1}}})
    bad = [
        ({**MILESTONE, "conditions": {}}, "milestone rules need the condition milestone"),
        ({"name": "x", "trigger": "activity", "effect": {"points": 5},
          "conditions": {"milestone": {"metric": "purchases", "threshold": 2}}}, "only they may have it"),
        ({**MILESTONE, "conditions": {"milestone": {"metric": "visits", "threshold": 2}}}, "metric"),
        ({**MILESTONE, "conditions": {"milestone": {"metric": "spend", "threshold": 0}}}, "threshold"),
        ({**MILESTONE, "conditions": {"milestone": {"metric": "spend", "threshold": "5"}}}, "threshold"),
        ({**MILESTONE, "conditions": {"milestone": {"metric": "spend"}}}, "threshold"),
    ]
    for body, why in bad:
        with pytest.raises(ValidationError, match=why):
            RuleDefinition.model_validate(body)


def _rule(rule_id: str, metric: str, threshold: int) -> Rule:
    return Rule.model_validate({**MILESTONE, "id": rule_id, "version": 1,
                                "conditions": {"milestone": {"metric": metric, "threshold": threshold}}})


def test_the_milestones_reached_are_those_of_purchases_spend_and_points_at_their_threshold():
    rules = [_rule("p2", "purchases", 2), _rule("p3", "purchases", 3), _rule("s", "spend", 10_000),
             _rule("pts", "points", 500), _rule("years", "membership_years", 1)]
    found = progress.reached(rules, {"purchases": 2, "lifetime_spend": 10_000, "lifetime_earned": 499})
    assert [(rule.id, value) for rule, value in found] == [("p2", 2), ("s", 10_000)]


def test_only_a_purchase_posting_counts_as_a_purchase():
    purchase = {"type": "earn", "metadata": {"amount": {"value": 1000, "currency": "EUR"}, "occurred_at": "x"}}
    assert progress.is_purchase(purchase)
    assert not progress.is_purchase({**purchase, "metadata": {**purchase["metadata"], "trigger": "referral"}})
    assert not progress.is_purchase({"type": "earn", "metadata": {"trigger": "enrollment"}})
    assert not progress.is_purchase({**purchase, "type": "adjustment"})
