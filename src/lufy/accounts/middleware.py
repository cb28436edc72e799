"""Authentication middleware: a valid `Authorization: Bearer` access token becomes
`request.state.principal` (lufy.web.auth.Principal) for the handlers and for the middleware
after this one (rate limiting keys signed-in users by their id).

It never answers a request itself: a request with a bad token goes on as a guest, with the
reason in `request.state.auth_error`, so that routes needing a user answer 401 naming it, and
the rate limiter still counts the attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from lufy.accounts.access_tokens import InvalidAccessToken

if TYPE_CHECKING:
    from lufy.accounts.service import AccountService

__all__ = ["authentication_middleware", "bearer_token"]


def bearer_token(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _service(scope: Scope) -> AccountService:
    service: AccountService = scope["app"].state.container.accounts
    return service


def authentication_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            state: dict[str, Any] = scope.setdefault("state", {})
            state["principal"] = None
            token = bearer_token(scope)
            if token is not None:
                try:
                    state["principal"] = await _service(scope).authenticate(token)
                except InvalidAccessToken as exc:
                    state["auth_error"] = str(exc)
        await app(scope, receive, send)

    return middleware
