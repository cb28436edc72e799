"""Wake readers after commits without costing the writer a round trip.

An append that commits on its own must be followed by a NOTIFY sent *after* its commit (inside
the transaction it would serialise concurrent commits, see postgres.py). Sending it on the
writer's connection costs one more round trip per append. A process that appends a lot gives its
EventStore a Notifier instead: `poke()` after the commit returns at once, and a task with a
connection of its own sends the NOTIFY. Pokes that arrive while one is being sent are merged into
the next, so a burst of appends costs one or two NOTIFYs, each still sent after every commit it
covers. Readers do not depend on it for correctness: they also poll.

NOTIFYs are at least `min_interval` apart (5 ms by default): each is a transaction of its own
(PostgreSQL gives a notifying transaction an xid and a commit record), and sent as fast as the
pokes came, a busy writer paid about one of them per append at 1 client and one per five at 8
(measured, docs/benchmarks.md). Readers are woken at most `min_interval` later than they could
have been.

An append about to commit alone may instead carry the NOTIFY in its own statement when one is
due (`claim()`: none sent or claimed for `min_interval`). PostgreSQL delivers it at that
append's commit, which comes after every commit poked before the claim (the claim covers those
pokes) and with the append's own events: still after every commit it covers, and still at most
one notifying transaction per `min_interval`, so writers' commits are not serialised on the
notify lock. It spares this task's transaction, round trip and wake-ups (most of a NOTIFY's
cost; docs/benchmarks.md, "Appends at 8 writers"); a reader is then woken at most
`min_interval` plus one append's commit late. An append that claimed and wrote nothing (a replay,
a conflict, an error) gives the NOTIFY back (`missed()`), and this task sends it.
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
from psycopg import AsyncConnection, AsyncCursor

from lufy.logs import get_logger
from lufy.sqlfiles import load_queries

__all__ = ["Notifier"]

_Q = load_queries("lufy.eventstore")
_log = get_logger(__name__)


class Notifier:
    def __init__(self, url: str, *, min_interval: float = 0.005) -> None:
        self.url = url
        self.min_interval = min_interval
        self.sent = 0  # NOTIFYs sent by this notifier's task
        self.carried = 0  # NOTIFYs carried by appends (claim)
        self._dirty = asyncio.Event()
        # No NOTIFY (sent or claimed) before this time of the loop's clock.
        self._quiet_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._dirty = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="lufy-notifier")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _running_here(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return loop is self._loop and self._task is not None and not self._task.done()

    def poke(self) -> bool:
        """Ask for a NOTIFY after a commit that has completed. False when this notifier cannot
        send it (not started, or another event loop or thread): then the caller sends it."""
        if not self._running_here():
            return False
        self._dirty.set()
        return True

    def claim(self) -> bool:
        """True when the caller's next statement, which commits alone, should carry the NOTIFY
        itself (one is due: none sent or claimed for `min_interval`): it covers every commit
        poked so far. The caller then neither pokes after the commit nor, if the statement
        wrote nothing or failed, forgets to call `missed()`."""
        if not self._running_here():
            return False
        assert self._loop is not None
        now = self._loop.time()
        if now < self._quiet_until:
            return False
        self._quiet_until = now + self.min_interval
        self._dirty.clear()
        self.carried += 1
        return True

    def missed(self) -> None:
        """A claimed NOTIFY was not sent: this notifier sends one now (for the pokes it
        covered)."""
        self.carried -= 1
        self._quiet_until = 0.0
        self._dirty.set()

    async def _run(self) -> None:
        conn: AsyncConnection[tuple[object, ...]] | None = None
        cur: AsyncCursor[tuple[object, ...]] | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._dirty.wait()
                wait = self._quiet_until - loop.time()
                if wait > 0:
                    # An append carried one (claim) less than min_interval ago: look again
                    # then (unless it covered these pokes, or they were covered meanwhile).
                    await asyncio.sleep(wait)
                    continue
                self._dirty.clear()
                self._quiet_until = loop.time() + self.min_interval
                try:
                    if conn is None or cur is None or conn.closed:
                        conn = await AsyncConnection.connect(self.url, autocommit=True)
                        # This connection only notifies, and a NOTIFY is nothing durable (see
                        # notify_alone in queries.sql): its commits need not wait for the WAL
                        # flush, set once here rather than in every NOTIFY's transaction.
                        await conn.execute(_Q.notifier_session)
                        # One cursor for every NOTIFY (conn.execute builds one per call).
                        cur = conn.cursor()
                    await cur.execute(_Q.notify, prepare=True)
                    self.sent += 1
                except psycopg.Error as exc:
                    # Readers fall back to polling; try again on the next poke.
                    _log.warning("notifier connection failed", error=str(exc).strip())
                    if conn is not None:
                        await conn.close()
                    conn = None
                    await asyncio.sleep(0.5)
                # The next NOTIFY at least min_interval after this one. Pokes that arrive
                # meanwhile are covered by it (every one came after its commit, and it goes
                # after every poke): the event is then still set, and the wait above returns
                # at once (one wake-up of this task per NOTIFY, not two).
                await asyncio.sleep(max(0.0, self._quiet_until - loop.time()))
        finally:
            if conn is not None:
                await conn.close()
