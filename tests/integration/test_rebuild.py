from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from psycopg import AsyncConnection

from lufy.eventstore import ANY, EventStore, NewEvent
from lufy.projections.inline import append_inline
from lufy.projections.ranged import LogRange
from lufy.projections.rebuild import rebuild
from lufy.projections.runner import Projector

from ._projection_helpers import (
    FAST,
    Counted,
    CountingProjection,
    RangeCounter,
    append_counted,
    counted,
    create_tables,
    make_store,
    wait_for_count,
)


class _Interrupted(Exception):
    pass


class CountingProjectionV2(CountingProjection):
    version: ClassVar[int] = 2


async def _caught_up_projector(settings, store, projection, expected, app_conn) -> None:
    projector = Projector(settings, [projection], options=FAST, store=store)
    task = asyncio.create_task(projector.run())
    try:
        got = await wait_for_count(app_conn, expected)
        if got != expected:
            cur = await app_conn.execute("SELECT * FROM lufy.projection_state")
            raise AssertionError(f"counted {got}, not {expected}: {await cur.fetchall()}")
    finally:
        projector.stop()
        await asyncio.wait_for(task, timeout=20)


async def test_an_interrupted_rebuild_resumes_where_it_stopped_and_matches_live(
    settings, app_conn
) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    for i in range(40):
        await append_counted(app_conn, store, f"s{i % 3}", 25, n=i)
    await _caught_up_projector(settings, store, CountingProjection(), 1000, app_conn)

    seen: list[int] = []

    def stop_midway(done: int, total: int) -> None:
        seen.append(done)
        if done >= 400:
            raise _Interrupted  # as Ctrl-C (or kill -9) between two batches would

    with pytest.raises(_Interrupted):
        await rebuild(
            settings.DATABASE_URL,
            CountingProjection(),
            store=store,
            batch_size=100,
            progress=stop_midway,
        )
    cur = await app_conn.execute(
        "SELECT events_applied FROM lufy.projection_rebuilds WHERE name = 'test_counter'"
    )
    assert (await cur.fetchone())[0] == 400

    progress: list[tuple[int, int]] = []
    result = await rebuild(
        settings.DATABASE_URL,
        CountingProjection(),
        store=store,
        batch_size=100,
        progress=lambda d, t: progress.append((d, t)),
        compare=True,
    )
    assert result.resumed
    # Reported from the first batch on (resumed after 400 events; the total counted meanwhile).
    assert progress[0] == (500, 1000)
    assert progress[-1] == (1000, 1000)
    assert result.events_applied == 1000
    assert result.differences == {"test_counter": (0, 0), "test_counter_seen": (0, 0)}


async def test_a_rebuild_until_a_time_builds_the_past_without_touching_live(
    settings, app_conn
) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    await append_counted(app_conn, store, "a", 10)
    cur = await app_conn.execute("SELECT clock_timestamp()")
    cut = (await cur.fetchone())[0]
    await asyncio.sleep(0.02)
    await append_counted(app_conn, store, "a", 5)
    await _caught_up_projector(settings, store, CountingProjection(), 15, app_conn)

    result = await rebuild(settings.DATABASE_URL, CountingProjection(), store=store, until=cut)
    assert not result.swapped
    assert result.events_applied == 10
    cur = await app_conn.execute("SELECT events FROM lufy_shadow.test_counter")
    assert await cur.fetchall() == [(10,)]
    assert await counted(app_conn) == 15


async def test_a_new_version_is_rebuilt_by_the_projector_before_it_goes_on(
    settings, app_conn
) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    await append_counted(app_conn, store, "a", 30)
    await _caught_up_projector(settings, store, CountingProjection(), 30, app_conn)
    # Corrupt the live model so that only a rebuild can put it right.
    await app_conn.execute("UPDATE lufy.test_counter SET events = 1")
    await append_counted(app_conn, store, "a", 3)

    await _caught_up_projector(settings, store, CountingProjectionV2(), 33, app_conn)
    assert await counted(app_conn) == 33
    cur = await app_conn.execute(
        "SELECT version, state FROM lufy.projection_state WHERE name = 'test_counter'"
    )
    assert await cur.fetchone() == (2, "running")
    cur = await app_conn.execute(
        "SELECT (data->>'version')::int FROM lufy.events "
        "WHERE type = 'operations.projection_rebuilt'"
    )
    assert await cur.fetchall() == [(2,)]


async def _240_events_applied_live_by_a_range_counter(settings, app_conn) -> EventStore:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    for i in range(12):
        await append_counted(app_conn, store, f"s{i % 4}", 20)
    projector = Projector(settings, [RangeCounter()], options=FAST, store=store)
    task = asyncio.create_task(projector.run())
    try:
        assert await wait_for_count(app_conn, 240, table="test_other") == 240
    finally:
        projector.stop()
        await asyncio.wait_for(task, timeout=20)
    return store


async def test_a_range_projection_applies_live_and_rebuilds_to_the_same_rows(
    settings, app_conn
) -> None:
    store = await _240_events_applied_live_by_a_range_counter(settings, app_conn)
    result = await rebuild(
        settings.DATABASE_URL, RangeCounter(), store=store, batch_size=50, compare=True
    )
    assert result.differences == {"test_other": (0, 0)}
    assert result.events_applied == 240
    assert await counted(app_conn, "test_other") == 240


async def test_an_interrupted_first_pass_of_a_range_projection_resumes_at_its_position(
    settings, app_conn
) -> None:
    store = await _240_events_applied_live_by_a_range_counter(settings, app_conn)

    def stop_after_two_steps(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == 2:
            raise _Interrupted

    calls: list[tuple[int, int]] = []
    with pytest.raises(_Interrupted):
        await rebuild(
            settings.DATABASE_URL,
            RangeCounter(),
            store=store,
            batch_size=50,
            progress=stop_after_two_steps,
        )
    cur = await app_conn.execute(
        "SELECT global_position, first_pass_below IS NOT NULL, first_pass_end "
        "FROM lufy.projection_rebuilds WHERE name = 'test_other'"
    )
    position, in_first_pass, end = await cur.fetchone()
    assert (position, in_first_pass) == (100, True)
    assert end >= 240
    cur = await app_conn.execute("SELECT coalesce(sum(events), 0) FROM lufy_shadow.test_other")
    shadow_so_far = (await cur.fetchone())[0]
    assert 0 < shadow_so_far < 240

    result = await rebuild(
        settings.DATABASE_URL, RangeCounter(), store=store, batch_size=50, compare=True
    )
    assert result.resumed
    assert result.differences == {"test_other": (0, 0)}
    assert result.events_applied == 240
    assert await counted(app_conn, "test_other") == 240


class HookedRangeCounter(RangeCounter):
    """RangeCounter that lets the test act between the first pass's steps."""

    hook: ClassVar[list[Any]] = []

    async def apply_range(self, conn: AsyncConnection[Any], log: LogRange) -> None:
        for act in self.hook:
            await act(log)
        await super().apply_range(conn, log)


async def test_a_first_pass_under_concurrent_commits_and_a_held_transaction_counts_each_once(
    settings, app_conn
) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    for i in range(10):
        await append_counted(app_conn, store, f"s{i % 3}", 20)
    # A transaction open across the rebuild's start holds the read barrier below itself: its
    # events are not in the first pass, and must still be applied exactly once.
    held = await AsyncConnection.connect(settings.DATABASE_URL)
    await append_counted(held, store, "held", 7)
    written = 200 + 7
    steps: list[LogRange] = []
    async with await AsyncConnection.connect(settings.DATABASE_URL, autocommit=True) as writer:

        async def during_the_pass(log: LogRange) -> None:
            nonlocal written
            if log.by_checkpoints:
                return
            steps.append(log)
            await append_counted(writer, store, "late", 3)  # committed above the barrier
            written += 3
            if len(steps) == 2:
                await held.commit()

        HookedRangeCounter.hook = [during_the_pass]
        projector = Projector(settings, [HookedRangeCounter()], options=FAST, store=store)
        task = asyncio.create_task(projector.run())
        try:
            result = await rebuild(
                settings.DATABASE_URL,
                HookedRangeCounter(),
                store=store,
                batch_size=30,
                compare=True,
            )
            assert len(steps) >= 7  # 200+ positions in steps of 30
            assert all(s.below == steps[0].below for s in steps)
            assert result.differences == {"test_other": (0, 0)}
            assert await wait_for_count(app_conn, written, table="test_other") == written
            await asyncio.sleep(0.5)  # nothing more may arrive: each event counted once
            assert await counted(app_conn, "test_other") == written
        finally:
            HookedRangeCounter.hook = []
            projector.stop()
            await asyncio.wait_for(task, timeout=20)
            await held.close()
    cur = await app_conn.execute("SELECT stream_id, events FROM lufy.test_other ORDER BY 1")
    assert dict(await cur.fetchall()) == {
        "held": 7,
        "late": written - 207,
        "s0": 80,
        "s1": 60,
        "s2": 60,
    }


class InlineCounter(CountingProjection):
    inline: ClassVar[bool] = True


async def test_an_inline_projection_rebuilds_while_its_writers_keep_writing(
    settings, app_conn
) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    written = 0

    async def write(rounds: int) -> None:
        nonlocal written
        async with await AsyncConnection.connect(settings.DATABASE_URL) as conn:
            for _ in range(rounds):
                async with conn.transaction():
                    await append_inline(
                        store,
                        conn,
                        "test",
                        "inline",
                        [NewEvent(event=Counted()) for _ in range(5)],
                        expected=ANY,
                        projections=[InlineCounter()],
                    )
                written += 5
                await asyncio.sleep(0.005)

    await write(40)
    writers = asyncio.create_task(write(60))
    result = await rebuild(
        settings.DATABASE_URL, InlineCounter(), store=store, batch_size=50, compare=True
    )
    await writers
    assert result.swapped
    assert result.differences == {"test_counter": (0, 0), "test_counter_seen": (0, 0)}
    assert await counted(app_conn) == written == 500
    cur = await app_conn.execute("SELECT count(*) FROM lufy.test_counter_seen")
    assert (await cur.fetchone())[0] == 500
