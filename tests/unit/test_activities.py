"""The activity a partner reports (``POST /v1/members/{id}/activities``, issue 16 item 6), and how the accrual
queue tells an activity from a purchase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from treue.handlers.accrual_queue import _is_activity
from treue.logic.models import ACTIVITY_WINDOW_DAYS, Activity


def when(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def activity(**change: object) -> dict[str, object]:
    return {"type": "review", "reference": "rev-4711", "occurred_at": when(timedelta(hours=-1)), **change}


def test_an_activity_of_the_last_days_is_taken_trimmed():
    berlin = (datetime.now(UTC) - timedelta(days=1)).astimezone(timezone(timedelta(hours=1)))
    got = Activity.model_validate(activity(type="  profile_completed ", occurred_at=berlin.isoformat()))
    assert got.type == "profile_completed" and got.reference == "rev-4711"
    # the fingerprint is what was sent: the same activity again is a replay, a different one a conflict
    assert got.fingerprint_payload() == Activity.model_validate(got.fingerprint_payload()).fingerprint_payload()
    assert Activity.model_validate(activity(occurred_at=when(timedelta(minutes=4)))).type == "review"  # clock skew
    assert Activity.model_validate(activity(occurred_at=when(timedelta(days=-ACTIVITY_WINDOW_DAYS, minutes=1))))


@pytest.mark.parametrize(("change", "says"), [
    ({"occurred_at": "2026-11-20T10:00:00"}, "needs a time zone"),
    # times relative to now are taken when the test runs, not when it is collected (minutes may lie between)
    ({"occurred_at": timedelta(minutes=6)}, "lies in the future"),
    ({"occurred_at": timedelta(days=-ACTIVITY_WINDOW_DAYS, minutes=-1)}, "more than 30 days in the past"),
    ({"type": ""}, "at least 1 character"),
    ({"type": "   "}, "at least 1 character"),
    ({"type": "x" * 65}, "at most 64 characters"),
    ({"type": "review\u0000"}, "control"),
    ({"reference": ""}, "at least 1 character"),
    ({"reference": "has space"}, "pattern"),
    ({"reference": "r" * 129}, "at most 128 characters"),
    ({"points": 50}, "Extra inputs are not permitted"),  # the rules decide the points, not the partner
])
def test_a_bad_activity_is_refused_with_the_reason(change, says):
    change = {k: when(v) if isinstance(v, timedelta) else v for k, v in change.items()}
    with pytest.raises(ValidationError, match=says):
        Activity.model_validate(activity(**change))


def test_the_activity_fields_are_required():
    for missing in ("type", "reference", "occurred_at"):
        body = activity()
        del body[missing]
        with pytest.raises(ValidationError, match="Field required"):
            Activity.model_validate(body)


@pytest.mark.parametrize(("body", "is_activity"), [
    ('{"member": {"email": "a@example.com"}, "activity": {"type": "review"}}', True),
    ('{"member": {"email": "a@example.com"}, "purchase": {}}', False),
    ('{"activity": 1}', True),  # then refused by the activity model, as malformed
    ('["activity"]', False),
    ("not json", False),  # read as a purchase: malformed, as before
    ("", False),
])
def test_the_queue_reads_a_body_with_an_activity_key_as_an_activity(body, is_activity):
    assert _is_activity(body) is is_activity
