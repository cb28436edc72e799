"""Projection figures, each a ratio to a baseline measured in the same run.

    python bench/projections.py rebuild [--events 1000000] [--batch-size 5000]
                                        [--range-batch-size N] [--rounds 3]
    python bench/projections.py lag     [--rate 2000] [--seconds 30] [--batch 100] [--writers 2]

rebuild: a rollup projection (plays and listened ms per track and hour) is rebuilt from the log
with `lufy.projections.rebuild` (read gap-free, decode, apply, checkpoint per batch, swap);
the baseline is one `INSERT … SELECT … GROUP BY` computing the same rows from lufy.events. The
figure is rebuild events/s ÷ SQL events/s (target ≥ 0.5); the rows are checked to be equal.
Two versions of the projection are rebuilt: one applying decoded events in Python, one a
RangeProjection applying the log with one set-based statement per range (its first pass covers
everything below the read barrier in steps of `--range-batch-size` log positions).

lag: steady appends (bulk path, `--batch` events per append, paced to `--rate` events/s) while a
projector (its own process) runs the same rollup projection, which also stamps clock_timestamp()
per event; the lag of an event is that stamp minus the moment its append committed. Prints
p50/p99 (target p99 ≤ 1 s), and the ratio of the achieved rate to the requested one.

Each command creates a throw-away database (migrated like production), works as the app role
`lufy_app` and drops the database. Admin: LUFY_BENCH_ADMIN_URL (default: OS user on localhost).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection

from lufy.eventstore import EventCodec, EventStore, NewEvent
from lufy.eventstore.envelope import Event, RecordedEvent
from lufy.migrate import migrate
from lufy.operations.events import EVENTS as OPERATIONS_EVENTS
from lufy.projections.base import Projection
from lufy.projections.ranged import LogRange, RangeProjection
from lufy.projections.rebuild import rebuild
from lufy.projections.runner import Projector, ProjectorOptions
from lufy.settings import load_settings

ADMIN_BASE = os.environ.get(
    "LUFY_BENCH_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)


class Played(Event, frozen=True, tag="bench.played"):
    track: str
    listened_ms: int
    sent_at: float = 0.0


STORE = EventStore(EventCodec([Played, *OPERATIONS_EVENTS]))

TABLES = """
CREATE TABLE IF NOT EXISTS {schema}.bench_rollup (
    track text NOT NULL, hour timestamptz NOT NULL, plays bigint NOT NULL,
    listened_ms bigint NOT NULL, PRIMARY KEY (track, hour)
);
CREATE TABLE IF NOT EXISTS {schema}.bench_lag (
    event_id uuid PRIMARY KEY, applied_at timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.bench_rollup, {schema}.bench_lag TO lufy_app;
"""


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class Rollup(Projection):
    name: ClassVar[str] = "bench_rollup"
    handles: ClassVar[frozenset[str]] = frozenset({"bench.played"})
    tables: ClassVar[tuple[str, ...]] = ("bench_rollup",)
    stamp: ClassVar[bool] = False

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        acc: dict[tuple[str, datetime], list[int]] = defaultdict(lambda: [0, 0])
        for e in events:
            data = e.data
            assert isinstance(data, Played)
            row = acc[(data.track, _hour(e.occurred_at))]
            row[0] += 1
            row[1] += data.listened_ms
        keys = list(acc)
        await conn.execute(
            "INSERT INTO bench_rollup (track, hour, plays, listened_ms) "
            "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::bigint[], %s::bigint[]) "
            "ON CONFLICT (track, hour) DO UPDATE SET plays = bench_rollup.plays + excluded.plays,"
            " listened_ms = bench_rollup.listened_ms + excluded.listened_ms",
            [
                [k[0] for k in keys],
                [k[1] for k in keys],
                [acc[k][0] for k in keys],
                [acc[k][1] for k in keys],
            ],
        )
        if self.stamp:
            await conn.execute(
                "INSERT INTO bench_lag (event_id, applied_at) "
                "SELECT unnest(%s::uuid[]), clock_timestamp()",
                [[e.event_id for e in events]],
            )


class SqlRollup(RangeProjection):
    """The same rollup applied as one INSERT … SELECT … GROUP BY per range of the log."""

    name: ClassVar[str] = "bench_rollup"
    handles: ClassVar[frozenset[str]] = frozenset({"bench.played"})
    tables: ClassVar[tuple[str, ...]] = ("bench_rollup",)

    async def apply_range(self, conn: AsyncConnection[Any], log: LogRange) -> None:
        # Hour buckets in UTC: the two-argument date_trunc in a UTC session is the cheap one
        # (the three-argument form looks the zone up per row). The planner cannot estimate the
        # groups of `data->>'track'` and expects one per event, so it would sort each range to
        # group it: hashing (a few thousand groups per range) is what it should do.
        await conn.execute(
            "SELECT set_config('TimeZone', 'UTC', true), set_config('enable_sort', 'off', true)"
        )
        await conn.execute(
            "INSERT INTO bench_rollup (track, hour, plays, listened_ms) "
            "SELECT data->>'track', date_trunc('hour', occurred_at), count(*), "
            f"sum((data->>'listened_ms')::bigint) FROM lufy.events WHERE {log.where()}"
            " AND type = ANY(%(types)s) GROUP BY 1, 2 "
            "ON CONFLICT (track, hour) DO UPDATE SET plays = bench_rollup.plays + excluded.plays,"
            " listened_ms = bench_rollup.listened_ms + excluded.listened_ms",
            log.params(self),
        )


class StampingRollup(Rollup):
    stamp: ClassVar[bool] = True


def _url(dbname: str, user: str | None = None) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = base.netloc
    if user:
        netloc = f"{user}:{user}@{base.hostname}:{base.port or 5432}"
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


class BenchDatabase:
    def __init__(self) -> None:
        self.name = f"lufy_bench_proj_{uuid.uuid4().hex[:8]}"
        self.admin_url = _url(self.name)
        self.app_url = _url(self.name, "lufy_app")

    def __enter__(self) -> BenchDatabase:
        migrate(self.admin_url, self.app_url)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for schema in ("lufy", "lufy_shadow"):
                conn.execute(TABLES.format(schema=schema).encode())
        return self

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(ADMIN_BASE, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _fill(admin_url: str, events: int) -> None:
    """Plays of 200 tracks over the last 7 days, in time order as a log is (about 34k rollup
    rows), written straight into the log with one statement (the log's own append path is
    measured by bench/eventstore.py)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data, occurred_at)
            SELECT gen_random_uuid(), 'bench', 'track-' || ((i * 7919) %% 200), 'bench.played',
                   jsonb_build_object('track', 'track-' || ((i * 7919) %% 200),
                                      'listened_ms', (i * 7919) %% 240000),
                   now() - interval '7 days' + make_interval(secs => i * 604800.0 / %s)
            FROM generate_series(1::bigint, %s::bigint) AS i
            """,
            [events, events],
        )
        conn.execute("VACUUM ANALYZE lufy.events")


BASELINE = """
INSERT INTO expected (track, hour, plays, listened_ms)
SELECT data->>'track', date_trunc('hour', occurred_at), count(*),
       sum((data->>'listened_ms')::bigint)
FROM lufy.events WHERE type = 'bench.played'
GROUP BY 1, 2
"""


async def _rebuild_and_check(
    conn: AsyncConnection[Any], url: str, projection: Projection, batch_size: int
) -> tuple[float, int, int]:
    t = time.perf_counter()
    result = await rebuild(url, projection, store=STORE, batch_size=batch_size)
    seconds = time.perf_counter() - t
    cur = await conn.execute(
        "SELECT (SELECT count(*) FROM (SELECT * FROM expected EXCEPT "
        "SELECT * FROM lufy.bench_rollup) a) + (SELECT count(*) FROM (SELECT * FROM "
        "lufy.bench_rollup EXCEPT SELECT * FROM expected) b), "
        "(SELECT count(*) FROM lufy.bench_rollup)"
    )
    differing, rows = await cur.fetchone()  # type: ignore[misc]
    return seconds, int(differing), int(rows) if result.events_applied else 0


async def bench_rebuild(events: int, batch_size: int, range_batch_size: int, rounds: int) -> None:
    with BenchDatabase() as db:
        t = time.perf_counter()
        _fill(db.admin_url, events)
        print(
            f"log filled with {events:,} events in {time.perf_counter() - t:.1f}s", file=sys.stderr
        )
        async with await AsyncConnection.connect(db.app_url, autocommit=True) as conn:
            # The baseline, with the session in UTC like the projections' hour buckets; it
            # runs before and after every rebuild, and the median is the figure's denominator
            # (the shared machine's load swings a single run by several times).
            await conn.execute("SET TimeZone = 'UTC'")
            await conn.execute("CREATE TEMP TABLE expected (LIKE lufy.bench_rollup INCLUDING ALL)")
            sql_runs: list[float] = []

            async def baseline() -> None:
                await conn.execute("TRUNCATE expected")
                t = time.perf_counter()
                await conn.execute(BASELINE)
                sql_runs.append(time.perf_counter() - t)

            await baseline()
            py = await _rebuild_and_check(conn, db.app_url, Rollup(), batch_size)
            await baseline()
            ranged = []
            for _ in range(rounds):
                ranged.append(
                    await _rebuild_and_check(conn, db.app_url, SqlRollup(), range_batch_size)
                )
                await baseline()
        sql_seconds = statistics.median(sql_runs)
        sql_eps = events / sql_seconds
        print(
            f"INSERT…SELECT…GROUP BY over {events:,} events: {sql_eps:,.0f} events/s "
            f"(median of {len(sql_runs)}: {sql_seconds:.1f}s; "
            f"runs {', '.join(f'{r:.1f}' for r in sql_runs)}s)"
        )
        ranged.sort()
        for label, (seconds, differing, rows) in (
            (f"rollup projection, Python apply, batches of {batch_size:,}", py),
            (
                f"rollup RangeProjection, SQL apply, first pass in steps of {range_batch_size:,} "
                f"(median of {rounds})",
                ranged[len(ranged) // 2],
            ),
        ):
            eps = events / seconds
            print(
                f"rebuild, {label}: {eps:,.0f} events/s ({seconds:.1f}s, {rows:,} rows, "
                f"{differing} differing from SQL); ratio {eps / sql_eps:.2f} (target ≥ 0.5)"
            )


def _projector_process(app_url: str, admin_url: str) -> None:
    """The projector of the lag figure, in its own process as in production."""
    settings = load_settings(DATABASE_URL=app_url, DATABASE_ADMIN_URL=admin_url)
    projector = Projector(
        settings, [StampingRollup()], options=ProjectorOptions(maintenance=False), store=STORE
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, projector.stop)
        await projector.run()

    asyncio.run(run())


async def bench_lag(rate: float, seconds: float, batch: int, writers: int) -> None:
    with BenchDatabase() as db:
        child = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
            [sys.executable, __file__, "_projector", db.app_url, db.admin_url],
            stderr=subprocess.DEVNULL,
        )
        committed: dict[uuid.UUID, float] = {}
        sent = [0] * writers

        async def writer(w: int, start: float) -> None:
            interval = batch * writers / rate
            next_at = start + w * interval / writers
            async with await AsyncConnection.connect(db.app_url, autocommit=True) as conn:
                while time.perf_counter() - start < seconds:
                    items = [
                        NewEvent(
                            event=Played(track=f"track-{i % 500}", listened_ms=30_000),
                            stream_type="bench",
                            stream_id=f"session-{w}-{sent[w] + i}",
                        )
                        for i in range(batch)
                    ]
                    await STORE.append_bulk(conn, items)
                    done = time.time()
                    for item in items:
                        committed[item.event_id] = done
                    sent[w] += batch
                    next_at += interval
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)

        # The read barrier is cluster-wide: any database's open transaction holds every reader
        # back. Sample who holds it, to tell the projector's lag from a neighbour's.
        held: list[tuple[float, str, float]] = []

        async def watch(until: float) -> None:
            async with await AsyncConnection.connect(db.admin_url, autocommit=True) as conn:
                while time.perf_counter() < until:
                    cur = await conn.execute(
                        "SELECT datname, extract(epoch FROM now() - xact_start)::float8 "
                        "FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                        "ORDER BY age(backend_xid) DESC LIMIT 1"
                    )
                    row = await cur.fetchone()
                    if row is not None and row[1] is not None and row[1] > 0.25:
                        held.append((time.time(), str(row[0]), float(row[1])))
                    await asyncio.sleep(0.1)

        try:
            await asyncio.sleep(3.0)  # the child imports, leads, reads the empty log
            start = time.perf_counter()
            watcher = asyncio.create_task(watch(start + seconds))
            await asyncio.gather(*(writer(w, start) for w in range(writers)))
            await watcher
            elapsed = time.perf_counter() - start
            total = sum(sent)
            async with await AsyncConnection.connect(db.app_url, autocommit=True) as conn:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    cur = await conn.execute("SELECT count(*) FROM lufy.bench_lag")
                    if (await cur.fetchone())[0] >= total:  # type: ignore[index]
                        break
                    await asyncio.sleep(0.2)
                cur = await conn.execute("SELECT event_id, applied_at FROM lufy.bench_lag")
                stamps = await cur.fetchall()
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)
        lags = sorted(row[1].timestamp() - committed[row[0]] for row in stamps)
        q = statistics.quantiles(lags, n=100)
        achieved = total / elapsed
        print(
            f"append→read-model lag under {achieved:,.0f} events/s for {elapsed:.0f}s "
            f"({len(lags):,}/{total:,} events applied; {writers} writers, appends of {batch}): "
            f"p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms "
            f"(target p99 ≤ 1000 ms); achieved/requested rate {achieved / rate:.2f}"
        )
        others = [h for h in held if h[1] != db.name]
        if others:
            longest = max(others, key=lambda h: h[2])
            print(
                f"  read barrier held > 0.25 s by other databases' transactions in {len(others)} "
                f"of ~{int(seconds * 10)} samples (longest {longest[2]:.1f}s, {longest[1]})"
            )
        late = [lag for lag in lags if lag > 0.5]
        if late:
            print(f"  {len(late):,} events ({len(late) / len(lags):.1%}) took over 0.5 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rebuild")
    r.add_argument("--events", type=int, default=1_000_000)
    r.add_argument("--batch-size", type=int, default=5000)
    r.add_argument(
        "--range-batch-size",
        type=int,
        default=SqlRollup.rebuild_step,
        help="log positions per transaction of the first pass",
    )
    r.add_argument("--rounds", type=int, default=3, help="rebuilds of the range projection")
    lag = sub.add_parser("lag")
    lag.add_argument("--rate", type=float, default=2000)
    lag.add_argument("--seconds", type=float, default=30)
    lag.add_argument("--batch", type=int, default=100)
    lag.add_argument("--writers", type=int, default=2)
    if sys.argv[1:2] == ["_projector"]:
        _projector_process(sys.argv[2], sys.argv[3])
        return
    args = parser.parse_args()
    if args.command == "rebuild":
        asyncio.run(bench_rebuild(args.events, args.batch_size, args.range_batch_size, args.rounds))
    else:
        asyncio.run(bench_lag(args.rate, args.seconds, args.batch, args.writers))


if __name__ == "__main__":
    main()
