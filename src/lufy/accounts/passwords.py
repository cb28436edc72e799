"""Password policy and hashing: argon2id (argon2-cffi), 8..128 characters, not a common one."""

from __future__ import annotations

import asyncio
import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lufy.accounts.errors import WeakPasswordError

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "PasswordHashing",
    "check_password_policy",
    "common_passwords",
]

MIN_PASSWORD = 8
MAX_PASSWORD = 128


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list (package data), lower-cased."""
    text = resources.files("lufy.accounts").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_password_policy(password: str) -> None:
    """Raise WeakPasswordError naming the rule a password breaks."""
    length = len(password)
    if length < MIN_PASSWORD:
        raise WeakPasswordError(f"password must be at least {MIN_PASSWORD} characters long")
    if length > MAX_PASSWORD:
        raise WeakPasswordError(f"password must be at most {MAX_PASSWORD} characters long")
    folded = unicodedata.normalize("NFKC", password).strip().lower()
    if folded in common_passwords() or len(set(folded)) <= 2:
        raise WeakPasswordError(
            "password is too common (it appears in lists of leaked passwords); choose another"
        )


class PasswordHashing:
    """argon2id. Hashing is CPU- and memory-heavy on purpose, so the async methods run it in a
    thread; `cheap=True` (tests only) lowers the cost, still argon2id."""

    def __init__(self, *, cheap: bool = False) -> None:
        if cheap:
            self._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        else:
            self._hasher = PasswordHasher()  # RFC 9106 low-memory profile: t=3, m=64 MiB, p=4
        # Verified against when no account matches, so that an unknown address takes as long
        # as a wrong password (no user enumeration by timing). Made on first use.
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            if not password_hash:
                self._hasher.verify(self._dummy_hash(), password)
                return False
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash("lufy-dummy-password-for-timing")
        return self._dummy

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self.verify, password_hash, password)
