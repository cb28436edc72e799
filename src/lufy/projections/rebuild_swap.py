"""The swap of a rebuild: the shadow copy replaces the live rows in one transaction.

The transaction stops the live projector (it holds the live checkpoint row locked) or, for an
inline projection, its writers (EXCLUSIVE lock on the live tables: readers are not blocked),
applies the last events to the shadow copy, exchanges the live tables with their shadow copies
(`lufy.swap_shadow_tables`, sql/0610_rebuild_swap_tables.sql: the tables move between the
schemas, the views reading them are re-pointed, each side keeps its privileges, comments and
row-level-security switches), records the version, moves the live checkpoint and appends
`operations.projection_rebuilt` (see `projections.rebuild`). When a table cannot be exchanged
(something outside it is bound to it: a foreign key, a materialized view...) the live rows are
replaced by the shadow rows instead (DELETE + INSERT). Also: comparing the shadow copy with the
live model, and emptying the shadow copy afterwards (it then holds the old live rows).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, NamedTuple

import psycopg
from psycopg import AsyncConnection, sql

from lufy.eventstore.envelope import ANY, Checkpoint, NewEvent
from lufy.eventstore.postgres import EventStore
from lufy.logs import get_logger
from lufy.operations.events import ProjectionRebuilt
from lufy.projections.applier import Batch, apply_events, apply_within
from lufy.projections.base import Projection
from lufy.projections.context import (
    LIVE_PATH,
    LIVE_SCHEMA,
    SHADOW_PATH,
    SHADOW_SCHEMA,
    Q,
    checkpoint_of,
    decode_rows,
    enter_system_transaction,
)
from lufy.projections.ranged import LogRange, RangeProjection
from lufy.projections.rebuild_persist import persist_shadow
from lufy.sqlfiles import load_queries

__all__ = ["SWAP_ATTEMPTS", "SWAP_LOCK_TIMEOUT", "ShadowSwap", "Swapped"]

_R = load_queries("lufy.projections", "rebuild.sql")

_log = get_logger("lufy.projections.rebuild")
# The swap of an inline projection waits this long for a live table's lock before it gives way
# to the writers and retries (it must stay below deadlock_timeout, 1 s by default).
SWAP_LOCK_TIMEOUT = "200ms"
SWAP_ATTEMPTS = 100


class Swapped(NamedTuple):
    final: Checkpoint  # the live checkpoint after the swap
    extra: int  # events applied inside the swap's transaction
    # table -> (rows only in the live model, rows only in the rebuilt one); empty unless asked
    differences: dict[str, tuple[int, int]]


@dataclass
class ShadowSwap:
    conn: AsyncConnection[Any]
    store: EventStore
    p: Projection
    batch_size: int
    types: list[str]

    @property
    def name(self) -> str:
        return self.p.name

    async def persist_shadow(self, url: str) -> None:
        """Make the shadow copies durable before the swap (or before they are left for
        inspection): LOGGED, with every index of the live tables and their statistics
        (rebuild_persist.py, on several connections at once)."""
        await persist_shadow(self.conn, url, list(self.p.tables))

    async def swap(self, checkpoint: Checkpoint, applied: int, *, compare: bool) -> Swapped:
        """Swap the shadow copy in (`applied`: events applied to it before), once
        `persist_shadow` made it durable. For an inline projection the swap locks the live
        tables, which its writers write in an order of their own: when the two orders cross,
        the swap (waiting at most SWAP_LOCK_TIMEOUT, below PostgreSQL's deadlock_timeout)
        gives way, rolls back and tries again, so a writer's transaction is never the deadlock
        victim."""
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            try:
                return await self._swap_once(checkpoint, applied, compare=compare)
            except psycopg.errors.LockNotAvailable:
                if attempt == SWAP_ATTEMPTS:
                    raise
                _log.info("rebuild.swap_retry", projection=self.name, attempt=attempt)
                await asyncio.sleep(min(0.02 * attempt, 0.5))
        raise AssertionError("unreachable")

    async def _swap_once(self, checkpoint: Checkpoint, applied: int, *, compare: bool) -> Swapped:
        async with self.conn.transaction():
            await enter_system_transaction(self.conn, SHADOW_PATH)
            if self.p.inline:
                final, extra = await self._stop_writers(checkpoint)
            else:
                final, extra = await self._stop_projector(checkpoint)
            differences = await self.differences() if compare else {}
            await self._exchange()
            await enter_system_transaction(self.conn, LIVE_PATH)
            await self._record(final, applied + extra)
        return Swapped(final, extra, differences)

    async def _stop_writers(self, checkpoint: Checkpoint) -> tuple[Checkpoint, int]:
        """Inline: lock the live tables, then apply everything committed."""
        conn = self.conn
        # Writers of the live tables wait; readers do not. Writers that got in first
        # have committed once the lock is granted, so their events are visible now.
        await conn.execute(
            sql.SQL(_R.set_lock_timeout).format(timeout=sql.Literal(SWAP_LOCK_TIMEOUT))
        )
        for table in self.p.tables:
            await conn.execute(
                sql.SQL(_R.lock_exclusive).format(table=sql.Identifier(LIVE_SCHEMA, table))
            )
        await conn.execute(_R.reset_lock_timeout)
        return await self._drain(Q.read_visible, checkpoint, None)

    async def _stop_projector(self, checkpoint: Checkpoint) -> tuple[Checkpoint, int]:
        """Async: lock the live checkpoint row, then apply up to it."""
        await self.conn.execute(Q.ensure_checkpoint, {"name": self.name, "tx": 0, "pos": 0})
        cur = await self.conn.execute(Q.lock_checkpoint, {"name": self.name})
        live = checkpoint_of(await cur.fetchone())
        if live > checkpoint:
            _, extra = await self._drain(Q.read_range, checkpoint, live)
            return live, extra
        return checkpoint, 0

    async def _record(self, final: Checkpoint, events_applied: int) -> None:
        """The live checkpoint, the state and version rows, and `projection_rebuilt`."""
        conn = self.conn
        if not self.p.inline:
            await conn.execute(
                Q.set_checkpoint,
                {"name": self.name, "tx": final.transaction_id, "pos": final.global_position},
            )
        await conn.execute(
            Q.ensure_state,
            {
                "name": self.name,
                "version": self.p.version,
                "kind": "inline" if self.p.inline else "async",
            },
        )
        await conn.execute(Q.set_version, {"name": self.name, "version": self.p.version})
        await conn.execute(Q.finish_rebuild, {"name": self.name})
        await self.store.append(
            conn,
            "operations",
            self.name,
            [
                NewEvent(
                    event=ProjectionRebuilt(
                        projection=self.name,
                        version=self.p.version,
                        events_applied=events_applied,
                    )
                )
            ],
            expected=ANY,
        )

    async def _drain(
        self, query: Any, checkpoint: Checkpoint, to: Checkpoint | None
    ) -> tuple[Checkpoint, int]:
        """Inside the swap transaction: apply what the shadow copy still lacks."""
        applied = 0
        if isinstance(self.p, RangeProjection) and to is not None:
            if to > checkpoint:
                applied = await self._count_between(checkpoint, to)
                await apply_within(self.conn, [self.p], Batch(checkpoint, to, count=applied))
            return max(checkpoint, to), applied
        while True:
            params: dict[str, Any] = {
                "tx": checkpoint.transaction_id,
                "pos": checkpoint.global_position,
                "types": self.types,
                "limit": self.batch_size,
            }
            if to is not None:
                params |= {"to_tx": to.transaction_id, "to_pos": to.global_position}
            cur = await self.conn.execute(query, params)
            events = decode_rows(self.store, await cur.fetchall())
            if events:
                await apply_events(self.conn, [self.p], events)
                applied += len(events)
                checkpoint = events[-1].checkpoint
            if len(events) < self.batch_size:
                return checkpoint, applied

    async def _count_between(self, after: Checkpoint, upto: Checkpoint) -> int:
        log = LogRange.between(after, upto)
        cur = await self.conn.execute(
            sql.SQL(_R.count_range).format(where=sql.SQL(log.where())),
            log.params(self.p),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _exchange(self) -> None:
        """Exchange the live tables with the shadow copies, or copy the rows when they cannot
        be exchanged. Waits at most SWAP_LOCK_TIMEOUT for each table's ACCESS EXCLUSIVE lock
        (a reader in the way: the caller retries)."""
        try:
            async with self.conn.transaction():
                await self.conn.execute(
                    sql.SQL(_R.set_lock_timeout).format(timeout=sql.Literal(SWAP_LOCK_TIMEOUT))
                )
                await self.conn.execute(_R.swap_tables, {"tables": list(self.p.tables)})
                await self.conn.execute(_R.reset_lock_timeout)
                return
        except psycopg.errors.FeatureNotSupported as exc:
            _log.warning("rebuild.swap_by_copy", projection=self.name, reason=str(exc))
        await self.conn.execute(_R.reset_lock_timeout)
        for table in self.p.tables:
            await self._copy_table(table)

    async def _columns(self, table: str) -> list[str]:
        cur = await self.conn.execute(Q.table_columns, {"table": f"{LIVE_SCHEMA}.{table}"})
        return [str(r[0]) for r in await cur.fetchall()]

    async def _copy_table(self, table: str) -> None:
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in await self._columns(table))
        live = sql.Identifier(LIVE_SCHEMA, table)
        shadow = sql.Identifier(SHADOW_SCHEMA, table)
        await self.conn.execute(sql.SQL(_R.clear_table).format(table=live))
        await self.conn.execute(
            sql.SQL(_R.copy_table).format(target=live, columns=columns, source=shadow)
        )

    async def differences(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for table in self.p.tables:
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in await self._columns(table))
            live = sql.Identifier(LIVE_SCHEMA, table)
            shadow = sql.Identifier(SHADOW_SCHEMA, table)
            counts = []
            for a, b in ((live, shadow), (shadow, live)):
                cur = await self.conn.execute(
                    sql.SQL(_R.count_missing).format(columns=columns, left=a, right=b)
                )
                row = await cur.fetchone()
                counts.append(int(row[0]) if row else 0)
            out[table] = (counts[0], counts[1])
        return out

    async def clear_shadow(self) -> None:
        try:
            await self.conn.execute(_R.truncate_shadow, {"tables": list(self.p.tables)})
        except psycopg.Error as exc:  # only space is lost; the next rebuild clears it
            _log.warning("could not clear the shadow copy", projection=self.name, error=str(exc))
