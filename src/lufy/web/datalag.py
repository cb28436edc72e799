"""`Lufy-Data-Lag`: how many seconds behind the primary the replica that served a response was.

Set only on responses that read from the read replica (`DATABASE_READ_URL`); a response served
by the primary has no such header (it is not behind).
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lufy.readdb import DataLag, current_data_lag

__all__ = ["HEADER", "MIDDLEWARE", "ROUTES", "data_lag_middleware"]

HEADER = "Lufy-Data-Lag"
_HEADER = HEADER.lower().encode()


def data_lag_middleware(app: ASGIApp) -> ASGIApp:
    variable = current_data_lag()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        holder = DataLag()
        token = variable.set(holder)

        async def send_with_lag(message: Message) -> None:
            if message["type"] == "http.response.start" and holder.seconds is not None:
                value = f"{holder.seconds:.3f}".encode()
                message["headers"] = [*message.get("headers", []), (_HEADER, value)]
            await send(message)

        try:
            await app(scope, receive, send_with_lag)
        finally:
            variable.reset(token)

    return middleware


# Collected by create_app like a context's api module.
ROUTES: list[object] = []
MIDDLEWARE = [data_lag_middleware]
