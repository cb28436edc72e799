"""The HTTP server `lufy serve` runs: uvicorn, its httptools parser and uvloop, one event loop
per worker process, in front of `create_app`.

Why uvicorn and not granian (which `lufy serve` ran on before), measured with the real
application on one database, plays interleaved in the same run (docs/benchmarks.md, "lufy
serve on uvicorn (stream-uv)"; a play is the stream authorisation, then master playlist,
variant playlist, key and first segment through the local edge):

- server CPU per play: ~1.0 ms against ~3.4 ms on granian when plays follow each other (13
  runs of 13), ~1.7 against ~2.1 ms with 5 ms of idling before each (4 of 4): granian
  hands each request from its Rust runtime to a thread that takes the GIL and on to the event
  loop's thread, and its runtime threads keep working between requests; uvicorn parses
  (httptools, C) and answers on the loop's own thread;
- wall time on a lean client: faster in 12 of 13 runs, by 0.34 ms a play (median, ~10%);
  through `httpx` level (5 of 13 faster), the client's own time per request dominating.

What granian did for us and uvicorn does not, done here (`LimitedHttpToolsProtocol`): a
request head (request line and headers) larger than `MAX_HEAD_BYTES` is refused with 431
(uvicorn's httptools path keeps whatever arrives), and a head that is not complete
`HEAD_TIMEOUT` seconds after its first byte, or after the connection opened, closes the
connection (uvicorn has no header timeout: a client trickling bytes would hold a connection
forever). Granian's: a 30 s header read timeout and a 408 KB buffer.

The rest of the configuration, each as `lufy serve` had it on granian:

- the client's address is the socket peer; `X-Forwarded-For` is read by the application only,
  from `TRUSTED_PROXIES` (`lufy.web.clientip`), so uvicorn's own proxy handling is off;
- logging goes through `lufy.logs` (uvicorn configures none), with no access log;
- the lifespan is required: a failing start-up (database, Redis) stops the process;
- SIGTERM: stop accepting, finish in-flight requests for at most `GRACEFUL_SECONDS`, run the
  lifespan's shutdown, exit 0 (each worker, under uvicorn's supervisor with `--workers > 1`);
- idle keep-alive connections are kept `KEEP_ALIVE_SECONDS`: longer than the 6 s between a
  player's segment requests and than the 60 s idle timeout of common load balancers, so the
  balancer, not the server, closes an idle connection (no 502 from a reused, closed one);
- no `server` header; each request starts from an empty `contextvars` context.

One thing neither did: uvicorn writes a response's head and body in two writes, each sent at
once, so every small response crossed the wire as two segments and woke its client twice. The
protocol's transport holds the writes of one step of the event loop and sends them together
(`_CoalescingTransport`): ~30 µs less per request for an `httpx` client, five requests a play.
"""

from __future__ import annotations

import asyncio
import signal
from types import FrameType
from typing import Any, cast

import msgspec
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "GRACEFUL_SECONDS",
    "HEAD_TIMEOUT",
    "KEEP_ALIVE_SECONDS",
    "MAX_HEAD_BYTES",
    "LimitedHttpToolsProtocol",
    "options",
    "serve",
]

APP = "lufy.web.app:create_app"
MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 30.0
KEEP_ALIVE_SECONDS = 65
# The documented bound is 10 s from SIGTERM to exit (docs/operations.md): draining, then the
# lifespan's shutdown (pools, Redis) within what is left.
GRACEFUL_SECONDS = 8

_TOO_LARGE = msgspec.json.encode(
    {
        "type": "about:blank",
        "status": 431,
        "title": "Request Header Fields Too Large",
        "detail": f"the request line and headers exceed {MAX_HEAD_BYTES} bytes",
    }
)


class _CoalescingTransport:
    """A transport whose writes made in one step of the event loop leave in one send.

    uvicorn writes a response's head and its body separately, and uvloop sends each write at
    once: two TCP segments per response, so a keep-alive client is woken for the head, then
    again for the body (two reads on its side, two sends on ours). Held until the end of the
    loop's current step (or `_HOLD_BYTES`), they leave together (docs/benchmarks.md,
    "Responses in one send"). Everything but writing and closing goes to the real transport."""

    __slots__ = ("_held", "_loop", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._size += len(data)
        if self._size >= _HOLD_BYTES:
            self.flush()

    def flush(self) -> None:
        held, self._held, self._size = self._held, [], 0
        if held and not self._transport.is_closing():
            self._transport.writelines(held)

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


_HOLD_BYTES = 64 * 1024


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size limit and a timeout on each request's head, on
    a transport that sends each response's head and body together (`_CoalescingTransport`).

    The size is checked twice: exactly once the head is parsed (request target and headers),
    and, while it is still arriving, as the bytes of every read that held nothing but head, so
    that a head that never ends is refused after `MAX_HEAD_BYTES` plus one read. A body
    arriving in the same read as its head is never counted."""

    _in_head: bool
    _heads: int
    _head_bytes: int
    _head_timer: asyncio.TimerHandle | None
    _refused: bool

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = _CoalescingTransport(transport, self.loop)
        super().connection_made(cast(asyncio.Transport, coalescing))
        self._in_head, self._heads, self._head_bytes, self._refused = True, 0, 0, False
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        in_head, heads = self._in_head, self._heads
        super().data_received(data)
        if in_head and self._in_head and self._heads == heads and not self._refused:
            self._head_bytes += len(data)  # the whole read was head
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head, self._heads, self._head_bytes = False, self._heads + 1, 0
        self._stop_head_timer()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEAD_BYTES:
            self._refuse_head()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head = True

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # 431 already sent
            super().send_400_response(msg)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        self._refused = True
        self._stop_head_timer()
        self.logger.warning("request head larger than %d bytes refused", MAX_HEAD_BYTES)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(_TOO_LARGE)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + _TOO_LARGE
        )
        self.transport.close()


def _exit(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before uvicorn handles it (while the application loads) stops the process; and
    uvicorn, once it has shut down gracefully, raises the signal it caught again for the
    handler it found: exit 0 then too, as on granian, rather than die of the signal."""
    raise SystemExit(0)


def options() -> dict[str, Any]:
    """uvicorn's settings for the API, but the address and the number of workers."""
    return {
        "factory": True,
        "http": LimitedHttpToolsProtocol,
        "loop": "auto",  # uvloop (a dependency wherever it builds)
        "ws": "none",
        "lifespan": "on",
        "interface": "asgi3",
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "reset_contextvars": True,
    }


def serve(host: str, port: int, workers: int, app: str = APP) -> None:
    """Run the API (`app`: an application factory's import path) until SIGTERM or SIGINT:
    `workers` processes under uvicorn's supervisor sharing one listening socket, or this
    process alone for one."""
    signal.signal(signal.SIGTERM, _exit)
    uvicorn.run(app, host=host, port=port, workers=workers, **options())
