"""An HTTP client for the app of a started `container`, in the test's own event loop.

    async with api_client(container) as client:
        response = await client.get("/api/auth/session", headers=user.headers)

Litestar's AsyncTestClient runs the app in a portal thread with its own event loop, where the
`container` fixture's pool (opened in the test's loop) cannot be used; httpx's ASGITransport
calls the app in the test's loop. The app's lifespan is not run: the fixture already started
the container and will stop it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from lufy.bootstrap import Container
from lufy.web.app import create_app

__all__ = ["api_client"]


@asynccontextmanager
async def api_client(
    container: Container, *, client_ip: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container), client=(client_ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
