"""Small pieces several benchmarks share: a signed-in listener, an ASGI request scope for
driving the app in process, and dropping a benchmark's throw-away database."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from lufy.accounts.clients import ClientInfo

__all__ = ["drop_database", "get_scope", "listener_token"]


async def listener_token(accounts: Any) -> str:
    """Register a verified listener and sign it in directly (sign-in over HTTP is rate limited
    per address, 20 per 15 minutes in the shared Redis, which repeated runs would exhaust);
    returns its access token."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    password = "bench-password-0123456789"
    await accounts.register(
        email=email,
        password=password,
        role="listener",
        display_name="Bench",
        verified=True,
        via="cli",
    )
    tokens = await accounts.sign_in(
        email=email, password=password, client=ClientInfo(user_agent="bench")
    )
    return str(tokens.access_token)


def get_scope(path: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
    """The scope of a `GET path` over HTTP/1.1 from a loopback client."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": list(headers),
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
        "state": {},
    }


def drop_database(admin_url: str, name: str) -> None:
    """Drop a benchmark's database, closing whatever connections are still on it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
