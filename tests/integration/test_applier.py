"""The log-applier on its own: a batch and its reader's place commit together or not at all."""

from __future__ import annotations

import asyncio
import time

import pytest
from psycopg import AsyncConnection

from lufy.eventstore import EventStore, Page
from lufy.eventstore.envelope import Checkpoint
from lufy.projections.applier import Batch, LiveCheckpoint, Moved, RebuildPlace, apply_batch
from lufy.projections.context import SHADOW_PATH, Q, checkpoint_of

from . import _projection_helpers as helpers


@pytest.fixture
async def store(settings) -> EventStore:
    """The test events' store, over a database with the test projections' tables."""
    await helpers.create_tables(settings.DATABASE_ADMIN_URL)
    return helpers.make_store()


async def _read(conn: AsyncConnection, store: EventStore, expected: int) -> Page:
    """The first page once it holds `expected` events: the read barrier is cluster-wide, and
    another session's open transaction may hold it back for a moment."""
    deadline = time.monotonic() + 30
    page = await store.read_all(conn, Checkpoint.START, types=["test.counted"])
    while len(page.events) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        page = await store.read_all(conn, Checkpoint.START, types=["test.counted"])
    assert len(page.events) == expected
    return page


async def _checkpoint(conn: AsyncConnection, name: str) -> Checkpoint:
    cur = await conn.execute(Q.get_checkpoint, {"name": name})
    return checkpoint_of(await cur.fetchone())


async def test_a_batch_moves_the_checkpoint_with_it_and_its_replay_applies_nothing(
    store, app_conn
) -> None:
    await helpers.append_counted(app_conn, store, "s1", 5)
    await app_conn.execute(Q.ensure_checkpoint, {"name": "test_counter", "tx": 0, "pos": 0})
    page = await _read(app_conn, store, 5)
    batch = Batch(Checkpoint.START, page.checkpoint, page.events)
    cursor = LiveCheckpoint("test_counter")

    jobs = await apply_batch(app_conn, [helpers.CountingProjection()], batch, cursor=cursor)

    assert jobs == []
    assert await helpers.counted(app_conn) == 5
    assert await _checkpoint(app_conn, "test_counter") == page.checkpoint
    with pytest.raises(Moved) as moved:
        await apply_batch(app_conn, [helpers.CountingProjection()], batch, cursor=cursor)
    assert moved.value.checkpoint == page.checkpoint
    assert await helpers.counted(app_conn) == 5


async def test_a_failing_batch_leaves_the_read_model_and_the_checkpoint_as_they_were(
    store, app_conn
) -> None:
    await app_conn.execute(Q.ensure_checkpoint, {"name": "test_counter", "tx": 0, "pos": 0})
    await helpers.append_counted(app_conn, store, "s1", 3)
    await helpers.append_counted(app_conn, store, "s1", 1, poison=True)
    page = await _read(app_conn, store, 4)

    with pytest.raises(ValueError, match="poison"):
        await apply_batch(
            app_conn,
            # The first one writes, then the second fails.
            [helpers.OtherProjection(), helpers.CountingProjection()],
            Batch(Checkpoint.START, page.checkpoint, page.events),
            cursor=LiveCheckpoint("test_counter"),
        )

    assert await helpers.counted(app_conn, "test_other") == 0
    assert await _checkpoint(app_conn, "test_counter") == Checkpoint.START


async def test_a_counted_batch_is_applied_by_range_into_the_shadow_copy_with_the_rebuild_place(
    store, app_conn
) -> None:
    await helpers.append_counted(app_conn, store, "s1", 4)
    await helpers.append_counted(app_conn, store, "s2", 3)
    page = await _read(app_conn, store, 7)
    await app_conn.execute(Q.start_rebuild, {"name": "test_other", "version": 1, "until": None})
    batch = Batch(Checkpoint.START, page.checkpoint, count=len(page.events))

    await apply_batch(
        app_conn,
        [helpers.RangeCounter()],
        batch,
        cursor=RebuildPlace("test_other"),
        search_path=SHADOW_PATH,
    )

    cur = await app_conn.execute(
        "SELECT stream_id, events FROM lufy_shadow.test_other ORDER BY stream_id"
    )
    assert await cur.fetchall() == [("s1", 4), ("s2", 3)]
    assert await helpers.counted(app_conn, "test_other") == 0  # the live table is untouched
    cur = await app_conn.execute(Q.get_rebuild, {"name": "test_other"})
    row = await cur.fetchone()
    assert row is not None
    assert Checkpoint(int(row[2]), int(row[3])) == page.checkpoint
    assert int(row[4]) == 7
    with pytest.raises(TypeError, match="RangeProjection"):
        await apply_batch(app_conn, [helpers.CountingProjection()], batch, cursor=None)
