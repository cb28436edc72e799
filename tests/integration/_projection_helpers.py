"""Test-only projections, events and a projector entrypoint for subprocesses.

`python -m tests.integration._projection_helpers DATABASE_URL REDIS_URL` runs a projector with
the counting projection only (the kill -9 tests start and kill it).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import psycopg
from psycopg import AsyncConnection

from lufy.eventstore import ANY, EventStore, NewEvent
from lufy.eventstore.codec import EventCodec
from lufy.eventstore.envelope import Event, RecordedEvent
from lufy.jobs import JobSpec
from lufy.operations.events import EVENTS as OPERATIONS_EVENTS
from lufy.projections.base import Projection
from lufy.projections.ranged import LogRange, RangeProjection
from lufy.projections.reactors import Reactor
from lufy.projections.runner import Projector, ProjectorOptions
from lufy.settings import Settings, load_settings


class Counted(Event, frozen=True, tag="test.counted"):
    n: int = 1
    poison: bool = False


def make_store() -> EventStore:
    return EventStore(EventCodec(events=[Counted, *OPERATIONS_EVENTS]))


TABLES_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.test_counter (
    stream_id text PRIMARY KEY, events bigint NOT NULL, total bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.test_counter_seen (event_id uuid PRIMARY KEY);
CREATE TABLE IF NOT EXISTS {schema}.test_other (stream_id text PRIMARY KEY, events bigint NOT NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.test_counter, {schema}.test_counter_seen,
    {schema}.test_other TO lufy_app;
"""


async def create_tables(admin_url: str) -> None:
    async with await AsyncConnection.connect(admin_url, autocommit=True) as conn:
        for schema in ("lufy", "lufy_shadow"):
            await conn.execute(TABLES_SQL.format(schema=schema).encode())


class CountingProjection(Projection):
    """Per stream: how many events and the sum of `n`; every event id once (a PK catches a
    double application loudly). Raises on a poison event."""

    name: ClassVar[str] = "test_counter"
    version: ClassVar[int] = 1
    handles: ClassVar[frozenset[str]] = frozenset({"test.counted"})
    tables: ClassVar[tuple[str, ...]] = ("test_counter", "test_counter_seen")
    honour_poison: ClassVar[bool] = True

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        counts: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        for e in events:
            assert isinstance(e.data, Counted)
            if e.data.poison and self.honour_poison:
                raise ValueError(f"poison event at {e.global_position}")
            counts[e.stream_id] += 1
            totals[e.stream_id] += e.data.n
        await conn.execute(
            "INSERT INTO test_counter_seen (event_id) SELECT unnest(%s::uuid[])",
            [[e.event_id for e in events]],
        )
        await conn.execute(
            "INSERT INTO test_counter (stream_id, events, total) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) "
            "ON CONFLICT (stream_id) DO UPDATE SET events = test_counter.events + excluded.events,"
            " total = test_counter.total + excluded.total",
            [list(counts), [counts[k] for k in counts], [totals[k] for k in counts]],
        )


class OtherProjection(Projection):
    """A second projection over the same events that never fails."""

    name: ClassVar[str] = "test_other"
    handles: ClassVar[frozenset[str]] = frozenset({"test.counted"})
    tables: ClassVar[tuple[str, ...]] = ("test_other",)

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        counts = Counter(e.stream_id for e in events)
        await conn.execute(
            "INSERT INTO test_other (stream_id, events) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[]) "
            "ON CONFLICT (stream_id) DO UPDATE SET events = test_other.events + excluded.events",
            [list(counts), list(counts.values())],
        )


class EffectReactor(Reactor):
    name: ClassVar[str] = "test_effect_reactor"
    handles: ClassVar[frozenset[str]] = frozenset({"test.counted"})
    start_at_head: ClassVar[bool] = False

    def jobs(self, event: RecordedEvent) -> list[JobSpec]:
        return [
            JobSpec(
                actor="test_effect_job",
                queue="email-send",
                payload={"stream_id": event.stream_id},
                key=str(event.event_id),
            )
        ]


FAST = ProjectorOptions(
    batch_size=200,
    poll_interval=0.2,
    retry_delays=(0.05, 0.1),
    failed_check_interval=0.1,
    failed_retry_interval=3.0,
    lead_retry_interval=0.2,
    maintenance=False,
)


async def append_counted(
    conn: AsyncConnection[Any], store: EventStore, stream: str, count: int, **fields: Any
) -> list[int]:
    result = await store.append(
        conn,
        "test",
        stream,
        [NewEvent(event=Counted(**fields), event_id=uuid.uuid4()) for _ in range(count)],
        expected=ANY,
    )
    return result.positions


async def counted_fixture(
    settings: Any, admin: Any, app_conn: AsyncConnection[Any], sql: str
) -> Any:
    """The counter tables, `sql` run as admin on them (indexes, policies), and 24 counted events
    in three streams: what the rebuild and swap tests start from."""
    await create_tables(settings.DATABASE_ADMIN_URL)
    await admin.execute(sql.encode())
    store = make_store()
    for i in range(12):
        await append_counted(app_conn, store, f"s{i % 3}", 10, n=2)
    return store


async def counted(conn: AsyncConnection[Any], table: str = "test_counter") -> int:
    cur = await conn.execute(f"SELECT coalesce(sum(events), 0) FROM lufy.{table}")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def wait_for_count(
    conn: AsyncConnection[Any], expected: int, *, table: str = "test_counter", within: float = 120
) -> int:
    deadline = time.monotonic() + within
    value = await counted(conn, table)
    while value < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        value = await counted(conn, table)
    return value


async def _main(database_url: str, redis_url: str) -> None:
    settings: Settings = load_settings(
        DATABASE_URL=database_url, REDIS_URL=redis_url, LUFY_ENV="test"
    )
    projector = Projector(settings, [CountingProjection()], options=FAST, store=make_store())
    await projector.run()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, psycopg.OperationalError):
        asyncio.run(_main(sys.argv[1], sys.argv[2]))


class RangeCounter(RangeProjection):
    """OtherProjection's rows, applied as one statement per range of the log."""

    name: ClassVar[str] = "test_other"
    handles: ClassVar[frozenset[str]] = frozenset({"test.counted"})
    tables: ClassVar[tuple[str, ...]] = ("test_other",)

    async def apply_range(self, conn: AsyncConnection[Any], log: LogRange) -> None:
        await conn.execute(
            "INSERT INTO test_other (stream_id, events) "
            f"SELECT stream_id, count(*) FROM lufy.events WHERE {log.where()}"
            " AND type = ANY(%(types)s) GROUP BY stream_id "
            "ON CONFLICT (stream_id) DO UPDATE SET events = test_other.events + excluded.events",
            log.params(self),
        )
