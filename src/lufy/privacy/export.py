"""Export of everything Lufy holds about a person (GDPR Art. 15 and 20): `export_person`.

One JSON document, read in one transaction as `system` from the read models and the log:
profile, account history, sessions (device and IP prefix), tracks (an artist's), playback
history as sessions, likes and follows, subscription and payments. Sealed fields are opened
with the person's key; an erased person's export says so.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, LiteralString

import msgspec
from psycopg import AsyncConnection

from lufy.errors import NotFoundError
from lufy.privacy.listeners import ListenerHasher
from lufy.sqlfiles import load_queries

__all__ = ["export_person"]

FORMAT = "lufy.export/v1"

_Q = load_queries("lufy.privacy", "export.sql")


async def _rows(
    conn: AsyncConnection[Any], query: LiteralString, params: dict[str, Any]
) -> list[Any]:
    cur = await conn.execute(query, params)
    return await cur.fetchall()


async def _table_exists(conn: AsyncConnection[Any], name: str) -> bool:
    cur = await conn.execute(_Q.table_exists, [name])
    row = await cur.fetchone()
    return bool(row and row[0])


# The fields of each section's records, in the order of its query's columns.
_HISTORY_FIELDS = ("type", "occurred_at")
_SESSION_FIELDS = (
    "id",
    "method",
    "device",
    "ip_prefix",
    "created_at",
    "last_seen_at",
    "expires_at",
    "revoked_at",
    "revoked_reason",
)
_TRACK_FIELDS = (
    "id",
    "title",
    "status",
    "duration_ms",
    "published",
    "published_at",
    "created_at",
    "deleted_at",
)
_PLAYBACK_FIELDS = (
    "session_id",
    "track_id",
    "started_at",
    "listened_ms",
    "completed",
    "skipped",
    "source",
    "device",
    "country",
)
_ENGAGEMENT_FIELDS = ("type", "track_id", "artist_id", "occurred_at")
_SUBSCRIPTION_FIELDS = (
    "id",
    "status",
    "price_id",
    "current_period_end",
    "cancel_at_period_end",
    "as_of",
)
_PAYMENT_FIELDS = ("kind", "amount_minor", "currency", "at")


async def export_person(container: Any, user_id: uuid.UUID) -> bytes:
    """The JSON document (bytes) of everything Lufy holds about `user_id`."""
    key = await ListenerHasher().key(container.db, user_id)
    params = {"id": user_id, "id_text": str(user_id), "key": key}
    async with container.db.transaction(role="system") as conn:
        profile_rows = await _rows(conn, _Q.profile, params)
        if not profile_rows:
            raise NotFoundError(f"no account {user_id}")

        async def records(query: LiteralString, fields: tuple[str, ...]) -> list[dict[str, Any]]:
            return [dict(zip(fields, r, strict=True)) for r in await _rows(conn, query, params)]

        document: dict[str, Any] = {
            "format": FORMAT,
            "generated_at": datetime.now(UTC),
            "profile": _profile(profile_rows[0]),
            "account_history": await records(_Q.history, _HISTORY_FIELDS),
            "sessions": await records(_Q.sessions, _SESSION_FIELDS),
            "tracks": [],
            "playback_sessions": await records(_Q.playback, _PLAYBACK_FIELDS),
            "likes_and_follows": await records(_Q.engagement, _ENGAGEMENT_FIELDS),
            "subscriptions": [],
            "payments": [],
        }
        if await _table_exists(conn, "lufy.tracks"):
            document["tracks"] = await records(_Q.tracks, _TRACK_FIELDS)
        if await _table_exists(conn, "lufy.payment_subscriptions"):
            document["subscriptions"] = await records(_Q.subscriptions, _SUBSCRIPTION_FIELDS)
            document["payments"] = await records(_Q.payments, _PAYMENT_FIELDS)
    return msgspec.json.encode(document)


def _profile(p: Any) -> dict[str, Any]:
    """The account row; an erased account's e-mail and name are gone."""
    erased = p[7] is not None
    return {
        "id": p[0],
        "email": None if erased else p[1],
        "display_name": None if erased else p[2],
        "role": p[3],
        "email_verified": p[4],
        "email_verified_at": p[5],
        "created_at": p[6],
        "erased_at": p[7],
        "has_password": p[8],
    }
