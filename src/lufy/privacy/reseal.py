"""The one-time sealing of personal fields in events written before privacy sealing.

It is the only sanctioned rewrite of `lufy.events`. `lufy migrate` runs it under its advisory
lock, in one transaction, after the migrations: every accounts event whose e-mail address or
display name is in clear gets them sealed with the person's data key (created if needed), the
address hash of a known account's failed sign-in too, and its password hash removed (migration
0500 moved hashes to `lufy.credentials`). Event ids, positions, transaction ids, times and order
are kept; only `data` changes. What it did is recorded as `operations.personal_data_sealed`
(stream operations/privacy_sealing). Idempotent: when no event is left in clear, it writes
nothing to the log. `lufy.privacy_sealing` keeps the read barrier of the last check, so later
runs scan only newer events (those an old process may write in clear during a rolling deploy).
The append-only trigger is disabled for this transaction only (DDL is transactional:
a failure rolls the whole rewrite back, trigger included).

A person already erased before the rewrite (no data key left) gets fields sealed with a key that
is thrown away at once: they open as "[erased]", as every later replay expects.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lufy.eventstore.codec import default_codec
from lufy.operations.events import PersonalDataSealed
from lufy.privacy.reseal_listeners import ListenerReport, any_clear_listeners, seal_listener_ids
from lufy.privacy.sealing import (
    SealingError,
    _secret,
    _unwrap,
    is_sealed,
    seal_with,
    secret_id,
    wrap,
)
from lufy.sqlfiles import load_queries

__all__ = ["SEALED_FIELDS", "seal_existing_events"]

_Q = load_queries("lufy.privacy", "reseal.sql")
_KEYS = load_queries("lufy.privacy", "keys.sql")

# Event type -> personal fields sealed with the key of data->>'user_id'.
SEALED_FIELDS: dict[str, tuple[str, ...]] = {
    "accounts.user_registered": ("email", "display_name"),
    "accounts.email_verification_requested": ("email", "display_name"),
    "accounts.magic_link_requested": ("email", "display_name"),
    "accounts.password_reset_requested": ("email", "display_name"),
    "accounts.email_verified": ("email",),
    "accounts.password_changed": ("email", "display_name"),
    "accounts.sign_in_failed": ("email_hash",),
}
_HASHED = ("accounts.user_registered", "accounts.password_changed")


class _Keys:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.cache: dict[uuid.UUID, bytes] = {}
        row = conn.execute(_KEYS.master).fetchone()
        self.db_secret = bytes(row[0]) if row else None

    def key(self, subject: uuid.UUID) -> bytes:
        if subject in self.cache:
            return self.cache[subject]
        row = self.conn.execute(_Q.wrapped_key, [subject]).fetchone()
        if row is not None:
            key = _unwrap(subject, bytes(row[0]), row[1], self.db_secret)
        else:
            erased = self.conn.execute(_Q.erased, [subject]).fetchone()
            key = AESGCM.generate_key(bit_length=256)
            if not (erased and erased[0]):
                self._store(subject, key)
            # else: an erased person's fields are sealed with a key nobody keeps.
        self.cache[subject] = key
        return key

    def _store(self, subject: uuid.UUID, key: bytes) -> None:
        secret = _secret()
        if secret is not None:
            material, wrapped_by = secret.encode(), "secret"
        elif self.db_secret is not None:
            material, wrapped_by = self.db_secret, "database"
        else:
            raise SealingError("lufy.data_key_master is empty and DATA_KEY_SECRET is not set")
        self.conn.execute(
            _Q.store_key,
            [
                subject,
                wrap(subject, key, material),
                wrapped_by,
                secret_id(secret) if secret is not None else None,
            ],
        )


def _progress(conn: psycopg.Connection[Any]) -> tuple[str, str, Any, str]:
    """(read barrier now, where the last check stopped, when it ran, where the last check of
    listener ids stopped: they have a progress of their own, since 0502)."""
    row = conn.execute(_Q.progress).fetchone()
    assert row is not None
    return row[0], row[1] or "0", row[2] or datetime(1970, 1, 1, tzinfo=UTC), row[3] or "0"


def _advance(conn: psycopg.Connection[Any], barrier: str) -> None:
    conn.execute(_Q.advance, [barrier, barrier])


def seal_existing_events(
    conn: psycopg.Connection[Any], say: Callable[[str], None] | None = None
) -> PersonalDataSealed | None:
    """Seal what the log still holds in clear (see the module). The caller holds the migration
    lock; this runs in a transaction of its own. None when there was nothing to do."""
    fields = sorted({f for names in SEALED_FIELDS.values() for f in names})
    with conn.transaction():
        conn.execute(_KEYS.as_system)
        # Password changes made by processes of the previous version during a rolling deploy
        # went to users.password_hash only: the newer of the two wins (removals included).
        conn.execute(_Q.sync_credentials)
        conn.execute(_Q.sync_credential_removals)
        barrier, since, since_time, listeners_since = _progress(conn)
        rows = conn.execute(
            _Q.pending, {"types": sorted(SEALED_FIELDS), "fields": fields, "since": since}
        ).fetchall()
        jobs = conn.execute(_Q.pending_jobs, {"since_time": since_time}).fetchall()
        listeners = any_clear_listeners(conn, listeners_since)
        _advance(conn, barrier)
        if not rows and not jobs and not listeners:
            return None
        keys = _Keys(conn)
        _seal_jobs(conn, keys, jobs)
        if rows or listeners:
            conn.execute(_Q.disable_append_only)
        hashes, people = _seal_events(conn, keys, rows)
        heard = (
            seal_listener_ids(conn, listeners_since, keys.key) if listeners else ListenerReport()
        )
        if rows or listeners:
            conn.execute(_Q.enable_append_only)
        positions = [p for p in (heard.first_position, heard.last_position) if p]
        positions += [rows[0][0], rows[-1][0]] if rows else []
        report = PersonalDataSealed(
            events_sealed=len(rows),
            password_hashes_removed=hashes,
            people=len(people),
            first_position=min(positions, default=0),
            last_position=max(positions, default=0),
            jobs_sealed=len(jobs),
            listener_events_sealed=heard.events_sealed,
            grants_rekeyed=heard.grants_rekeyed,
        )
        _append_report(conn, report)
    if say is not None:
        say(
            f"sealed the personal fields of {report.events_sealed} event(s) of "
            f"{report.people} person(s) and of {len(jobs)} e-mail job(s); removed {hashes} "
            f"password hash(es) from the log; sealed the listener ids of {heard.events_sealed} "
            f"analytics event(s) and keyed {heard.grants_rekeyed} stream grant(s)"
        )
    return report


def _seal_jobs(conn: psycopg.Connection[Any], keys: _Keys, jobs: list[Any]) -> None:
    """Seal the recipient of e-mail jobs still waiting in the ledger."""
    for job_key, payload, user_id in jobs:
        subject = uuid.UUID(user_id)
        sealed = dict(payload)
        for name in ("to", "display_name"):
            value = sealed.get(name)
            if isinstance(value, str) and not is_sealed(value):
                sealed[name] = seal_with(keys.key(subject), subject, value)
        conn.execute(_Q.seal_job, [json.dumps(sealed), job_key])


def _seal_events(
    conn: psycopg.Connection[Any], keys: _Keys, rows: list[Any]
) -> tuple[int, set[uuid.UUID]]:
    """Seal the personal fields of `rows` (and drop password hashes), in place in the log
    (its trigger disabled by the caller); returns (hashes removed, the people concerned)."""
    hashes = 0
    people: set[uuid.UUID] = set()
    for position, type_name, data in rows:
        subject = uuid.UUID(data["user_id"])
        people.add(subject)
        new = dict(data)
        for name in SEALED_FIELDS[type_name]:
            value = new.get(name)
            if isinstance(value, str) and not is_sealed(value):
                new[name] = seal_with(keys.key(subject), subject, value)
        if type_name in _HASHED and new.get("password_hash") is not None:
            new.pop("password_hash")
            hashes += 1
        conn.execute(_Q.seal_event, [json.dumps(new), position])
    return hashes, people


def _append_report(conn: psycopg.Connection[Any], report: PersonalDataSealed) -> None:
    """`operations.personal_data_sealed`, appended in the sealing's transaction."""
    codec = default_codec()
    type_name, version, payload = codec.encode(report)
    conn.execute(_Q.record, [uuid.uuid4(), type_name, version, payload])
