"""`lufy serve`'s HTTP server (`lufy.web.server`) with a small ASGI application: the limits on a
request's head, the socket peer as the client, no `server` header, a response's head and body
leaving in one send, and SIGTERM ending the process with status 0."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import uvicorn

from lufy.web import server as web_server

# The keep-alive head this file's client sends: small enough that a few fit under the limit.
_KEEP_ALIVE = b"host: test\r\n"


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The client address, header count and body size the server handed over, as JSON."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    size, more = 0, True
    while more:
        message = await receive()
        size, more = size + len(message.get("body", b"")), message.get("more_body", False)
    answer = {"client": scope["client"][0], "headers": len(scope["headers"]), "body": size}
    body = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def factory() -> Any:
    return echo


@pytest.fixture
async def port() -> AsyncIterator[int]:
    config = uvicorn.Config(
        "tests.unit.test_web_server:factory", host="127.0.0.1", port=0, **web_server.options()
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        assert not task.done(), task
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await task


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(fields["content-length"]))
    return int(lines[0].split()[1]), fields, body


def _headers(count: int, size: int = 1000) -> bytes:
    return b"".join(b"x-filler-%d: %s\r\n" % (i, b"a" * size) for i in range(count))


async def test_a_head_over_the_limit_gets_431_and_the_connection_closes(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    too_many = web_server.MAX_HEAD_BYTES // 1000 + 1
    writer.write(b"GET / HTTP/1.1\r\n" + _KEEP_ALIVE + _headers(too_many) + b"\r\n")
    status, fields, body = await _read_response(reader)
    assert status == 431
    assert fields["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 431
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
    writer.close()


async def test_a_head_that_never_ends_is_refused_once_over_the_limit(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n" + _KEEP_ALIVE)
    for _ in range(web_server.MAX_HEAD_BYTES // 4000 + 1):  # no blank line: never complete
        writer.write(_headers(4))
        await writer.drain()
        await asyncio.sleep(0.01)  # reads of their own, each all head
    refused = await asyncio.wait_for(reader.read(), 5)
    assert refused.startswith(b"HTTP/1.1 431 "), refused[:100]
    writer.close()


async def test_a_body_sent_with_its_head_is_not_counted_as_head(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b"b" * (web_server.MAX_HEAD_BYTES * 3)
    head = b"POST / HTTP/1.1\r\n" + _KEEP_ALIVE + b"content-length: %d\r\n\r\n" % len(body)
    writer.write(head + body)  # one write: the first reads hold the head and the body
    status, _, answer = await _read_response(reader)
    assert status == 200
    assert json.loads(answer)["body"] == len(body)
    writer.close()


async def test_the_limit_is_per_request_on_a_keep_alive_connection(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Three requests of ~60% of the limit each: together over it, each one under.
    count = web_server.MAX_HEAD_BYTES * 6 // 10 // 1000
    for _ in range(3):
        writer.write(b"GET / HTTP/1.1\r\n" + _KEEP_ALIVE + _headers(count) + b"\r\n")
        status, _, body = await _read_response(reader)
        assert status == 200
        assert json.loads(body)["headers"] == count + 1
    writer.close()


async def test_a_head_not_complete_in_time_closes_the_connection(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_server, "HEAD_TIMEOUT", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n" + _KEEP_ALIVE)
    await writer.drain()
    for _ in range(20):  # a byte every 50 ms: the head never completes
        if reader.at_eof():
            break
        writer.write(b"x")
        await asyncio.sleep(0.05)
    # Closed by the server (a byte every 50 ms for 1 s never completes the head); the 5 s
    # bound only keeps a server that never closes from hanging the test.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_server, "HEAD_TIMEOUT", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_the_client_is_the_socket_peer_and_no_server_header_is_sent(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n" + _KEEP_ALIVE + b"x-forwarded-for: 203.0.113.9\r\n\r\n")
    status, fields, body = await _read_response(reader)
    assert status == 200
    # X-Forwarded-For is the application's to read (lufy.web.clientip), not the server's.
    assert json.loads(body)["client"] == "127.0.0.1"
    assert "server" not in fields
    writer.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int, workers: int) -> subprocess.Popen[bytes]:
    """`serve` in a process of its own, listening on `port`."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from lufy.web.server import serve; "
            f"serve('127.0.0.1', {port}, {workers}, 'tests.unit.test_web_server:factory')",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            assert time.monotonic() < deadline, "serve did not listen"
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_ends_serve_with_status_0(workers: int) -> None:
    process = _serve(_free_port(), workers)
    try:
        time.sleep(0.5 if workers > 1 else 0)  # every worker started
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        _stop(process)


def test_a_response_arrives_whole_in_the_first_read() -> None:
    """uvicorn writes a response's head and its body separately; they leave in one send, so
    the client's first read holds the whole response (with two sends it holds the head alone
    whenever the client wakes between them, as it does for most responses)."""
    port = _free_port()
    process = _serve(port, 1)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(50):
                sock.sendall(b"GET / HTTP/1.1\r\n" + _KEEP_ALIVE + b"\r\n")
                first = sock.recv(65536)
                head, _, body = first.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), first
                assert json.loads(body)["body"] == 0, first  # the body came with its head
                time.sleep(0.002)  # the client idles, as between a player's requests
    finally:
        _stop(process)


class _Transport:
    """What `_CoalescingTransport` hands on: each send, and whether it was closed."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []
        self.closed = False

    def writelines(self, data: list[bytes]) -> None:
        self.sent.append(list(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


async def test_writes_of_one_loop_step_leave_together_and_close_sends_what_is_held() -> None:
    inner = _Transport()
    transport = web_server._CoalescingTransport(
        cast(asyncio.Transport, inner), asyncio.get_running_loop()
    )
    transport.write(b"head")
    transport.write(b"body")
    assert inner.sent == []
    assert transport.get_write_buffer_size() == 8
    await asyncio.sleep(0)
    assert inner.sent == [[b"head", b"body"]]
    transport.write(b"x" * web_server._HOLD_BYTES)  # a large write leaves at once
    assert inner.sent[-1] == [b"x" * web_server._HOLD_BYTES]
    transport.write(b"last")
    transport.close()  # what is held leaves before the close
    assert inner.sent[-1] == [b"last"]
    assert inner.closed
    transport.write(b"late")
    await asyncio.sleep(0)
    assert inner.sent[-1] == [b"last"]  # nothing is sent on a closed transport
    assert transport.get_extra_info("peername") == "extra peername"
