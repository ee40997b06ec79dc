"""Voucher codes: 80 random bits from the OS CSPRNG in a human-friendly alphabet, with a check character.

The alphabet has no 0/O or 1/I, so a code read aloud or typed from paper is not misread. The check
character (Luhn mod 32) catches every single mistyped character and most swapped neighbours before
a lookup is made. Codes are never stored or logged in clear: Treue keeps a KMS ciphertext to reveal
them and a keyed hash (KMS HMAC) to find them.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
PAYLOAD_CHARS = 16  # 16 × 5 bits = 80 bits
_N = len(ALPHABET)


def check_character(payload: str) -> str:
    """Luhn mod N over the alphabet."""
    factor, total = 2, 0
    for ch in reversed(payload):
        addend = factor * _INDEX[ch]
        factor = 1 if factor == 2 else 2
        total += addend // _N + addend % _N
    return ALPHABET[(_N - total % _N) % _N]


def new_voucher_code() -> str:
    """``XXXX-XXXX-XXXX-XXXXC``: 16 random characters (80 bits) and a check character."""
    payload = "".join(secrets.choice(ALPHABET) for _ in range(PAYLOAD_CHARS))
    return format_code(payload + check_character(payload))


def format_code(compact: str) -> str:
    return "-".join([compact[0:4], compact[4:8], compact[8:12], compact[12:]])


def normalize(code: str) -> str:
    """The compact form of a code as typed: upper case, no spaces or hyphens."""
    return re.sub(r"[\s-]", "", code).upper()


def well_formed(code: str) -> bool:
    """Whether a typed voucher code has the right length, alphabet and check character."""
    compact = normalize(code)
    if len(compact) != PAYLOAD_CHARS + 1 or any(c not in _INDEX for c in compact):
        return False
    return check_character(compact[:-1]) == compact[-1]


def mask(code: str) -> str:
    """Every character but the last four replaced, separators kept: ``****-****-****-*K7QX``."""
    visible = 4
    seen = 0
    out = []
    for ch in reversed(code):
        if ch in "- ":
            out.append(ch)
        elif seen < visible:
            out.append(ch)
            seen += 1
        else:
            out.append("*")
    return "".join(reversed(out))
