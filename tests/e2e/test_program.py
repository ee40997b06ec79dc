"""Program settings on the twin, through API Gateway's stand-in, the authorizer and the Program function's role:
an admin changes the earn rate, a partner reads it and its versions, a partner key cannot change it."""

from __future__ import annotations

import pytest

from treue.client import ApiError

pytestmark = pytest.mark.e2e

PROBLEM = "https://treue.dev/problems/"


@pytest.fixture(scope="module")
def shop(twin):
    """A program of its own (the demo program's earn rate stays as other tests expect it)."""
    return twin.program_apis("Settings shop")


def test_an_admin_changes_the_earn_rate_and_a_partner_reads_it_and_its_versions(shop):
    before = shop["partner"].get_program()
    assert before.status == 200 and before["version"] == 1 and before.headers["ETag"] == '"1"'
    assert (before["earn_points"], before["earn_per_minor"], before["points_per_unit"]) == (1, 100, "1")
    assert before["currency"] == "EUR" and before["country"] == "DE" and before["updated_by"] is None

    changed = shop["admin"].patch_program({"earn_points": 3, "earn_per_minor": 200}, if_match=before["version"])
    assert changed.status == 200 and changed["version"] == 2 and changed["points_per_unit"] == "1.5"
    assert changed.headers["ETag"] == '"2"' and changed["updated_by"].startswith("admin:")

    read = shop["partner"].get_program()
    assert read == {**changed, "rules": []}  # GET adds the earning rules in force: none here
    page = shop["partner"].list_program_versions()
    assert [v["version"] for v in page["items"]] == [2, 1] and page["next_cursor"] is None
    assert page["items"][0]["changes"] == {"earn_points": {"from": 1, "to": 3},
                                           "earn_per_minor": {"from": 100, "to": 200}}
    first = shop["finance"].get_program_version(1)
    assert (first["earn_points"], first["earn_per_minor"], first["changes"]) == (1, 100, {})

    # the same change again writes nothing; a change on the version before is refused
    again = shop["admin"].patch_program({"earn_points": 3}, if_match='"2"')
    assert again.status == 200 and again["version"] == 2
    with pytest.raises(ApiError) as stale:
        shop["admin"].patch_program({"earn_points": 4}, if_match=1)
    assert stale.value.status == 412 and stale.value.type == PROBLEM + "precondition-failed"
    assert shop["partner"].get_program()["earn_points"] == 3


def test_a_partner_key_cannot_change_the_settings_and_currency_is_not_editable(shop):
    with pytest.raises(ApiError) as refused:
        shop["partner"].patch_program({"earn_points": 9})
    assert refused.value.status == 403
    with pytest.raises(ApiError) as invalid:
        shop["admin"].patch_program({"currency": "USD"})
    assert invalid.value.status == 422 and invalid.value.errors[0]["field"] == "currency"
    with pytest.raises(ApiError) as missing:
        shop["partner"].get_program_version(99)
    assert missing.value.status == 404 and missing.value.type == PROBLEM + "program-version-not-found"
    assert shop["partner"].get_program()["earn_points"] != 9
