"""/api/auth (CONTRACT.md section 3): thin handlers over AccountService.

Exports ROUTES and MIDDLEWARE (the authentication middleware, which must run before the rate
limiter: web/app.py lists this module first).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from lufy.accounts.clients import ClientInfo
from lufy.accounts.middleware import authentication_middleware
from lufy.accounts.schemas import (
    Accepted,
    AuthTokens,
    ChangePassword,
    CurrentSession,
    EmailRequest,
    RefreshRequest,
    ResetPassword,
    RevokedSessions,
    SessionList,
    SignIn,
    SignUp,
    TokenRequest,
    UserEnvelope,
)
from lufy.accounts.service import AccountService
from lufy.privacy.api import HANDLERS as PRIVACY_HANDLERS
from lufy.web.auth import Principal
from lufy.web.clientip import client_ip_for
from lufy.web.ratelimit import policies as limits
from lufy.web.ratelimit import rate_limited

__all__ = ["AUTH_BODY_LIMIT", "MIDDLEWARE", "ROUTES"]

# Auth bodies are a few short strings: anything bigger is refused with 413 before decoding.
AUTH_BODY_LIMIT = 16 * 1024
_BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]


def _client(request: Request[Any, Any, Any]) -> ClientInfo:
    # The same answer the rate limiter uses (trusted proxies only, computed once per request).
    ip = client_ip_for(request.scope)
    return ClientInfo(user_agent=request.headers.get("user-agent"), ip=ip)


@rate_limited(limits.SIGN_UP)
@post("/sign-up", status_code=HTTP_201_CREATED, summary="Create an account")
async def sign_up(
    data: JSONBody[SignUp], accounts: NamedDependency[AccountService]
) -> UserEnvelope:
    user = await accounts.sign_up(
        email=data.email, password=data.password, display_name=data.display_name, role=data.role
    )
    return UserEnvelope(user=user)


@rate_limited(limits.VERIFY_EMAIL)
@post("/verify-email", status_code=HTTP_200_OK, summary="Confirm an e-mail address")
async def verify_email(
    data: JSONBody[TokenRequest], accounts: NamedDependency[AccountService]
) -> UserEnvelope:
    return UserEnvelope(user=await accounts.verify_email(data.token))


@rate_limited(limits.VERIFY_EMAIL_RESEND)
@post(
    "/verify-email/resend",
    status_code=HTTP_202_ACCEPTED,
    summary="Send a new verification link",
    security=_BEARER,
)
async def resend_verification(
    principal: NamedDependency[Principal], accounts: NamedDependency[AccountService]
) -> Accepted:
    return await accounts.resend_verification(principal)


@rate_limited(limits.SIGN_IN)
@post("/sign-in", status_code=HTTP_200_OK, summary="Sign in with e-mail and password")
async def sign_in(
    data: JSONBody[SignIn],
    request: Request[Any, Any, Any],
    accounts: NamedDependency[AccountService],
) -> AuthTokens:
    return await accounts.sign_in(email=data.email, password=data.password, client=_client(request))


@rate_limited(limits.REFRESH)
@post("/refresh", status_code=HTTP_200_OK, summary="Rotate a refresh token for a new pair")
async def refresh(
    data: JSONBody[RefreshRequest],
    request: Request[Any, Any, Any],
    accounts: NamedDependency[AccountService],
) -> AuthTokens:
    return await accounts.refresh(data.refresh_token, _client(request))


@post("/sign-out", status_code=204, summary="End the current session", security=_BEARER)
async def sign_out(
    principal: NamedDependency[Principal], accounts: NamedDependency[AccountService]
) -> None:
    await accounts.sign_out(principal)


@get("/session", summary="The caller and their current session", security=_BEARER)
async def current_session(
    principal: NamedDependency[Principal], accounts: NamedDependency[AccountService]
) -> CurrentSession:
    return await accounts.current(principal)


@get("/sessions", summary="The caller's live sessions", security=_BEARER)
async def list_sessions(
    principal: NamedDependency[Principal], accounts: NamedDependency[AccountService]
) -> SessionList:
    return await accounts.list_sessions(principal)


@delete(
    "/sessions/{session_id:uuid}", summary="Revoke one of the caller's sessions", security=_BEARER
)
async def revoke_session(
    session_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    accounts: NamedDependency[AccountService],
) -> None:
    await accounts.revoke_session(principal, session_id)


@post(
    "/sessions/revoke-others",
    status_code=HTTP_200_OK,
    summary="Revoke every session of the caller but the current one",
    security=_BEARER,
)
async def revoke_other_sessions(
    principal: NamedDependency[Principal], accounts: NamedDependency[AccountService]
) -> RevokedSessions:
    return RevokedSessions(revoked=await accounts.revoke_other_sessions(principal))


@rate_limited(limits.MAGIC_LINK)
@post("/magic-link", status_code=HTTP_202_ACCEPTED, summary="E-mail a sign-in link")
async def magic_link(
    data: JSONBody[EmailRequest], accounts: NamedDependency[AccountService]
) -> Accepted:
    return await accounts.request_magic_link(data.email)


@rate_limited(limits.MAGIC_LINK_VERIFY)
@post("/magic-link/verify", status_code=HTTP_200_OK, summary="Sign in with a magic link")
async def magic_link_verify(
    data: JSONBody[TokenRequest],
    request: Request[Any, Any, Any],
    accounts: NamedDependency[AccountService],
) -> AuthTokens:
    return await accounts.verify_magic_link(data.token, _client(request))


@rate_limited(limits.PASSWORD_FORGOT)
@post("/password/forgot", status_code=HTTP_202_ACCEPTED, summary="E-mail a password reset link")
async def forgot_password(
    data: JSONBody[EmailRequest], accounts: NamedDependency[AccountService]
) -> Accepted:
    return await accounts.forgot_password(data.email)


@rate_limited(limits.PASSWORD_RESET)
@post("/password/reset", status_code=HTTP_200_OK, summary="Set a new password with a reset link")
async def reset_password(
    data: JSONBody[ResetPassword], accounts: NamedDependency[AccountService]
) -> UserEnvelope:
    user = await accounts.reset_password(data.token, data.password)
    return UserEnvelope(user=user)


@rate_limited(limits.PASSWORD_CHANGE)
@post(
    "/password/change",
    status_code=HTTP_200_OK,
    summary="Change the password (signs out every other session)",
    security=_BEARER,
)
async def change_password(
    data: JSONBody[ChangePassword],
    principal: NamedDependency[Principal],
    accounts: NamedDependency[AccountService],
) -> RevokedSessions:
    revoked = await accounts.change_password(
        principal, current_password=data.current_password, new_password=data.new_password
    )
    return RevokedSessions(revoked=revoked)


ROUTES = [
    Router(
        "/api/auth",
        route_handlers=[
            sign_up,
            verify_email,
            resend_verification,
            sign_in,
            refresh,
            sign_out,
            current_session,
            list_sessions,
            revoke_session,
            revoke_other_sessions,
            magic_link,
            magic_link_verify,
            forgot_password,
            reset_password,
            change_password,
            *PRIVACY_HANDLERS,
        ],
        tags=["auth"],
        request_max_body_size=AUTH_BODY_LIMIT,
    )
]
MIDDLEWARE = [authentication_middleware]
