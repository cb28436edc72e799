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

__all__ = ["SEALED_FIELDS", "seal_existing_events"]

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

# Events with a personal field still in clear, or a password hash (jsonb `?` is an operator).
_PENDING = """
SELECT global_position, type, data FROM lufy.events
WHERE type = ANY(%(types)s) AND transaction_id >= %(since)s::xid8
  AND data->>'user_id' IS NOT NULL AND (
    EXISTS (SELECT 1 FROM unnest(%(fields)s::text[]) f
            WHERE data->>f IS NOT NULL AND left(data->>f, 10) <> 'sealed:v1:')
    OR (data->>'password_hash') IS NOT NULL
)
ORDER BY global_position
"""
# E-mail jobs recorded before sealing carry the address and name in clear; the job key is the
# id of the event that implied it, which names the person.
_PENDING_JOBS = """
SELECT j.job_key, j.payload, e.data->>'user_id' FROM lufy.jobs j
JOIN lufy.events e ON e.event_id::text = j.job_key
WHERE j.actor = 'send_email' AND j.created_at >= %(since_time)s - interval '1 day'
  AND e.data->>'user_id' IS NOT NULL AND (
    left(j.payload->>'to', 10) <> 'sealed:v1:'
    OR left(j.payload->>'display_name', 10) <> 'sealed:v1:'
)
ORDER BY j.job_key
"""


class _Keys:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.cache: dict[uuid.UUID, bytes] = {}
        row = conn.execute("SELECT secret FROM lufy.data_key_master WHERE id = 1").fetchone()
        self.db_secret = bytes(row[0]) if row else None

    def key(self, subject: uuid.UUID) -> bytes:
        if subject in self.cache:
            return self.cache[subject]
        row = self.conn.execute(
            "SELECT wrapped_key, wrapped_by FROM lufy.data_keys WHERE subject_id = %s", [subject]
        ).fetchone()
        if row is not None:
            key = _unwrap(subject, bytes(row[0]), row[1], self.db_secret)
        else:
            erased = self.conn.execute(
                "SELECT erased_at IS NOT NULL FROM lufy.users WHERE id = %s", [subject]
            ).fetchone()
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
            "INSERT INTO lufy.data_keys (subject_id, wrapped_key, wrapped_by, secret_id) "
            "VALUES (%s, %s, %s, %s)",
            [
                subject,
                wrap(subject, key, material),
                wrapped_by,
                secret_id(secret) if secret is not None else None,
            ],
        )


# Password changes made by processes of the previous version during a rolling deploy went to
# users.password_hash only: the newer of the two wins (removals included).
_SYNC_CREDENTIALS = (
    """
INSERT INTO lufy.credentials (user_id, password_hash, changed_at)
SELECT u.id, u.password_hash, u.password_changed_at FROM lufy.users u
LEFT JOIN lufy.credentials c ON c.user_id = u.id
WHERE u.password_hash IS NOT NULL AND u.password_changed_at > coalesce(c.changed_at, '-infinity')
ON CONFLICT (user_id) DO UPDATE
SET password_hash = excluded.password_hash, changed_at = excluded.changed_at
""",
    """
DELETE FROM lufy.credentials c USING lufy.users u
WHERE u.id = c.user_id AND u.password_hash IS NULL AND u.password_changed_at > c.changed_at
""",
)


def _progress(conn: psycopg.Connection[Any]) -> tuple[str, str, Any, str]:
    """(read barrier now, where the last check stopped, when it ran, where the last check of
    listener ids stopped: they have a progress of their own, since 0502)."""
    row = conn.execute(
        "SELECT lufy.read_barrier()::text, p.checked_below::text, p.checked_at, "
        "p.listeners_checked_below::text "
        "FROM (SELECT 1) one LEFT JOIN lufy.privacy_sealing p ON p.id = 1"
    ).fetchone()
    assert row is not None
    return row[0], row[1] or "0", row[2] or datetime(1970, 1, 1, tzinfo=UTC), row[3] or "0"


def _advance(conn: psycopg.Connection[Any], barrier: str) -> None:
    conn.execute(
        "INSERT INTO lufy.privacy_sealing (id, checked_below, checked_at, "
        "listeners_checked_below) VALUES (1, %s::xid8, now(), %s::xid8) "
        "ON CONFLICT (id) DO UPDATE SET checked_below = excluded.checked_below, "
        "checked_at = excluded.checked_at, "
        "listeners_checked_below = excluded.listeners_checked_below",
        [barrier, barrier],
    )


def seal_existing_events(
    conn: psycopg.Connection[Any], say: Callable[[str], None] | None = None
) -> PersonalDataSealed | None:
    """Seal what the log still holds in clear (see the module). The caller holds the migration
    lock; this runs in a transaction of its own. None when there was nothing to do."""
    fields = sorted({f for names in SEALED_FIELDS.values() for f in names})
    with conn.transaction():
        conn.execute("SELECT set_config('app.current_role', 'system', true)")
        for statement in _SYNC_CREDENTIALS:
            conn.execute(statement)
        barrier, since, since_time, listeners_since = _progress(conn)
        rows = conn.execute(
            _PENDING, {"types": sorted(SEALED_FIELDS), "fields": fields, "since": since}
        ).fetchall()
        jobs = conn.execute(_PENDING_JOBS, {"since_time": since_time}).fetchall()
        listeners = any_clear_listeners(conn, listeners_since)
        _advance(conn, barrier)
        if not rows and not jobs and not listeners:
            return None
        keys = _Keys(conn)
        _seal_jobs(conn, keys, jobs)
        if rows or listeners:
            conn.execute("ALTER TABLE lufy.events DISABLE TRIGGER events_no_update_delete")
        hashes, people = _seal_events(conn, keys, rows)
        heard = (
            seal_listener_ids(conn, listeners_since, keys.key) if listeners else ListenerReport()
        )
        if rows or listeners:
            conn.execute("ALTER TABLE lufy.events ENABLE TRIGGER events_no_update_delete")
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
        conn.execute(
            "UPDATE lufy.jobs SET payload = %s::jsonb WHERE actor = 'send_email' AND job_key = %s",
            [json.dumps(sealed), job_key],
        )


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
        conn.execute(
            "UPDATE lufy.events SET data = %s::jsonb WHERE global_position = %s",
            [json.dumps(new), position],
        )
    return hashes, people


def _append_report(conn: psycopg.Connection[Any], report: PersonalDataSealed) -> None:
    """`operations.personal_data_sealed`, appended in the sealing's transaction."""
    codec = default_codec()
    type_name, version, payload = codec.encode(report)
    conn.execute(
        "SELECT * FROM lufy.append_to_stream('operations', 'privacy_sealing', -2, "
        "ARRAY[%s]::uuid[], ARRAY[%s], ARRAY[%s]::int[], ARRAY[%s::jsonb], "
        "ARRAY['{}'::jsonb], ARRAY[now()])",
        [uuid.uuid4(), type_name, version, payload],
    )
