"""Row-Level Security on lufy.tracks, straight in SQL as the app role (not through the API)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from lufy.db import set_context

OWNER, OTHER = uuid.uuid4(), uuid.uuid4()


async def _insert(
    conn: AsyncConnection[Any], artist: uuid.UUID, *, published: bool, deleted: bool = False
) -> uuid.UUID:
    track = uuid.uuid4()
    await conn.execute(
        "INSERT INTO lufy.tracks (id, artist_id, title, status, published, deleted_at) "
        "VALUES (%s, %s, 't', 'ready', %s, CASE WHEN %s THEN now() END)",
        [track, artist, published, deleted],
    )
    return track


async def _visible(
    conn: AsyncConnection[Any], user: uuid.UUID | None, role: str | None
) -> set[uuid.UUID]:
    async with conn.transaction():
        await set_context(conn, user_id=user, role=role)
        cur = await conn.execute("SELECT id FROM lufy.tracks")
        return {r[0] for r in await cur.fetchall()}


async def test_owners_see_every_own_track_others_only_published_live_ones(
    app_conn: AsyncConnection[Any], admin_conn: AsyncConnection[Any]
) -> None:
    draft = await _insert(admin_conn, OWNER, published=False)
    public = await _insert(admin_conn, OWNER, published=True)
    deleted = await _insert(admin_conn, OWNER, published=True, deleted=True)
    others = await _insert(admin_conn, OTHER, published=False)

    assert await _visible(app_conn, OWNER, "artist") == {draft, public, deleted}
    assert await _visible(app_conn, OTHER, "artist") == {public, others}
    assert await _visible(app_conn, uuid.uuid4(), "listener") == {public}
    assert await _visible(app_conn, None, None) == {public}
    assert await _visible(app_conn, None, "system") == {draft, public, deleted, others}
    assert await _visible(app_conn, uuid.uuid4(), "admin") == {draft, public, deleted, others}


async def test_a_user_cannot_write_another_artists_track(
    app_conn: AsyncConnection[Any], admin_conn: AsyncConnection[Any]
) -> None:
    track = await _insert(admin_conn, OWNER, published=True)
    async with app_conn.transaction():
        await set_context(app_conn, user_id=OTHER, role="artist")
        cur = await app_conn.execute(
            "UPDATE lufy.tracks SET title = 'stolen' WHERE id = %s", [track]
        )
        assert cur.rowcount == 0
        cur = await app_conn.execute("DELETE FROM lufy.tracks WHERE id = %s", [track])
        assert cur.rowcount == 0
    async with app_conn.transaction():
        await set_context(app_conn, user_id=OTHER, role="artist")
        # In a savepoint, so the refusal rolls back only the insert.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with app_conn.transaction():
                await app_conn.execute(
                    "INSERT INTO lufy.tracks (id, artist_id, title) VALUES (%s, %s, 'x')",
                    [uuid.uuid4(), OWNER],
                )
    row = await (
        await admin_conn.execute("SELECT title FROM lufy.tracks WHERE id = %s", [track])
    ).fetchone()
    assert row == ("t",)
