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
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
from psycopg import AsyncConnection, pq
from psycopg.pq.abc import PGconn

from lufy.logs import get_logger
from lufy.sqlfiles import load_queries

__all__ = ["Notifier"]

_Q = load_queries("lufy.eventstore")
_log = get_logger(__name__)


class Notifier:
    def __init__(self, url: str, *, min_interval: float = 0.005) -> None:
        self.url = url
        self.min_interval = min_interval
        self.sent = 0
        self._dirty = asyncio.Event()
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

    def poke(self) -> bool:
        """Ask for a NOTIFY after a commit that has completed. False when this notifier cannot
        send it (not started, or another event loop or thread): then the caller sends it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if loop is not self._loop or self._task is None or self._task.done():
            return False
        self._dirty.set()
        return True

    async def _run(self) -> None:
        conn: AsyncConnection[tuple[object, ...]] | None = None
        try:
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                try:
                    if conn is None or conn.closed:
                        conn = await AsyncConnection.connect(self.url, autocommit=True)
                        # This connection only notifies, and a NOTIFY is nothing durable (see
                        # notify_alone in queries.sql): its commits need not wait for the WAL
                        # flush, set once here rather than in every NOTIFY's transaction.
                        await conn.execute(_Q.notifier_session)
                    await _send(conn.pgconn)
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
                await asyncio.sleep(self.min_interval)
        finally:
            if conn is not None:
                await conn.close()


# The NOTIFY goes as a simple query on libpq's connection, below psycopg's cursor: the server
# runs it in a transaction of its own and commits it (so readers are woken) whether or not this
# side reads the answer at once. It is read before the next one is sent, by when it has had
# `min_interval` to arrive: the task no longer waits for a round trip per NOTIFY, and the
# cursor's execute path (~175 µs of client CPU per statement on the 2-core VM, about the whole
# cost of a NOTIFY to this process) is not run. Measured in docs/benchmarks.md, "es-append3".
# Nothing else uses this connection once it is set up, so psycopg never finds an answer it did
# not ask for.
_NOTIFY = _Q.notifier_notify.encode()


async def _send(pg: PGconn) -> None:
    """Read the answer to the previous NOTIFY (raise if it failed), then send the next."""
    pg.consume_input()
    while pg.is_busy():
        await _ready(pg.socket, writable=False)
        pg.consume_input()
    while (res := pg.get_result()) is not None:
        if res.status != pq.ExecStatus.COMMAND_OK:
            message = (res.error_message or b"NOTIFY failed").decode(errors="replace")
            raise psycopg.OperationalError(message)
    pg.send_query(_NOTIFY)
    while pg.flush():
        await _ready(pg.socket, writable=True)


async def _ready(fd: int, *, writable: bool) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writable:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
