"""API keys: random, shown once, stored only as a hash, scoped and revocable.

A key reads ``trk_<key id>_<secret>``. The key id is public (it names the key in audit records and
for revocation); the secret has 256 random bits and only its SHA-256 is stored. With that much
entropy an unkeyed hash is enough (NIST SP 800-63B asks keyed hashes below 112 bits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from treue.core.ids import SeededSource, new_id


class Scope(StrEnum):
    PARTNER = "partner"
    FINANCE = "finance"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    program_id: str
    scope: Scope
    secret_hash: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate(program_id: str, scope: Scope, now: str, source: SeededSource | None = None) -> tuple[str, ApiKeyRecord]:
    """A new key: the plaintext (to show once) and the record to store. With a ``source`` (the twin's
    ``SEED``) the key id and the 256-bit secret are those of this program and scope from that seed."""
    if source is None:
        key_id = new_id("key")
        secret = secrets.token_urlsafe(32)
    else:
        key_id = new_id("key", source, f"{program_id}:{scope}")
        secret = base64.urlsafe_b64encode(source.bytes(f"key-secret:{program_id}:{scope}", 32)).rstrip(b"=").decode()
    record = ApiKeyRecord(key_id, program_id, Scope(scope), hash_secret(secret), now)
    return f"trk_{key_id}_{secret}", record


def parse(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    if not key.startswith("trk_key_"):
        return None
    rest = key[len("trk_") :]
    key_id, sep, secret = rest[:30], rest[30:31], rest[31:]
    if sep != "_" or len(secret) < 32:
        return None
    return key_id, secret


def verify(record: ApiKeyRecord, secret: str) -> bool:
    return record.active and hmac.compare_digest(record.secret_hash, hash_secret(secret))
