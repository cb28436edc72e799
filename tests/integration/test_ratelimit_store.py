"""The limiter's pipelining Redis client, against the real Redis (and a silent server for hangs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis as sync_redis
import uvloop

from lufy.web.ratelimit_store import (
    INCOMPLETE,
    ReplyError,
    ScriptStore,
    StoreError,
    encode_command,
    parse_reply,
)


def test_replies_parse_whole_and_report_when_incomplete() -> None:
    data = b"*3\r\n:1\r\n$3\r\nabc\r\n*2\r\n$-1\r\n+OK\r\n:7\r\n"
    value, end = parse_reply(data, 0)  # type: ignore[misc]
    assert value == [1, b"abc", [None, "OK"]]
    assert parse_reply(data, end) == (7, len(data))
    for cut in range(1, end):
        assert parse_reply(data[:cut], 0) is INCOMPLETE
    error, _ = parse_reply(b"-NOSCRIPT No matching script\r\n", 0)  # type: ignore[misc]
    assert isinstance(error, ReplyError)
    assert error.code == "NOSCRIPT"
    with pytest.raises(StoreError, match="unexpected reply type"):
        parse_reply(b"?what\r\n", 0)


def test_commands_encode_as_resp_arrays_of_bulk_strings() -> None:
    assert encode_command(("SET", "k", 12, b"\r\n")) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$2\r\n\r\n\r\n"
    )


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[ScriptStore]:
    client = ScriptStore(redis_url, timeout=2.0)
    yield client
    await client.aclose()


async def test_the_store_uses_the_database_named_in_the_url(
    store: ScriptStore, redis_url: str
) -> None:
    assert await store.execute("SET", "lufy:rl:probe", "here") == "OK"

    assert sync_redis.Redis.from_url(redis_url).get("lufy:rl:probe") == b"here"


async def test_concurrent_commands_on_one_connection_each_get_their_own_reply(
    store: ScriptStore,
) -> None:
    replies = await asyncio.gather(*(store.execute("ECHO", f"n{i}") for i in range(300)))

    assert replies == [f"n{i}".encode() for i in range(300)]


async def test_error_replies_raise_and_leave_the_connection_usable(store: ScriptStore) -> None:
    with pytest.raises(ReplyError, match="unknown command"):
        await store.execute("NOT-A-COMMAND")

    assert await store.execute("PING") == "PONG"


async def test_a_connection_killed_by_the_server_is_replaced(
    store: ScriptStore, redis_url: str
) -> None:
    client_id = await store.execute("CLIENT", "ID")
    sync_redis.Redis.from_url(redis_url).client_kill_filter(_id=client_id)
    await asyncio.sleep(0.1)  # let the loop see the connection close

    assert await store.execute("PING") == "PONG"
    assert await store.execute("CLIENT", "ID") != client_id


async def test_a_server_that_never_answers_times_out_and_the_connection_is_dropped() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung = ScriptStore(f"redis://127.0.0.1:{port}/0", timeout=0.1)
    try:
        with pytest.raises(TimeoutError):
            await hung.execute("PING")
        with pytest.raises(TimeoutError):
            await hung.execute("PING")
        # Each timeout dropped its connection: the second command connected anew.
        assert len(accepted) == 2
    finally:
        await hung.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_refused_connection_raises_an_os_error_at_once() -> None:
    closed = ScriptStore("redis://127.0.0.1:1/0", timeout=1.0)

    with pytest.raises(OSError):
        await closed.execute("PING")


def test_the_store_works_on_uvloop_the_servers_event_loop(redis_url: str) -> None:
    # `lufy serve` runs on uvloop, whose transports are not asyncio.Transport subclasses.

    async def main() -> list[object]:
        client = ScriptStore(redis_url, timeout=2.0)
        try:
            return list(await asyncio.gather(*(client.execute("ECHO", f"u{i}") for i in range(50))))
        finally:
            await client.aclose()

    assert uvloop.run(main()) == [f"u{i}".encode() for i in range(50)]
