import pytest

from treue.core import ids, keys


def test_luhn_known_numbers():
    assert ids.luhn_valid("79927398713")
    assert not ids.luhn_valid("79927398710")
    assert ids.luhn_check_digit("7992739871") == "3"


def test_card_numbers_are_16_digits_with_a_valid_check_digit():
    numbers = {ids.new_card_number() for _ in range(500)}
    assert len(numbers) == 500
    assert all(len(n) == 16 and n.startswith("9") and ids.luhn_valid(n) for n in numbers)


def test_ids_are_time_ordered_and_unique():
    made = [ids.new_id("pst") for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(m.startswith("pst_") and len(m) == 30 for m in made)
    assert made[0][:14] <= made[-1][:14]


@pytest.mark.parametrize(
    "raw, expected",
    [("+49 151 1234-5678", "+4915112345678"), ("+1 (415) 555-0100", "+14155550100")],
)
def test_phone_numbers_are_normalized_to_e164(raw, expected):
    assert ids.normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["015112345678", "+0123456789", "+12", "phone"])
def test_non_e164_phone_numbers_are_rejected(raw):
    with pytest.raises(ValueError):
        ids.normalize_phone(raw)


def test_emails_are_lowercased_and_checked():
    assert ids.normalize_email("  Ada@Example.COM ") == "ada@example.com"
    for bad in ("ada", "ada@", "@example.com", "a b@example.com"):
        with pytest.raises(ValueError):
            ids.normalize_email(bad)


def test_api_keys_are_shown_once_and_stored_as_hashes():
    plaintext, record = keys.generate("prg_x", keys.Scope.PARTNER, "2026-11-24T00:00:00Z")
    key_id, secret = keys.parse(plaintext)
    assert key_id == record.key_id
    assert secret not in record.secret_hash and len(record.secret_hash) == 64
    assert keys.verify(record, secret)
    assert not keys.verify(record, secret[:-1] + ("A" if secret[-1] != "A" else "B"))


def test_revoked_keys_do_not_verify():
    plaintext, record = keys.generate("prg_x", keys.Scope.ADMIN, "now")
    revoked = keys.ApiKeyRecord(**{**record.__dict__, "revoked_at": "later"})
    assert not keys.verify(revoked, keys.parse(plaintext)[1])


@pytest.mark.parametrize("bad", ["", "trk_", "Bearer x", "trk_key_short_secret", "sk_live_" + "a" * 60])
def test_malformed_keys_do_not_parse(bad):
    assert keys.parse(bad) is None
