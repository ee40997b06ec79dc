"""Reward codes at rest: KMS encryption to reveal them, a KMS HMAC to look them up.

The encryption context binds a ciphertext to its program and order, so a ciphertext copied to
another order cannot be decrypted there. The HMAC key never leaves KMS.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from treue.store import clients


class CodeVault:
    def __init__(self, encryption_key: str | None = None, mac_key: str | None = None, kms: Any = None) -> None:
        self.encryption_key = encryption_key or os.environ.get("CODES_KEY_ID", "")
        self.mac_key = mac_key or os.environ.get("CODES_MAC_KEY_ID", "")
        self._kms = kms

    @property
    def kms(self) -> Any:
        return self._kms or clients.get("kms")

    def seal(self, code: str, program_id: str, order_id: str) -> str:
        out = self.kms.encrypt(
            KeyId=self.encryption_key,
            Plaintext=code.encode(),
            EncryptionContext={"program_id": program_id, "order_id": order_id},
        )
        return base64.b64encode(out["CiphertextBlob"]).decode()

    def open(self, sealed: str, program_id: str, order_id: str) -> str:
        out = self.kms.decrypt(
            CiphertextBlob=base64.b64decode(sealed),
            EncryptionContext={"program_id": program_id, "order_id": order_id},
        )
        return out["Plaintext"].decode()

    def lookup_hash(self, program_id: str, compact_code: str) -> str:
        """Keyed hash of a normalized code within its program (hex)."""
        out = self.kms.generate_mac(
            KeyId=self.mac_key,
            Message=f"{program_id}:{compact_code}".encode(),
            MacAlgorithm="HMAC_SHA_256",
        )
        return out["Mac"].hex()
