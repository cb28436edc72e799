"""`/metrics` on a port of its own (`METRICS_PORT`), away from the public API port.

A deliberately tiny HTTP/1.1 responder: one `GET /metrics` per connection, nothing else. Every
API process binds the port with SO_REUSEPORT, so whichever one the kernel picks answers; with
`PROMETHEUS_MULTIPROC_DIR` set, any of them answers for all (docs/operations.md). When
`METRICS_TOKEN` is also set, the port asks for it too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from lufy.logs import get_logger
from lufy.observability import render_metrics
from lufy.web.health import token_matches

if TYPE_CHECKING:
    from litestar import Litestar

    from lufy.bootstrap import Container

__all__ = ["metrics_port", "serve_metrics"]

_log = get_logger(__name__)
_MAX_HEAD = 8192
_READ_TIMEOUT = 5.0


@asynccontextmanager
async def metrics_port(app: Litestar) -> AsyncIterator[None]:
    """Lifespan: serve /metrics on METRICS_PORT while the app runs (nothing when unset)."""
    container: Container = app.state.container
    port = container.settings.METRICS_PORT
    if port is None:
        yield
        return
    server = await serve_metrics(container, host="0.0.0.0", port=port)  # noqa: S104
    try:
        yield
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def serve_metrics(container: Container, *, host: str, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await _answer(container, reader)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:
            _log.exception("metrics_port_failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host=host, port=port, reuse_port=True)
    _log.info("metrics_port_listening", port=port)
    return server


async def _answer(container: Container, reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
    except asyncio.LimitOverrunError:
        return "431 Request Header Fields Too Large", "text/plain", b"headers too large\n"
    if len(head) > _MAX_HEAD:
        return "431 Request Header Fields Too Large", "text/plain", b"headers too large\n"
    lines = head.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.partition(" ")[0].partition("?")[0]
    if method != "GET" or target != "/metrics":
        return "404 Not Found", "text/plain", b"only GET /metrics is served here\n"
    token = container.settings.METRICS_TOKEN
    if token is not None:
        authorization = next(
            (
                line.partition(":")[2].strip()
                for line in lines[1:]
                if line.partition(":")[0].strip().lower() == "authorization"
            ),
            None,
        )
        if not token_matches(authorization, token):
            return "401 Unauthorized", "text/plain", b"bearer token required\n"
    payload, content_type = await render_metrics(container)
    return "200 OK", content_type, payload
