"""Raw listener ids sealed per person and per month (analytics events, stream grants).

A *raw listener id* is how an analytics event names its listener: `listener_id` (the signed-in
user's id) and `anonymous_id` (the id a signed-out client made up). Ingestion stores both
sealed, in two layers:

- inner layer, signed-in listeners only: the person's data key (`lufy.data_keys`), so erasing
  the person makes them unreadable; the `anonymous_id` of a signed-in event is sealed with the
  person's key too (it ties the person to their signed-out plays);
- outer layer, always: the key of the UTC month the event happened in (subject
  `month_subject(month)`, registered in `lufy.analytics_months`), so that retention
  (`ANALYTICS_RAW_RETENTION_DAYS`) makes a whole month's listener ids unreadable by destroying
  one key.

Either key gone, the field opens as "[erased]". Nothing in Lufy needs to open them to count:
every count is taken over `listener_key` (a keyed hash, stored in clear).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import AsyncConnection

from lufy.analytics.classify import listener_identity, listener_key
from lufy.privacy.sealing import Keyring, _unwrap, seal_with
from lufy.sqlfiles import load_queries

__all__ = [
    "ListenerHasher",
    "ListenerKeys",
    "SealingKeys",
    "month_of",
    "month_subject",
    "seal_listener_fields",
    "throwaway_key",
]

_Q = load_queries("lufy.privacy", "listeners.sql")
# Month keys' subjects: uuid5 of this namespace and the month's first day (2026-11-01).
_MONTHS = uuid.UUID("6c1b7f4e-5a0d-4a53-9d3e-5f1c0b7a2e91")


def month_of(moment: datetime) -> date:
    """The first day of the UTC month of `moment`."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return _first_day(moment.year, moment.month)


@lru_cache(maxsize=1024)
def _first_day(year: int, month: int) -> date:
    return date(year, month, 1)


@lru_cache(maxsize=1024)
def month_subject(month: date) -> uuid.UUID:
    return uuid.uuid5(_MONTHS, month.replace(day=1).isoformat())


class SealingKeys(dict[uuid.UUID, bytes]):
    """Data keys by subject, each with its AES-GCM context made once (ingestion seals every
    event: making the context per field cost as much as the encryption)."""

    def __init__(self, keys: Mapping[uuid.UUID, bytes] | None = None) -> None:
        super().__init__(keys or {})
        self._aead: dict[uuid.UUID, AESGCM] = {}

    def seal(self, subject: uuid.UUID, text: str) -> str:
        aead = self._aead.get(subject)
        if aead is None:
            aead = self._aead[subject] = AESGCM(self[subject])
        return seal_with(self[subject], subject, text, aead=aead)


def seal_listener_fields(
    keys: SealingKeys,
    month: date,
    user_id: uuid.UUID | None,
    anonymous_id: str | None,
) -> tuple[str | None, str | None]:
    """(`listener_id`, `anonymous_id`) as stored: person layer (if signed in), month layer.
    `keys` holds the person's and the month's keys (see `ListenerKeys.load`)."""
    subject = month_subject(month)

    def seal(text: str) -> str:
        inner = keys.seal(user_id, text) if user_id is not None else text
        return keys.seal(subject, inner)

    return (
        seal(str(user_id)) if user_id is not None else None,
        seal(anonymous_id) if anonymous_id else None,
    )


def throwaway_key() -> bytes:
    """A key nobody keeps: what an erased person's or a destroyed month's fields get."""
    return AESGCM.generate_key(bit_length=256)


class ListenerKeys:
    """Data keys for sealing listener ids, cached a few minutes per process.

    Sealing with a cached key whose row was deleted meanwhile (the person erased, the month
    expired) is harmless: nobody can open the result."""

    def __init__(self, *, ttl: float = 300.0, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[uuid.UUID, tuple[bytes, float]] = {}
        # How many times cached keys were dropped (expired and read again, or the cache
        # emptied): what was sealed with cached keys may be reused only while this stays the
        # same (`Ingestor` reuses sealed listener ids across batches).
        self.refreshes = 0

    def _cached(
        self, subjects: Iterable[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, bytes], set[uuid.UUID]]:
        now = time.monotonic()
        found: dict[uuid.UUID, bytes] = {}
        missing: set[uuid.UUID] = set()
        for subject in subjects:
            hit = self._cache.get(subject)
            if hit is not None and now - hit[1] < self.ttl:
                found[subject] = hit[0]
            else:
                missing.add(subject)
        return found, missing

    async def load(
        self, db: Any, people: Iterable[uuid.UUID], months: Iterable[date]
    ) -> SealingKeys:
        """Keys of `people` and of `months` (created when missing: a month's on first use, a
        person's unless they are erased), by subject."""
        month_by_subject = {month_subject(m): m for m in months}
        people = set(people)
        keys, missing = self._cached(people | set(month_by_subject))
        if not missing:
            return SealingKeys(keys)
        if not missing.isdisjoint(self._cache):
            self.refreshes += 1
        async with db.transaction(role="system") as conn:
            loaded = await self._fetch(conn, missing)
            absent = missing - loaded.keys()
            for subject in sorted(absent & set(month_by_subject)):
                loaded[subject] = await _month_key(conn, month_by_subject[subject], subject)
            absent_people = sorted(absent & people)
            if absent_people:
                cur = await conn.execute(_Q.erased_people, {"ids": absent_people})
                erased = {row[0] for row in await cur.fetchall()}
                for person in absent_people:
                    if person in erased:
                        loaded[person] = throwaway_key()
                    else:
                        key = await Keyring().key(conn, person, create=True)
                        assert key is not None
                        loaded[person] = key
        if len(self._cache) + len(loaded) > self.max_entries:
            self._cache.clear()
            self.refreshes += 1
        stamp = time.monotonic()
        for subject, key in loaded.items():
            self._cache[subject] = (key, stamp)
        keys.update(loaded)
        return SealingKeys(keys)

    @staticmethod
    async def _fetch(
        conn: AsyncConnection[Any], subjects: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, bytes]:
        cur = await conn.execute(_Q.data_keys, {"subjects": sorted(subjects)})
        return {
            subject: _unwrap(subject, bytes(wrapped), by, bytes(db) if db else None)
            for subject, wrapped, by, db in await cur.fetchall()
        }


async def _month_key(conn: AsyncConnection[Any], month: date, subject: uuid.UUID) -> bytes:
    await conn.execute(_Q.register_month, {"month": month, "subject": subject})
    cur = await conn.execute(_Q.month_destroyed, {"month": month})
    row = await cur.fetchone()
    if row is not None and row[0]:
        return throwaway_key()
    key = await Keyring().key(conn, subject, create=True)
    assert key is not None
    return key


class ListenerHasher:
    """The `listener_key` of a signed-in user, as analytics computes it (a keyed hash under the
    database's analytics secret, read once): what a stream grant stores instead of the user
    id."""

    def __init__(self) -> None:
        self._secret: bytes | None = None

    async def secret(self, db: Any) -> bytes:
        if self._secret is None:
            async with db.connection() as conn:
                cur = await conn.execute(_Q.hmac_key)
                row = await cur.fetchone()
            if row is None:
                raise RuntimeError("analytics secret missing: run `lufy migrate`")
            self._secret = bytes(row[0])
        return self._secret

    async def key(self, db: Any, user_id: uuid.UUID | None) -> str | None:
        identity = listener_identity(user_id, None)
        return None if identity is None else listener_key(await self.secret(db), identity)
