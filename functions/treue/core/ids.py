"""Identifiers: time-ordered ids, member card numbers with a Luhn check digit, QR tokens, referral codes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class SeededSource:
    """Ids and secrets from a seed instead of the OS CSPRNG: HMAC-SHA256 keyed with the seed over a
    label, so the same seed and label always give the same value and another seed another one.

    Only for the local twin's demo program, whose id and keys should survive a restart (``make run
    SEED=…``); everything else, and everything deployed, draws from ``secrets``. A seeded key is as
    secret as its seed."""

    EPOCH_MS = 1_767_225_600_000  # the time part of every seeded id: 2026-01-01T00:00:00Z

    def __init__(self, seed: str) -> None:
        if not seed:
            raise ValueError("a seed is a non-empty word")
        self._key = seed.encode()

    def bytes(self, label: str, n: int) -> bytes:
        """``n`` bytes for ``label`` (HMAC-SHA256 blocks over ``label`` and a counter)."""
        out, counter = b"", 0
        while len(out) < n:
            out += hmac.new(self._key, f"{label}\0{counter}".encode(), hashlib.sha256).digest()
            counter += 1
        return out[:n]


def new_id(prefix: str, source: SeededSource | None = None, label: str = "") -> str:
    """A 26-character, time-ordered id (48-bit milliseconds + 80 random bits), e.g. ``mbr_01j…``; with a
    ``source``, the id of ``label`` from that seed (a fixed time part and 80 bits derived from the seed)."""
    if source is None:
        value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    else:
        value = (source.EPOCH_MS << 80) | int.from_bytes(source.bytes(f"id:{prefix}:{label}", 10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def derived_id(prefix: str, source_id: str, key: str) -> str:
    """A deterministic id in the :func:`new_id` shape: ``source_id``'s time part (its first 10
    characters) and 16 characters of a hash of ``source_id`` and ``key``; the same inputs give the same id."""
    digest = int.from_bytes(hashlib.sha256(f"{source_id}:{key}".encode()).digest()[:10], "big")
    chars = []
    for _ in range(16):
        chars.append(_CROCKFORD[digest & 31])
        digest >>= 5
    return f"{prefix}_{source_id.split('_', 1)[1][:10]}{''.join(reversed(chars))}"


_ID = re.compile(r"^[a-z]{3}_[0-9a-z]{26}$")


def well_formed(value: str, prefix: str) -> bool:
    """Whether ``value`` looks like an id made by :func:`new_id` with ``prefix``."""
    return value.startswith(prefix + "_") and bool(_ID.match(value))


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:  # every second digit from the right of the final number
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


def new_card_number() -> str:
    """16 digits: the Treue member-card prefix 9, 14 random digits, one Luhn check digit."""
    body = "9" + "".join(str(secrets.randbelow(10)) for _ in range(14))
    return body + luhn_check_digit(body)


def new_qr_token() -> str:
    """128 random bits, URL-safe: what a member's QR code encodes."""
    return "qr_" + secrets.token_urlsafe(16)


# Referral codes are read aloud and typed at a till: no 0/O or 1/I to confuse (32 symbols, 5 bits each)
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERRAL_CODE_LENGTH = 8  # 40 random bits
_REFERRAL_CODE = re.compile(f"^[{REFERRAL_ALPHABET}]{{{REFERRAL_CODE_LENGTH}}}$")


def new_referral_code() -> str:
    """8 symbols of :data:`REFERRAL_ALPHABET`, e.g. ``K7QM4XPA``."""
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


def normalize_referral_code(value: str) -> str:
    """A code as given, upper-cased, without spaces and hyphens (``k7qm-4xpa`` → ``K7QM4XPA``)."""
    v = re.sub(r"[\s-]", "", value).upper()
    if not _REFERRAL_CODE.match(v):
        raise ValueError(f"not a referral code: {REFERRAL_CODE_LENGTH} letters and digits without 0, O, 1 or I")
    return v


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s\x00-\x1f\x7f-\x9f]+\.[^@\s\x00-\x1f\x7f-\x9f]{2,}$")
# Refused in every free-text field: C0 and C1 controls (a line feed only where a field says so), lone
# surrogates (not storable as UTF-8) and the bidirectional overrides that make text read otherwise
_FORBIDDEN_TEXT = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINE_FEED = re.compile("\n")


def normalize_email(value: str) -> str:
    """Trimmed, lower-cased as a whole (Treue treats addresses case-insensitively, local part too, as mail
    providers do), the domain in its ASCII (IDNA) form: ``Ada@Bücher.DE`` → ``ada@xn--bcher-kva.de``."""
    v = value.strip()
    if not _EMAIL.match(v):
        raise ValueError("not a valid email address")
    local, _, domain = v.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as err:
        raise ValueError("not a valid email address: the domain is not a valid host name") from err
    v = f"{local}@{domain}".lower()
    if len(v) > 254 or not _EMAIL.match(v):
        raise ValueError("not a valid email address")
    return v


def check_text(value: str, multiline: bool = False) -> str:
    """Free text as given, or ValueError naming the first control character in it."""
    found = _FORBIDDEN_TEXT.search(value) or (None if multiline else _LINE_FEED.search(value))
    if found:
        raise ValueError(f"contains the control character U+{ord(found.group()):04X}; send plain text")
    return value


def normalize_phone(value: str) -> str:
    v = re.sub(r"[\s().-]", "", value)
    if not _E164.match(v):
        raise ValueError("not an E.164 phone number (e.g. +4915112345678)")
    return v


def normalize_card_number(value: str) -> str:
    v = re.sub(r"[\s-]", "", value)
    if not v.isdigit() or not 6 <= len(v) <= 19:
        raise ValueError("a card number has 6 to 19 digits")
    return v
