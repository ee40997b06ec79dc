import pytest
from pydantic import ValidationError

from treue.logic.models import Adjustment, Enrollment, Purchase

PURCHASE = {
    "transaction_id": "t-1",
    "amount": {"value": 1999, "currency": "EUR"},
    "occurred_at": "2026-01-02T10:00:00Z",
}


def test_enrollment_needs_an_identifier():
    with pytest.raises(ValidationError, match="at least one"):
        Enrollment(name="Ada")
    e = Enrollment(email="ADA@example.com", phone="+49 151 1234 5678")
    assert e.present_identifiers() == {"email": "ada@example.com", "phone": "+4915112345678"}


@pytest.mark.parametrize(
    "change",
    [
        {"amount": {"value": 19.99, "currency": "EUR"}},  # money is integer minor units
        {"amount": {"value": "1999", "currency": "EUR"}},
        {"amount": {"value": -1, "currency": "EUR"}},
        {"amount": {"value": 1, "currency": "euro"}},
        {"occurred_at": "2026-01-02T10:00:00"},  # no time zone
        {"occurred_at": "2999-01-01T00:00:00Z"},
        {"transaction_id": ""},
        {"transaction_id": "x" * 129},
        {"lines": [{"sku": "a", "amount": {"value": 5000, "currency": "EUR"}}]},  # more than the total
        {"lines": [{"sku": "a", "amount": {"value": 5, "currency": "USD"}}]},
        {"surprise": True},
    ],
)
def test_bad_purchases_are_rejected(change):
    with pytest.raises(ValidationError):
        Purchase.model_validate({**PURCHASE, **change})


def test_adjustments_need_points_and_a_reason():
    assert Adjustment(points=-5, reason="fraud reversal", reference="case-1").points == -5
    for bad in ({"points": 0}, {"reason": ""}, {"points": 1.0}):
        with pytest.raises(ValidationError):
            Adjustment.model_validate({"points": 5, "reason": "goodwill", "reference": "c-1", **bad})
