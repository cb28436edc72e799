"""Opaque tokens: generation, hashing, and sealing an e-mailed token for the e-mail reactor.

Tokens are 256 random bits, url-safe; only their SHA-256 is stored. An e-mailed token must
reach the e-mail job, which reads the log: the event carries it sealed with AES-GCM under a key
derived (HKDF) from JWT_SECRET, so whoever reads the log without the key learns nothing usable.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets as _secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["TokenSealer", "hash_token", "new_token"]

_MAX_TOKEN = 256


def new_token() -> str:
    return _secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex of a token (bounded, so that a huge forged token costs nothing)."""
    return hashlib.sha256(token[:_MAX_TOKEN].encode("utf-8", "replace")).hexdigest()


class TokenSealer:
    def __init__(self, secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"lufy e-mail token v1"
        ).derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, token: str, *, purpose: str) -> str:
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, token.encode(), purpose.encode())
        return base64.urlsafe_b64encode(sealed).decode()

    def unseal(self, sealed: str, *, purpose: str) -> str | None:
        """The token, or None when the key or purpose does not match."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:12], raw[12:], purpose.encode()).decode()
        except (InvalidTag, ValueError):
            return None
