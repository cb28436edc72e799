"""The event store on PostgreSQL: versioned appends, the bulk COPY path (bulk.py), and gap-free
reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any, Literal

import msgspec
import psycopg
from psycopg import AsyncConnection, AsyncCursor, errors
from psycopg.rows import tuple_row

from lufy.errors import ConcurrencyError, DuplicateEventError, ValidationFailedError
from lufy.eventstore import statements
from lufy.eventstore.bulk import BulkResult, BulkRows, copy_rows, write_fresh
from lufy.eventstore.codec import EventCodec, default_codec
from lufy.eventstore.columnpage import decode_columns, fetch_column_page
from lufy.eventstore.copypage import fetch_copy_page
from lufy.eventstore.envelope import (
    AppendResult,
    Checkpoint,
    Event,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
)
from lufy.eventstore.notifier import Notifier
from lufy.eventstore.plainpage import fetch_plain_page
from lufy.eventstore.readahead import parallel_pages
from lufy.eventstore.reading import PageColumns, RawPage, fetch_json_page, page_params
from lufy.sqlfiles import load_queries

__all__ = ["BulkResult", "EventStore", "Page", "RawPage"]

_Q = load_queries("lufy.eventstore")
_Row = tuple[Any, ...]


class Page(msgspec.Struct, frozen=True):
    """A page of the log and the checkpoint a reader may store once it has applied it."""

    events: list[RecordedEvent]
    checkpoint: Checkpoint
    barrier: int
    # Committed events wait behind the barrier (an older transaction is still open): a reader
    # that got a short page is not caught up and should look again soon.
    pending: bool = False


_IDLE = psycopg.pq.TransactionStatus.IDLE
# The unique indexes of lufy.events (sql/0001): on event_id, and on a stream's versions.
_EVENT_ID_KEY = "events_event_id_key"
_STREAM_VERSION_KEY = "events_stream_version_key"


def _commits_alone(conn: AsyncConnection[Any]) -> bool:
    """True when the next statement is its own transaction (autocommit, none open).

    Then the NOTIFY is sent after the commit, as a transaction of its own. Inside a
    transaction it must go with the transaction (it is delivered at commit), but PostgreSQL
    serialises the commits of notifying transactions, WAL flush included, on one lock: with
    concurrent writers that costs group commit (measured: 8 clients at ~0.2 of plain INSERTs).
    """
    # pgconn's status, not conn.info's: the same value without building a ConnectionInfo.
    return conn.autocommit and conn.pgconn.transaction_status == _IDLE


# The append's cursor of each connection, kept on the connection (so it goes with it) while it
# is not in use. `conn.execute` builds a cursor per call (its adapters map, its transformer, the
# result's loaders looked up again): measured ~30 µs of client CPU per append on this machine,
# about a fifth of the client's share (docs/benchmarks.md, "8-writer appends, CPU"). A cursor
# re-used for the same statement keeps its transformer (psycopg keeps it while the query object
# is the same), and the statements are composed once (statements.py), so they are.
_CURSOR_SLOT = "_lufy_append_cursor"


def _take_cursor(conn: AsyncConnection[Any]) -> AsyncCursor[tuple[Any, ...]]:
    """The connection's append cursor, taken out of its slot (so two tasks sharing a connection
    never share a cursor and its results): give it back with `_give_back`."""
    cur: AsyncCursor[tuple[Any, ...]] | None = vars(conn).pop(_CURSOR_SLOT, None)
    return cur if cur is not None else conn.cursor(row_factory=tuple_row)


def _give_back(conn: AsyncConnection[Any], cur: AsyncCursor[tuple[Any, ...]]) -> None:
    vars(conn)[_CURSOR_SLOT] = cur


# The streams' versions each connection has seen committed (stream -> the highest), kept on the
# connection: its database never changes, and the log is append-only (sql/0001: no event is
# updated away or deleted), so a version once committed exists for as long as the connection
# does. An append at an exact version `n` that this connection saw committed (or a later one)
# need not look for the event at `n` (`stream_known` in queries.sql); the unique version index
# still refuses `n + 1` if it is taken, so the check stays exact. Learned only from appends
# that committed alone (the connection idle after the statement: a caller's transaction or a
# pipeline may still roll back). Bounded: cleared when it reaches _KNOWN_MAX streams (a miss
# only costs the look at the log).
_KNOWN_SLOT = "_lufy_known_versions"
_KNOWN_MAX = 4096


def _known_versions(conn: AsyncConnection[Any]) -> dict[tuple[str, str], int]:
    known: dict[tuple[str, str], int] | None = vars(conn).get(_KNOWN_SLOT)
    if known is None:
        known = vars(conn)[_KNOWN_SLOT] = {}
    return known


def _new_event(e: NewEvent | Event) -> NewEvent:
    return e if isinstance(e, NewEvent) else NewEvent(event=e)


class EventStore:
    """Holds no connection (only an optional notifier); every method takes the connection,
    and so the transaction, to work in."""

    def __init__(
        self,
        codec: EventCodec | None = None,
        *,
        notifier: Notifier | None = None,
        page_reader: Literal["columns", "text", "copy", "plain", "json"] = "columns",
    ):
        self.codec = codec or default_codec()
        # How fetch_page reads a page: column by column, each column decoded in one call
        # ("columns", columnpage.py); plain columns, the JSON built here (plainpage.py), in
        # one row of text ("text"), sent by COPY ("copy", copypage.py: less server CPU, a
        # little more here) or one row per event ("plain"); or the JSON built by the server
        # (read_page, "json"). All give the same events.
        self.page_reader = page_reader
        # Sends the post-commit NOTIFY from its own connection (see notifier.py); without one,
        # an append that commits alone sends it itself, one more round trip.
        self.notifier = notifier

    async def _notify_after_commit(
        self, conn: AsyncConnection[Any], cur: AsyncCursor[tuple[Any, ...]] | None = None
    ) -> None:
        if self.notifier is None or not self.notifier.poke():
            await (cur or conn).execute(_Q.notify_alone, prepare=True)

    # --- writing ------------------------------------------------------------------------------

    async def append(
        self,
        conn: AsyncConnection[Any],
        stream_type: str,
        stream_id: str,
        events: Sequence[NewEvent | Event],
        *,
        expected: ExpectedVersion,
    ) -> AppendResult:
        """Append `events` to one stream if it is at `expected`; all or nothing.

        Re-appending the same event ids returns the original positions and writes nothing.
        Raises ConcurrencyError on a version mismatch, DuplicateEventError when an id is reused
        for a different event.
        """
        if not events:
            raise ValueError("nothing to append")
        if len(events) > statements.MAX_BATCH:
            raise ValidationFailedError(f"at most {statements.MAX_BATCH} events per append")
        items = [e if e.__class__ is NewEvent else _new_event(e) for e in events]
        code = statements.expected_code(expected)
        codec = self.codec
        call = statements.AppendCall(
            stream_type, stream_id, code, items, [codec.encode(i.event) for i in items]
        )
        alone = _commits_alone(conn)
        known = _known_versions(conn)
        stream = (stream_type, stream_id)
        fast = statements.append_statement(
            code,
            single=len(items) == 1,
            in_tx=not alone,
            known=alone and 0 < code <= known.get(stream, 0),
        )
        params = call.params(codec)
        cur = _take_cursor(conn)
        try:
            try:
                if code == statements.ANY_CODE and not alone:
                    # Inside a transaction ANY goes to the function, which retries past a
                    # concurrent writer in a subtransaction (the plain statement would fail on
                    # the version index, and the caller's transaction with it).
                    rows = []
                else:
                    await cur.execute(fast, params, prepare=True, binary=True)
                    rows = await cur.fetchall()
            except errors.UniqueViolation as exc:
                # An event id or the version is taken. Committing alone (no probe: the index
                # refuses it, and the statement rolled back whole) the function below answers;
                # inside a transaction (probed) another writer took it concurrently, and the
                # caller must retry.
                self._raise_unless_replayable(exc, alone, stream_type, stream_id)
                rows = []
            except psycopg.Error as exc:
                self._raise_domain_error(exc)
                raise
            if not rows:
                # Nothing was written: a replay, a reused id or a version mismatch. The
                # function re-checks under the same locks and answers precisely.
                rows = await self._append_precisely(cur, call, alone)
            last = rows[-1]
            if alone:
                if conn.pgconn.transaction_status == _IDLE and last[1] > known.get(stream, 0):
                    # Committed (the statement's transaction is over): these versions exist.
                    if len(known) >= _KNOWN_MAX:
                        known.clear()
                    known[stream] = last[1]
                if not last[3]:
                    await self._notify_after_commit(conn, cur)
        finally:
            _give_back(conn, cur)
        return AppendResult(
            positions=[r[0] for r in rows],
            stream_version=last[1],
            transaction_id=last[2],
            idempotent_replay=bool(last[3]),
        )

    async def _append_precisely(
        self, cur: AsyncCursor[tuple[Any, ...]], call: statements.AppendCall, alone: bool
    ) -> list[tuple[Any, ...]]:
        """The append through lufy.append_to_stream: an idempotent replay, the precise error,
        or (a writer that went ahead meanwhile) the append itself."""
        precise = call.function_params(self.codec)
        for attempt in range(2):
            try:
                await cur.execute(_Q.append_to_stream, precise)
                return await cur.fetchall()
            except errors.UniqueViolation as exc:
                # Another writer appended the same event id concurrently (the function retries
                # a taken version itself): committing alone, the retry sees it and answers
                # idempotently.
                self._raise_unless_replayable(
                    exc, alone and not attempt, call.stream_type, call.stream_id
                )
            except psycopg.Error as exc:
                self._raise_domain_error(exc)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _raise_unless_replayable(
        exc: errors.UniqueViolation, replayable: bool, stream_type: str, stream_id: str
    ) -> None:
        """A unique violation that the precise path may answer (an event id already in the log
        or a version taken, the statement committing alone) or a ConcurrencyError."""
        if not replayable or exc.diag.constraint_name not in (_EVENT_ID_KEY, _STREAM_VERSION_KEY):
            raise ConcurrencyError(
                f"stream {stream_type}/{stream_id} was written concurrently; retry"
            ) from None

    @staticmethod
    def _raise_domain_error(exc: psycopg.Error) -> None:
        state = exc.sqlstate
        message = exc.diag.message_primary or str(exc)
        if state == "LU409":
            raise ConcurrencyError(message) from None
        if state == "LU422":
            raise DuplicateEventError(message) from None

    async def append_bulk(
        self, conn: AsyncConnection[Any], events: Sequence[NewEvent]
    ) -> BulkResult:
        """Append high-volume facts with COPY, without per-stream versioning (bulk.py).

        Idempotent by event id: ids already in the log are reported as duplicates and skipped
        (payloads are not compared on this path). Runs in its own transaction (or savepoint).
        """
        if not events:
            return BulkResult(inserted=[], duplicates=[])
        return await self.append_bulk_rows(conn, self.bulk_rows(events))

    def bulk_rows(self, events: Sequence[NewEvent]) -> BulkRows:
        """`events` encoded for `append_bulk_rows` (CPU only: a caller may do it in a thread
        while the previous batch is being written)."""
        return copy_rows(self.codec, events)

    async def append_bulk_rows(self, conn: AsyncConnection[Any], batch: BulkRows) -> BulkResult:
        """`append_bulk` of a batch already encoded by `bulk_rows`."""
        alone = _commits_alone(conn)
        result = await write_fresh(conn, batch, notify_in_tx=not alone)
        if result.inserted and alone:
            await self._notify_after_commit(conn)
        return result

    # --- reading ------------------------------------------------------------------------------

    def _recorded(self, row: _Row) -> RecordedEvent:
        return RecordedEvent(
            global_position=row[0],
            transaction_id=row[1],
            event_id=row[2],
            stream_type=row[3],
            stream_id=row[4],
            stream_version=row[5],
            type=row[6],
            schema_version=row[7],
            data=self.codec.decode(row[6], row[7], row[8]),
            metadata=self.codec.decode_metadata(row[9]),
            occurred_at=row[10],
            recorded_at=row[11],
        )

    async def stream_version(
        self, conn: AsyncConnection[Any], stream_type: str, stream_id: str
    ) -> int:
        cur = await conn.execute(
            _Q.stream_version, {"stream_type": stream_type, "stream_id": stream_id}
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def read_stream(
        self,
        conn: AsyncConnection[Any],
        stream_type: str,
        stream_id: str,
        *,
        from_version: int | None = None,
        backward: bool = False,
        limit: int = 10_000,
    ) -> list[RecordedEvent]:
        query = _Q.read_stream_backward if backward else _Q.read_stream_forward
        start = from_version if from_version is not None else (2**62 if backward else 1)
        cur = await conn.execute(
            query,
            {
                "stream_type": stream_type,
                "stream_id": stream_id,
                "from_version": start,
                "limit": limit,
            },
            binary=True,
        )
        return [self._recorded(r) for r in await cur.fetchall()]

    async def read_all(
        self,
        conn: AsyncConnection[Any],
        after: Checkpoint = Checkpoint.START,
        *,
        limit: int = 1000,
        types: Collection[str] | None = None,
    ) -> Page:
        """The next committed events after `after`, in commit-safe order, never skipping one.

        The returned checkpoint may run ahead of the last event (up to the read barrier) when
        the page is not full, so filtered readers do not re-scan events they do not handle.
        """
        return await self.decode_page(
            conn, await self.fetch_page(conn, after, limit=limit, types=types)
        )

    async def fetch_page(
        self,
        conn: AsyncConnection[Any],
        after: Checkpoint,
        *,
        limit: int,
        types: Collection[str] | None = None,
        barrier: int | None = None,
        upto: Checkpoint | None = None,
    ) -> RawPage:
        """read_all's first half: the page as the server built it, not decoded yet.

        A reader that wants the next page while it decodes this one asks for it from
        `raw.checkpoint` (on another connection) before calling `decode_page`, and, when
        `raw.full`, may pass `barrier=raw.barrier`: transactions below a barrier stay finished,
        so reading below an older one is still gap-free (a short page then only says that
        everything below that barrier was read: ask again without one). `upto`: the page ends
        there (a key page_bounds returned, below `barrier`).
        """
        params = page_params(after, limit, types)
        params["to_tx"] = None if upto is None else upto.transaction_id
        params["to_pos"] = None if upto is None else upto.global_position
        params["barrier"] = barrier
        decoding = self.codec.page_decoding()
        if self.page_reader == "columns":
            return await fetch_column_page(conn, params, after, limit, decoding.current)
        if self.page_reader == "copy":
            return await fetch_copy_page(conn, after, params, decoding.current)
        if self.page_reader != "json":
            one_row = self.page_reader == "text"
            return await fetch_plain_page(
                conn, params, after, limit, decoding.current, one_row=one_row
            )
        return await fetch_json_page(conn, params, after, limit, decoding.versions)

    async def pages_ahead(
        self,
        conn: AsyncConnection[Any],
        after: Checkpoint,
        *,
        limit: int,
        pages: int,
        barrier: int,
        types: Collection[str] | None = None,
        more: Sequence[AsyncConnection[Any]] = (),
    ) -> AsyncIterator[RawPage]:
        """Up to `pages` pages after `after`, below `barrier` (one an earlier page returned), not
        decoded: what a catching-up reader asks for ahead of itself. Stops after a short page
        (everything below the barrier was read). With `more` connections, the pages are built
        on all of them at once (readahead.py); on `conn` alone, one query after the other."""
        if more:
            async for raw in parallel_pages(
                self, [conn, *more], after, limit=limit, pages=pages, barrier=barrier, types=types
            ):
                yield raw
            return
        for _ in range(pages):
            raw = await self.fetch_page(conn, after, limit=limit, types=types, barrier=barrier)
            yield raw
            if not raw.full:
                return
            after = raw.checkpoint

    async def decode_page(self, conn: AsyncConnection[Any], raw: RawPage) -> Page:
        """read_all's second half: one msgspec call for the page; `conn` is used only when the
        page must be read again the precise way (see below)."""
        body = raw.body
        try:
            if isinstance(body, PageColumns):
                events = decode_columns(self.codec, body)
            else:
                events = self.codec.decode_page(body)
            barrier, pending = raw.barrier, raw.pending
        except (msgspec.DecodeError, msgspec.ValidationError):
            # Something the one-call decoder cannot place (an unregistered type, a payload that
            # no longer fits its Struct): read the page again event by event, which decodes
            # what can be decoded and raises the precise error for the rest.
            params = page_params(raw.after, raw.limit, raw.types)
            events, barrier, pending = await self._read_rows(
                conn, query_types=raw.types, params=params
            )
        if len(events) >= raw.limit:
            checkpoint = events[-1].checkpoint
        else:
            # Every transaction below the barrier is finished and was read: skip to it.
            checkpoint = max(raw.after, Checkpoint(barrier, 0))
        return Page(events=events, checkpoint=checkpoint, barrier=barrier, pending=pending)

    async def _read_rows(
        self,
        conn: AsyncConnection[Any],
        *,
        query_types: Collection[str] | None,
        params: dict[str, Any],
    ) -> tuple[list[RecordedEvent], int, bool]:
        """read_all's page as rows, decoded event by event (the precise, slower path)."""
        types = None if query_types is None else list(query_types)
        cur = await conn.execute(_Q.read_rows, params | {"types": types}, prepare=True, binary=True)
        rows = await cur.fetchall()
        events = [self._recorded(r) for r in rows if r[0] is not None]
        return events, int(rows[0][12]), bool(rows[0][13])

    async def barrier(self, conn: AsyncConnection[Any]) -> Checkpoint:
        """A checkpoint just before everything not yet readable: a reader starting here sees
        only what commits from now on (plus transactions still in flight)."""
        cur = await conn.execute(_Q.barrier)
        row = await cur.fetchone()
        assert row is not None
        return Checkpoint(int(row[0]), 0)

    async def pending(self, conn: AsyncConnection[Any]) -> bool:
        """True when committed events wait behind the read barrier: a reader that found nothing
        is not caught up and should look again soon (the NOTIFY came before the barrier moved)."""
        cur = await conn.execute(_Q.pending, prepare=True)
        row = await cur.fetchone()
        return bool(row and row[0])

    async def head(self, conn: AsyncConnection[Any]) -> int:
        cur = await conn.execute(_Q.head)
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def barrier_holder(self, conn: AsyncConnection[Any]) -> dict[str, Any] | None:
        """Which backend holds the read barrier back, if any (for `projections status`)."""
        cur = await conn.execute(_Q.barrier_holder)
        row = await cur.fetchone()
        if row is None:
            return None
        keys = ("pid", "user", "application_name", "state", "seconds", "query")
        return dict(zip(keys, row, strict=True))
