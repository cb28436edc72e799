"""Personal fields sealed with a key of their own per person (crypto-shredding).

A sealed field is the text `sealed:v1:{subject}:{base64url(nonce | AES-256-GCM ciphertext)}`,
the subject's id as associated data. The subject's data key lives in `lufy.data_keys`, wrapped
(AES-GCM) by the master key: `DATA_KEY_SECRET` when configured (required in production), else
the random per-database key of `lufy.data_key_master` (dev, test). Deleting the subject's row
erases every field ever sealed for them: a sealed field whose key is gone opens as `ERASED`,
never as an error, so projections replay an erased person's events as "erased".

Keys are read in the caller's transaction, as `system` (the tables are system-only under RLS),
with schema-qualified names (rebuilds point the search_path at the shadow schema).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg import AsyncConnection

from lufy.errors import LufyError
from lufy.sqlfiles import load_queries

__all__ = [
    "ERASED",
    "SEALED_PREFIX",
    "Keyring",
    "configure",
    "is_sealed",
    "open_values_sync",
    "sealed_subject",
]

SEALED_PREFIX = "sealed:v1:"
# What a sealed field whose key was destroyed opens as.
ERASED = "[erased]"

_T = TypeVar("_T", bound=msgspec.Struct)
_configured: str | None = None
_configured_previous: tuple[str, ...] | None = None

_Q = load_queries("lufy.privacy", "keys.sql")


class SealingError(LufyError):
    """A data key cannot be unwrapped (wrong or missing master key): a configuration error."""

    status = 500
    title = "Personal data cannot be opened"


def configure(secret: str | None, previous: str | None = None) -> None:
    """Set the master secret (the container does, from settings.DATA_KEY_SECRET) and, during a
    rotation, the previous ones (DATA_KEY_PREVIOUS_SECRETS, comma-separated)."""
    global _configured, _configured_previous
    _configured = secret or None
    _configured_previous = _split(previous) if previous is not None else None


def _split(secrets: str) -> tuple[str, ...]:
    return tuple(p for p in (part.strip() for part in secrets.split(",")) if p)


def _secret() -> str | None:
    return _configured or os.environ.get("DATA_KEY_SECRET") or None


def _previous_secrets() -> tuple[str, ...]:
    if _configured_previous is not None:
        return _configured_previous
    return _split(os.environ.get("DATA_KEY_PREVIOUS_SECRETS", ""))


def secret_id(secret: str) -> str:
    """Which secret wrapped a key (`lufy.data_keys.secret_id`), without revealing it."""
    return hmac.new(secret.encode(), b"lufy data key secret id", hashlib.sha256).hexdigest()[:32]


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def _parse(value: str) -> tuple[uuid.UUID, bytes] | None:
    try:
        subject, blob = value[len(SEALED_PREFIX) :].split(":", 1)
        return uuid.UUID(subject), base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
    except (ValueError, binascii.Error):
        return None


def sealed_subject(value: str) -> uuid.UUID | None:
    parsed = _parse(value) if is_sealed(value) else None
    return parsed[0] if parsed else None


def _kek(material: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"lufy data keys v1")
    return AESGCM(hkdf.derive(material))


def _wrap_aad(subject: uuid.UUID) -> bytes:
    return b"lufy-data-key:" + subject.bytes


def _unwrap(subject: uuid.UUID, wrapped: bytes, wrapped_by: str, db_secret: bytes | None) -> bytes:
    """The data key; wrapped by a secret: the current one, else each previous one in turn."""
    if wrapped_by == "secret":
        secret = _secret()
        if secret is None:
            raise SealingError("DATA_KEY_SECRET: data keys were wrapped by it, and it is not set")
        materials = [s.encode() for s in (secret, *_previous_secrets())]
    else:
        if db_secret is None:
            raise SealingError("lufy.data_key_master is empty: run `lufy migrate`")
        materials = [db_secret]
    for material in materials:
        try:
            return _kek(material).decrypt(wrapped[:12], wrapped[12:], _wrap_aad(subject))
        except InvalidTag:
            continue
    raise SealingError(
        "a data key cannot be unwrapped: neither DATA_KEY_SECRET nor DATA_KEY_PREVIOUS_SECRETS "
        "is the one it was wrapped with"
    )


def wrap(subject: uuid.UUID, key: bytes, material: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + _kek(material).encrypt(nonce, key, _wrap_aad(subject))


def seal_with(key: bytes, subject: uuid.UUID, text: str, *, aead: AESGCM | None = None) -> str:
    """`text` sealed for `subject`; `aead`: the key's AES-GCM context, when the caller keeps one
    (making it costs as much as the encryption)."""
    nonce = os.urandom(12)
    blob = nonce + (aead or AESGCM(key)).encrypt(nonce, text.encode(), subject.bytes)
    return f"{SEALED_PREFIX}{subject}:{base64.urlsafe_b64encode(blob).decode().rstrip('=')}"


def open_with(key: bytes, subject: uuid.UUID, blob: bytes) -> str:
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], subject.bytes).decode()
    except InvalidTag:
        raise SealingError(f"a field sealed for {subject} does not open with their key") from None


class Keyring:
    """Seal, open and destroy on the caller's connection (in a `system` transaction)."""

    async def key(
        self, conn: AsyncConnection[Any], subject: uuid.UUID, *, create: bool = False
    ) -> bytes | None:
        cur = await conn.execute(_Q.data_key, [subject])
        row = await cur.fetchone()
        if row is not None:
            return _unwrap(subject, bytes(row[0]), row[1], bytes(row[2]) if row[2] else None)
        if not create:
            return None
        key = AESGCM.generate_key(bit_length=256)
        secret = _secret()
        if secret is not None:
            material, wrapped_by = secret.encode(), "secret"
        else:
            cur = await conn.execute(_Q.master)
            master = await cur.fetchone()
            if master is None:
                raise SealingError("lufy.data_key_master is empty: run `lufy migrate`")
            material, wrapped_by = bytes(master[0]), "database"
        wrapped = wrap(subject, key, material)
        fingerprint = secret_id(secret) if secret is not None else None
        await conn.execute(_Q.insert_key, [subject, wrapped, wrapped_by, fingerprint])
        # Another transaction may have created it first: read back whichever won.
        found = await self.key(conn, subject)
        assert found is not None
        return found

    async def seal(self, conn: AsyncConnection[Any], subject: uuid.UUID, text: str) -> str:
        key = await self.key(conn, subject, create=True)
        assert key is not None
        return seal_with(key, subject, text)

    async def open(
        self,
        conn: AsyncConnection[Any],
        value: str,
        _cache: dict[uuid.UUID, bytes | None] | None = None,
    ) -> str:
        """The plain text of a sealed field; ERASED when its key is gone; other text as is.
        Layered fields (a listener id: month key outside, person key inside) open layer by
        layer."""
        cache = {} if _cache is None else _cache
        for _layer in range(4):
            parsed = _parse(value) if is_sealed(value) else None
            if parsed is None:
                return value
            subject, blob = parsed
            if subject not in cache:
                cache[subject] = await self.key(conn, subject)
            key = cache[subject]
            if key is None:
                return ERASED
            value = open_with(key, subject, blob)
        return value

    async def open_struct(self, conn: AsyncConnection[Any], value: _T) -> _T:
        """A copy of an event (any Struct) with its sealed string fields opened."""
        cache: dict[uuid.UUID, bytes | None] = {}
        changes: dict[str, str] = {}
        for name in value.__struct_fields__:
            field = getattr(value, name)
            if is_sealed(field):
                changes[name] = await self.open(conn, field, cache)
        return msgspec.structs.replace(value, **changes) if changes else value

    async def destroy(self, conn: AsyncConnection[Any], subject: uuid.UUID) -> bool:
        cur = await conn.execute(_Q.delete_key, [subject])
        return cur.rowcount > 0


def open_values_sync(database_url: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with its sealed strings opened, on a short connection of its own (for the
    synchronous workers, e.g. the e-mail job)."""
    out = dict(values)
    sealed = {k: v for k, v in values.items() if is_sealed(v)}
    if not sealed:
        return out
    cache: dict[uuid.UUID, bytes | None] = {}
    with psycopg.connect(database_url, autocommit=False) as conn:
        conn.execute(_Q.as_system)
        for name, value in sealed.items():
            parsed = _parse(value)
            if parsed is None:
                continue
            subject, blob = parsed
            if subject not in cache:
                row = conn.execute(_Q.data_key, [subject]).fetchone()
                cache[subject] = (
                    _unwrap(subject, bytes(row[0]), row[1], bytes(row[2]) if row[2] else None)
                    if row
                    else None
                )
            key = cache[subject]
            out[name] = ERASED if key is None else open_with(key, subject, blob)
        conn.rollback()
    return out
