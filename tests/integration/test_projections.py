from __future__ import annotations

import asyncio
import contextlib
import random

import psycopg
import pytest
from psycopg import AsyncConnection

from lufy.projections.operations import SkipRefusedError, skip_event, status, wait_for_projection
from lufy.projections.rebuild import rebuild
from lufy.projections.runner import Projector

from ._projection_helpers import (
    FAST,
    CountingProjection,
    OtherProjection,
    append_counted,
    counted,
    create_tables,
    make_store,
    wait_for_count,
)


@pytest.fixture
async def tables(settings) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)


@contextlib.asynccontextmanager
async def running(projector: Projector):
    task = asyncio.create_task(projector.run())
    try:
        yield projector
    finally:
        projector.stop()
        await asyncio.wait_for(task, timeout=20)


async def _state(conn: AsyncConnection, name: str) -> tuple:
    cur = await conn.execute(
        "SELECT state, failed_position, error FROM lufy.projection_state WHERE name = %s", [name]
    )
    return await cur.fetchone()


async def test_eight_writers_with_rollbacks_and_open_transactions_are_counted_exactly(
    settings, tables, app_conn
) -> None:
    store = make_store()
    rng = random.Random(7)
    committed = [0] * 8
    target = 20_000

    async def writer(i: int) -> None:
        async with await AsyncConnection.connect(settings.DATABASE_URL) as conn:
            while sum(committed) < target:
                size = rng.randint(1, 25)
                keep = rng.random() > 0.2
                async with conn.transaction():
                    await append_counted(conn, store, f"w{i}", size)
                    if rng.random() < 0.1:
                        # Held open while others commit after it: its events are below
                        # positions the projector has already seen.
                        await asyncio.sleep(rng.uniform(0.05, 0.3))
                    if not keep:
                        raise psycopg.Rollback()
                if keep:
                    committed[i] += size

    projector = Projector(settings, [CountingProjection()], options=FAST, store=store)
    async with running(projector):
        await asyncio.gather(*(writer(i) for i in range(8)))
        total = sum(committed)
        got = await wait_for_count(app_conn, total)
        if got != total:
            cur = await app_conn.execute(
                "SELECT c.transaction_id, c.global_position, lufy.read_barrier(), "
                "(SELECT count(*) FROM lufy.events e WHERE (e.transaction_id, e.global_position)"
                " > (c.transaction_id, c.global_position)), "
                "(SELECT count(*) FROM lufy.events WHERE type = 'test.counted'), "
                "(SELECT state || ' ' || coalesce(error, '') FROM lufy.projection_state "
                "WHERE name = c.name) FROM lufy.checkpoints c WHERE c.name = 'test_counter'"
            )
            raise AssertionError(f"counted {got} of {total}: {await cur.fetchone()}")
        # Caught up means the checkpoint passes the last event; nothing more arrives after it.
        await asyncio.sleep(0.5)
    assert await counted(app_conn) == total
    cur = await app_conn.execute("SELECT count(*) FROM lufy.test_counter_seen")
    assert (await cur.fetchone())[0] == total
    rows = await (
        await app_conn.execute("SELECT stream_id, events FROM lufy.test_counter")
    ).fetchall()
    assert dict(rows) == {f"w{i}": committed[i] for i in range(8) if committed[i]}


async def test_two_projectors_apply_each_event_once_and_the_survivor_takes_over(
    settings, tables, app_conn
) -> None:
    store = make_store()
    first = Projector(settings, [CountingProjection()], options=FAST, store=store)
    second = Projector(settings, [CountingProjection()], options=FAST, store=store)
    task_a = asyncio.create_task(first.run())
    task_b = asyncio.create_task(second.run())
    total = 0
    for _ in range(20):
        await append_counted(app_conn, store, "s", 50)
        total += 50
    assert await wait_for_count(app_conn, total) == total
    leaders = [p for p in (first, second) if p.tasks[0].leading]
    assert len(leaders) == 1
    leader = leaders[0]
    leader.stop()
    await asyncio.wait_for(task_a if leader is first else task_b, timeout=10)
    for _ in range(20):
        await append_counted(app_conn, store, "s", 50)
        total += 50
    assert await wait_for_count(app_conn, total) == total
    survivor = second if leader is first else first
    assert survivor.tasks[0].leading
    survivor.stop()
    await asyncio.wait_for(task_b if leader is first else task_a, timeout=10)
    assert await counted(app_conn) == total
    cur = await app_conn.execute("SELECT count(*) FROM lufy.test_counter_seen")
    assert (await cur.fetchone())[0] == total


async def test_a_poison_event_stops_only_its_projection_until_it_is_skipped(
    settings, tables, app_conn
) -> None:
    store = make_store()
    await append_counted(app_conn, store, "a", 10)
    [poison] = await append_counted(app_conn, store, "a", 1, poison=True)
    await append_counted(app_conn, store, "a", 10)
    projector = Projector(
        settings, [CountingProjection(), OtherProjection()], options=FAST, store=store
    )
    async with running(projector):
        assert await wait_for_count(app_conn, 21, table="test_other") == 21
        for _ in range(200):
            state = await _state(app_conn, "test_counter")
            if state and state[0] == "failed":
                break
            await asyncio.sleep(0.05)
        assert state[0] == "failed"
        assert state[1] == poison
        assert "poison event" in state[2]
        assert await counted(app_conn) == 10  # everything before the poison, nothing after

        rows, _ = await status(app_conn)
        by_name = {r.name: r for r in rows}
        assert by_name["test_counter"].state == "failed"
        assert by_name["test_counter"].lag_events == 11
        assert by_name["test_other"].state == "running"
        assert by_name["test_other"].lag_events == 0

        with pytest.raises(SkipRefusedError):
            await skip_event(app_conn, CountingProjection(), poison + 1, store=store)
        await skip_event(app_conn, CountingProjection(), poison, reason="bad data", store=store)
        assert await wait_for_count(app_conn, 20) == 20
        assert (await _state(app_conn, "test_counter"))[0] == "running"
    cur = await app_conn.execute(
        "SELECT data->>'projection', (data->>'global_position')::bigint FROM lufy.events "
        "WHERE type = 'operations.projection_event_skipped'"
    )
    assert await cur.fetchall() == [("test_counter", poison)]


async def test_a_reader_can_wait_until_the_projection_has_its_write(
    settings, tables, app_conn
) -> None:
    store = make_store()
    [position] = await append_counted(app_conn, store, "r", 1)
    assert not await wait_for_projection(app_conn, "test_counter", position, timeout=0.05)
    projector = Projector(settings, [CountingProjection()], options=FAST, store=store)
    async with running(projector):
        assert await wait_for_projection(app_conn, "test_counter", position, timeout=10)
        assert await counted(app_conn) == 1


async def test_a_rebuild_produces_exactly_the_live_rows_and_swaps_them_in(
    settings, tables, app_conn
) -> None:
    store = make_store()
    for i in range(30):
        await append_counted(app_conn, store, f"s{i % 7}", 37, n=i)
    projector = Projector(settings, [CountingProjection()], options=FAST, store=store)
    async with running(projector):
        assert await wait_for_count(app_conn, 30 * 37) == 30 * 37
        before = await (
            await app_conn.execute("SELECT * FROM lufy.test_counter ORDER BY 1")
        ).fetchall()
        result = await rebuild(
            settings.DATABASE_URL, CountingProjection(), store=store, batch_size=100, compare=True
        )
        assert result.swapped
        assert result.differences == {"test_counter": (0, 0), "test_counter_seen": (0, 0)}
        # The live projector goes on after the swap, on the swapped rows.
        await append_counted(app_conn, store, "s0", 5)
        assert await wait_for_count(app_conn, 30 * 37 + 5) == 30 * 37 + 5
    after = await (await app_conn.execute("SELECT * FROM lufy.test_counter ORDER BY 1")).fetchall()
    assert [r for r in after if r[0] != "s0"] == [r for r in before if r[0] != "s0"]
    cur = await app_conn.execute("SELECT count(*) FROM lufy_shadow.test_counter")
    assert (await cur.fetchone())[0] == 0
    cur = await app_conn.execute(
        "SELECT count(*) FROM lufy.events WHERE type = 'operations.projection_rebuilt'"
    )
    assert (await cur.fetchone())[0] == 1
