"""The end of a rebuild before its swap: the shadow copies made durable (`persist_shadow`).

A rebuild fills its shadow copies UNLOGGED and without the indexes only readers use
(`RangeProjection.rebuild_deferred_indexes`). Once it has caught up, each copy is made LOGGED
(`ALTER TABLE … SET LOGGED`: the table rewritten into the WAL, with the indexes it has),
given every index of its live table it lacks, and its statistics (ANALYZE: the exchanged tables
come with them, and ANALYZE stays out of the swap's transaction).

Each of those is one backend's work, so they are shared out between PERSIST_CONNECTIONS
connections working at the same time, as *jobs* taken by whichever connection is free: SET
LOGGED of a table (biggest first), then its ANALYZE on the same connection, after which each
index it lacks is a job of its own. The indexes SET LOGGED would rebuild one after the other
(those of the live table that back no constraint) are dropped first and built as such jobs
too: the biggest table's indexes (the sessions: five, about half its size) are then built on
both connections at once instead of in a row behind its rewrite. A table whose missing
indexes have expressions is analyzed after them (ANALYZE gathers those expressions'
statistics). ANALYZE and an index build of the same table wait for each other (their locks
conflict), so a table's indexes follow its ANALYZE.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

from lufy.projections.context import process_label
from lufy.sqlfiles import load_queries

__all__ = ["PERSIST_CONNECTIONS", "persist_shadow"]

_R = load_queries("lufy.projections", "rebuild.sql")

# Connections making the shadow copies durable at the end of a rebuild (the rebuild's own and
# others on its url).
PERSIST_CONNECTIONS = 2


@dataclass(frozen=True)
class _Job:
    kind: str  # "logged" (SET LOGGED, then ANALYZE unless `later`), "index", "analyze"
    table: str
    rank: int  # the table's place by size (0: the biggest): jobs of bigger tables first
    index: str = ""


@dataclass
class _Plan:
    """The jobs left, handed to the connections as they become free."""

    tables: list[_Job]  # SET LOGGED, biggest table first
    indexes: dict[str, list[str]]  # the indexes each table lacks, biggest first
    later: set[str]  # tables analyzed after their indexes (indexes with expressions)
    ready: list[_Job] = field(default_factory=list)
    left: dict[str, int] = field(default_factory=dict)  # index jobs not done, per table
    busy: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def next(self) -> _Job | None:
        """The next job (None: nothing left), waiting while the only jobs left depend on one
        another connection is doing."""
        async with self.changed:
            while True:
                # The first of either list, by table size (SET LOGGED first at equal size).
                heads = [jobs for jobs in (self.tables, self.ready) if jobs]
                if heads:
                    jobs = min(heads, key=lambda js: (js[0].rank, js[0].kind != "logged"))
                    self.busy += 1
                    return jobs.pop(0)
                if not self.busy:
                    return None
                await self.changed.wait()

    async def done(self, job: _Job) -> None:
        async with self.changed:
            self.busy -= 1
            if job.kind == "logged":
                names = self.indexes.get(job.table, [])
                self.left[job.table] = len(names)
                self.ready += [_Job("index", job.table, job.rank, name) for name in names]
                if not names and job.table in self.later:  # (nothing to wait for)
                    self.ready.append(_Job("analyze", job.table, job.rank))
            elif job.kind == "index":
                self.left[job.table] -= 1
                if not self.left[job.table] and job.table in self.later:
                    self.ready.append(_Job("analyze", job.table, job.rank))
            self.ready.sort(key=lambda j: j.rank)
            self.changed.notify_all()


async def _run(conn: AsyncConnection[Any], plan: _Plan, job: _Job) -> None:
    if job.kind == "logged":
        await conn.execute(_R.set_shadow_logged, {"tables": [job.table], "logged": True})
        if job.table not in plan.later:
            await conn.execute(_R.analyze_shadow, {"tables": [job.table]})
    elif job.kind == "index":
        await conn.execute(_R.create_shadow_index, {"table": job.table, "index": job.index})
    else:
        await conn.execute(_R.analyze_shadow, {"tables": [job.table]})


async def persist_shadow(conn: AsyncConnection[Any], url: str, tables: list[str]) -> None:
    """Make the shadow copies of `tables` LOGGED, give them every index of the live tables
    they lack and their statistics, on `conn` (autocommit) and PERSIST_CONNECTIONS - 1 other
    connections on `url` at the same time."""
    cur = await conn.execute(_R.shadow_sizes, {"tables": tables})
    by_size = [str(row[0]) for row in await cur.fetchall()]  # biggest first
    cur = await conn.execute(_R.rebuilt_indexes, {"tables": tables})
    rebuilt = list((await cur.fetchone() or ([],))[0])
    if rebuilt:
        await conn.execute(_R.drop_deferred_indexes, {"tables": tables, "names": rebuilt})
    cur = await conn.execute(_R.missing_indexes, {"tables": tables})
    indexes: dict[str, list[str]] = defaultdict(list)
    later: set[str] = set()
    for table, index, expressions in await cur.fetchall():
        indexes[table].append(index)
        if expressions:
            later.add(table)
    plan = _Plan(
        tables=[_Job("logged", table, rank) for rank, table in enumerate(by_size)],
        indexes=dict(indexes),
        later=later,
    )

    async def lane(lane_conn: AsyncConnection[Any]) -> None:
        while (job := await plan.next()) is not None:
            await _run(lane_conn, plan, job)
            await plan.done(job)

    async def lane_apart() -> None:
        async with await AsyncConnection.connect(
            url, autocommit=True, application_name=process_label("rebuild")
        ) as other:
            await lane(other)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(PERSIST_CONNECTIONS, len(by_size)) - 1):
            group.create_task(lane_apart())
        group.create_task(lane(conn))
