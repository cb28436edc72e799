"""Follow the log: gap-free pages, woken by LISTEN/NOTIFY, with polling as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Any

import psycopg
from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.postgres import EventStore, Page
from lufy.logs import get_logger

__all__ = ["CHANNEL", "Subscription"]

CHANNEL = "lufy_events"
_log = get_logger(__name__)


class Subscription:
    """Yields pages of events after a checkpoint, forever (until `stop()`).

    A reader sleeps until a NOTIFY on `lufy_events` or `poll_interval`, whichever comes first,
    so events written without a NOTIFY (another tool, a lost listen connection) are still found.
    A page that is not full is followed by a check for committed events that an open
    transaction still holds behind the read barrier: while there are some, the reader is not
    caught up and looks again after `settle_delays` (then every `settle_delays[-1]`) instead
    of sleeping, because their NOTIFY has already been spent.
    """

    def __init__(
        self,
        store: EventStore,
        url: str,
        *,
        after: Checkpoint = Checkpoint.START,
        types: Collection[str] | None = None,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        settle_delays: tuple[float, ...] = (0.01, 0.03, 0.1, 0.25),
    ) -> None:
        self.store = store
        self.url = url
        self.checkpoint = after
        self.types = types
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.settle_delays = settle_delays or (0.05,)
        # Set once the LISTEN is in place (and again after every reconnect).
        self.listening = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    async def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                conn = await AsyncConnection.connect(self.url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake.set()  # we may have missed notifications while reconnecting
                    self.listening.set()
                    async for _ in conn.notifies():
                        self._wake.set()
                        if self._stopped.is_set():
                            return
            except psycopg.Error as exc:
                self.listening.clear()
                _log.warning("listen connection lost", error=str(exc).strip())
                await asyncio.sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def pages(self, conn: AsyncConnection[Any]) -> AsyncIterator[Page]:
        """Pages read on `conn`; the caller applies each and then may persist `page.checkpoint`."""
        listener = asyncio.create_task(self._listen())
        held_back = 0
        try:
            while not self._stopped.is_set():
                self._wake.clear()
                page = await self.store.read_all(
                    conn, self.checkpoint, limit=self.batch_size, types=self.types
                )
                moved = page.checkpoint != self.checkpoint
                self.checkpoint = page.checkpoint
                if page.events or moved:
                    yield page  # an empty page still lets the caller persist the skipped range
                if len(page.events) >= self.batch_size or self._stopped.is_set():
                    continue
                if page.pending:
                    delays = self.settle_delays
                    await self._sleep(delays[min(held_back, len(delays) - 1)])
                    held_back += 1
                    continue
                held_back = 0
                await self._sleep(self.poll_interval)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
