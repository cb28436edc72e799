"""A minimal, pipelining Redis client for the rate limiter's one command (EVALSHA).

Why not redis-py: every API request makes one check, so the client's own overhead is paid on
every request. redis-py's asyncio client spends several hundred microseconds of Python per
command (pool checkout, retry wrapper, per-command instrumentation) and one write and one read
system call per command. This client keeps one connection per process and writes the commands
issued during one event-loop turn together, so concurrent requests share system calls; replies
come back in order and are matched to their waiters first-in, first-out. It speaks only what
the limiter needs: RESP2 replies, AUTH and SELECT from the URL, TLS for `rediss://`, and
`unix://` sockets.

A command Redis does not answer in time closes the connection (a reply that never came means we
can no longer trust the stream), which fails the others in flight with it and makes the next
command reconnect.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["ReplyError", "ScriptStore", "StoreError", "encode_command", "parse_reply"]


class StoreError(Exception):
    """Redis answered with something we cannot use, or the stream broke."""


class ReplyError(StoreError):
    """An error reply (`-ERR ...`, `-NOSCRIPT ...`)."""

    @property
    def code(self) -> str:
        return str(self).split(" ", 1)[0]


class _Incomplete:
    pass


INCOMPLETE = _Incomplete()


def encode_command(args: tuple[str | int | bytes, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def parse_reply(buf: bytearray | bytes, pos: int) -> tuple[Any, int] | _Incomplete:
    """One RESP2 reply starting at `pos`: (value, next position), or INCOMPLETE."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return INCOMPLETE
    kind = buf[pos]
    line = bytes(buf[pos + 1 : end])
    after = end + 2
    if kind == 0x3A:  # ':' integer
        return int(line), after
    if kind == 0x24:  # '$' bulk string
        size = int(line)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return INCOMPLETE
        return bytes(buf[after : after + size]), after + size + 2
    if kind == 0x2A:  # '*' array
        count = int(line)
        if count < 0:
            return None, after
        items: list[Any] = []
        for _ in range(count):
            parsed = parse_reply(buf, after)
            if isinstance(parsed, _Incomplete):
                return INCOMPLETE
            value, after = parsed
            items.append(value)
        return items, after
    if kind == 0x2B:  # '+' simple string
        return line.decode(), after
    if kind == 0x2D:  # '-' error
        return ReplyError(line.decode(errors="replace")), after
    raise StoreError(f"unexpected reply type {chr(kind)!r} from Redis")


class _Connection(asyncio.Protocol):
    """One Redis connection: FIFO waiters, writes coalesced per loop turn, one deadline timer.

    A per-command `asyncio.timeout` costs a timer per request; instead one watchdog follows the
    oldest command in flight, and if Redis has not answered it within `timeout`, every command
    in flight fails with TimeoutError and the connection is closed (its stream can no longer be
    trusted to line up with our waiters).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = self._loop = loop
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._waiters: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._buffer = bytearray()
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf.extend(data)
        pos = 0
        while pos < len(buf):
            try:
                parsed = parse_reply(buf, pos)
            except (StoreError, ValueError) as exc:
                self._fail(StoreError(f"unreadable reply from Redis: {exc}"))
                self.close()
                return
            if isinstance(parsed, _Incomplete):
                break
            value, pos = parsed
            if self._waiters:
                waiter, _ = self._waiters.popleft()
                if not waiter.done():  # a caller that was cancelled no longer waits
                    waiter.set_result(value)
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_watchdog()
        reason = f": {exc}" if exc else ""
        self._fail(ConnectionError(f"connection to Redis lost{reason}"))

    def _fail(self, exc: BaseException) -> None:
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    def request(self, payload: bytes) -> asyncio.Future[Any]:
        if self.closed or self._transport is None:
            raise ConnectionError("connection to Redis is closed")
        loop = self._loop
        waiter: asyncio.Future[Any] = loop.create_future()
        # Commands issued during this loop turn leave together in one write, and Redis answers
        # them together: under load that is one wake-up of each process for many requests.
        self._outgoing.append(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        self._waiters.append((waiter, loop.time()))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout, self._check_deadline)
        return waiter

    def _check_deadline(self) -> None:
        self._watchdog = None
        if self.closed or not self._waiters:
            return
        left = self._waiters[0][1] + self._timeout - self._loop.time()
        if left > 0:
            self._watchdog = self._loop.call_later(left, self._check_deadline)
            return
        self._fail(TimeoutError(f"Redis did not answer within {self._timeout} s"))
        self.close()

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._outgoing and not self.closed and self._transport is not None:
            data = b"".join(self._outgoing)
            self._outgoing.clear()
            self._transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._stop_watchdog()
            if self._transport is not None:
                self._transport.close()
            self._fail(ConnectionError("connection to Redis closed"))


class ScriptStore:
    """One pipelined connection to the Redis of `url`, opened on first use, reopened on loss."""

    def __init__(self, url: str, *, timeout: float = 0.25) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self._scheme = parts.scheme
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._path = unquote(parts.path) if parts.scheme == "unix" else ""
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        db_text = query.get("db", [""])[0]
        if not db_text and parts.scheme != "unix":
            db_text = parts.path.lstrip("/")
        self._db = int(db_text) if db_text else 0
        self.timeout = timeout  # to connect, and for Redis to answer a command
        self._conn: _Connection | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout):
            if self._scheme == "unix":
                _, conn = await loop.create_unix_connection(
                    lambda: _Connection(loop, self.timeout), self._path
                )
            else:
                context = ssl.create_default_context() if self._scheme == "rediss" else None
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self.timeout), self._host, self._port, ssl=context
                )
            try:
                if self._password is not None:
                    auth: tuple[str, ...] = ("AUTH", self._password)
                    if self._username:
                        auth = ("AUTH", self._username, self._password)
                    _raise_error(await conn.request(encode_command(auth)))
                if self._db:
                    _raise_error(await conn.request(encode_command(("SELECT", self._db))))
            except BaseException:
                conn.close()
                raise
        return conn

    def open_connection(self) -> _Connection | None:
        """The open connection on the running event loop, if there is one (no I/O)."""
        conn = self._conn
        if conn is None or conn.closed:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return conn if conn.loop is loop else None

    async def connection(self) -> _Connection:
        """The connection on the running loop, opened (with AUTH and SELECT) when needed."""
        return await self._connection()

    async def _connection(self) -> _Connection:
        conn = self._conn
        loop = asyncio.get_running_loop()
        if conn is not None and not conn.closed and conn.loop is loop:
            return conn
        if conn is not None and conn.loop is not loop:
            # Used from another event loop (tests running an app in a portal thread): the old
            # connection belongs to its loop, so leave it to be closed there.
            self._abandon(conn)
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:  # one connect at a time; the others wait and share it
            conn = self._conn
            if conn is None or conn.closed:
                conn = self._conn = await self._connect()
        return conn

    def _abandon(self, conn: _Connection) -> None:
        self._conn = None
        if not conn.loop.is_closed():
            conn.loop.call_soon_threadsafe(conn.close)

    async def execute(self, *args: str | int | bytes) -> Any:
        """Run one command; raises ReplyError, ConnectionError/OSError or TimeoutError.

        Connecting (with AUTH and SELECT) and answering each get `timeout`.
        """
        conn = await self._connection()
        return _raise_error(await conn.request(encode_command(args)))

    def reset(self) -> None:
        """Drop the connection; the next command opens a new one."""
        conn = self._conn
        if conn is None:
            return
        try:
            same_loop = asyncio.get_running_loop() is conn.loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            conn.close()
            self._conn = None
        else:
            self._abandon(conn)

    async def aclose(self) -> None:
        self.reset()


def _raise_error(reply: Any) -> Any:
    if isinstance(reply, ReplyError):
        raise reply
    return reply
