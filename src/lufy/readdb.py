"""Reads that may be served by a streaming replica (`DATABASE_READ_URL`).

The dashboard, exports and analyst-facing reads go through the container's `read_db` (built
by `read_database`): a `Database` that sends each transaction to the replica while the replica
is at most `READ_REPLICA_MAX_LAG` seconds behind, and to the primary otherwise (replica down,
lagging, replay paused while the primary writes). Writes, inline read-backs and the projector
never use it: they keep `container.db`, the primary.

The replica's delay is measured on the replica and reused for one second (one query per second
per process): 0 when it has replayed everything it received, else the age of the last replayed
commit (`pg_last_xact_replay_timestamp()`). The delay of the replica that served a request is
kept for the response's `Lufy-Data-Lag` header (see `lufy.web.datalag`).

Row-Level Security holds on the replica exactly as on the primary: the same role, the same
policies (replicated with everything else), and the caller bound per transaction with
`set_config(..., true)`, which a read-only standby accepts.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import AsyncConnection

from lufy.db import Database
from lufy.errors import ServiceUnavailableError
from lufy.logs import get_logger
from lufy.sqlfiles import load_queries

if TYPE_CHECKING:
    from lufy.settings import Settings

__all__ = [
    "DataLag",
    "ReadDatabase",
    "current_data_lag",
    "read_database",
    "read_url_for_export",
]

_log = get_logger(__name__)

_Q = load_queries("lufy", "readdb.sql")
_LAG_TTL = 1.0
_LAG_TIMEOUT = 1.0


class DataLag:
    """Per request: how far behind the data that served it was (None: the primary served)."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds: float | None = None


_CURRENT: contextvars.ContextVar[DataLag | None] = contextvars.ContextVar(
    "lufy_data_lag", default=None
)


def current_data_lag() -> contextvars.ContextVar[DataLag | None]:
    """The context variable a request's middleware sets to a fresh `DataLag`."""
    return _CURRENT


class ReadDatabase(Database):
    """A `Database` for reads that tolerate a few seconds of delay.

    It has no pool of its own: each transaction goes to the replica's pool when the replica is
    fresh, else to the primary's.
    """

    def __init__(self, primary: Database, replica: Database | None, *, max_lag: float) -> None:
        # Deliberately not Database.__init__: the pools are the primary's and the replica's.
        self.url = primary.url
        self.pool = primary.pool
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag
        self._lag: float | None = None
        self._lag_at = -math.inf
        self._lag_lock = asyncio.Lock()
        self._opened = False
        # The WAL position the replica had received at the previous measurement, and when.
        self._received: str | None = None
        self._received_at = time.monotonic()

    async def open(self, *, wait: bool = False) -> None:
        if self.replica is not None and not self._opened:
            self._opened = True
            await self.replica.open(wait=wait)

    async def close(self) -> None:
        if self.replica is not None and self._opened:
            self._opened = False
            await self.replica.close()

    async def aclose(self) -> None:
        await self.close()

    async def replica_lag(self) -> float | None:
        """Seconds the replica is behind (None: no replica, or it did not answer)."""
        if self.replica is None:
            return None
        if time.monotonic() - self._lag_at < _LAG_TTL:
            return self._lag
        async with self._lag_lock:
            if time.monotonic() - self._lag_at >= _LAG_TTL:
                self._lag = await self._measure()
                self._lag_at = time.monotonic()
        return self._lag

    async def _measure(self) -> float | None:
        """How far behind the replica is.

        Caught up (replayed all it received): 0. Otherwise the age of the last commit it
        replayed is an upper bound, but a loose one after an idle spell: WAL without commits
        (a checkpoint, autovacuum) arriving after a quiet minute would make a replica that is
        milliseconds behind look a minute behind. So when everything received by the previous
        measurement has been replayed since, the replica is at most the time between the two
        measurements behind.
        """
        assert self.replica is not None
        await self.open()
        try:
            async with asyncio.timeout(_LAG_TIMEOUT):
                async with self.replica.pool.connection() as conn:
                    cur = await conn.execute(
                        _Q.replica_state, {"previous": self._received}, prepare=False
                    )
                    row = await cur.fetchone()
        except Exception as exc:
            _log.warning("read_replica_unavailable", error=str(exc).strip().splitlines()[:1])
            self._received = None
            return None
        assert row is not None
        in_recovery, received, caught_up, replayed_previous, age = row
        now = time.monotonic()
        since_previous = now - self._received_at
        self._received, self._received_at = received, now
        if not in_recovery or caught_up:
            return 0.0
        bound = math.inf if age is None else float(age)
        if replayed_previous:
            return min(bound, since_previous)
        return bound

    async def _choose(self) -> tuple[Database, float | None]:
        lag = await self.replica_lag()
        if self.replica is not None and lag is not None and lag <= self.max_lag:
            return self.replica, lag
        return self.primary, None

    def _record(self, lag: float | None) -> None:
        holder = _CURRENT.get()
        if holder is not None:
            # A request that read from both keeps the larger delay.
            if lag is None:
                return
            holder.seconds = lag if holder.seconds is None else max(holder.seconds, lag)

    def _replica_failed(self) -> None:
        # Until the next measurement, send everything to the primary.
        self._lag, self._lag_at = None, time.monotonic()

    @asynccontextmanager
    async def _enter(self, make: Any) -> AsyncIterator[AsyncConnection[Any]]:
        db, lag = await self._choose()
        async with AsyncExitStack() as stack:
            try:
                conn = await stack.enter_async_context(make(db))
            except ServiceUnavailableError:
                if db is self.primary:
                    raise
                self._replica_failed()
                lag = None
                conn = await stack.enter_async_context(make(self.primary))
            self._record(lag)
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        async with self._enter(lambda db: db.connection()) as conn:
            yield conn

    @asynccontextmanager
    async def transaction(
        self, *, user_id: uuid.UUID | str | None = None, role: str | None = None
    ) -> AsyncIterator[AsyncConnection[Any]]:
        async with self._enter(lambda db: db.transaction(user_id=user_id, role=role)) as conn:
            yield conn


def read_database(settings: Settings, primary: Database) -> Database:
    """The read database of a process (built once by bootstrap): the primary itself when no
    replica is configured."""
    if settings.DATABASE_READ_URL is None:
        return primary
    replica = Database(
        settings.DATABASE_READ_URL,
        min_size=1,
        max_size=10,
        name="lufy-read",
        prepare=settings.DATABASE_PREPARED_STATEMENTS,
    )
    # Closed by Container.stop().
    return ReadDatabase(primary, replica, max_lag=settings.READ_REPLICA_MAX_LAG)


def read_url_for_export(settings: Settings) -> str:
    """The replica's URL when it is configured and fresh, else the primary's (for one-off
    commands such as `lufy events export`)."""
    if settings.DATABASE_READ_URL is None:
        return settings.DATABASE_URL
    try:
        with psycopg.connect(settings.DATABASE_READ_URL, connect_timeout=3) as conn:
            row = conn.execute(_Q.replica_lag).fetchone()
    except psycopg.Error as exc:
        _log.warning("read_replica_unavailable", error=str(exc).strip().splitlines()[:1])
        return settings.DATABASE_URL
    if row is None or float(row[0]) > settings.READ_REPLICA_MAX_LAG:
        return settings.DATABASE_URL
    return settings.DATABASE_READ_URL
