"""The accounts read models, all inline (updated in the transaction that appends):
`users`, `sessions` (+ `refresh_tokens`) and `account_tokens` (projections/accounts.sql).

Times written are the events' `occurred_at`, never the clock, so a rebuild gives the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from psycopg import AsyncConnection

from lufy.accounts.events import (
    EmailVerificationRequested,
    EmailVerified,
    MagicLinkRequested,
    PasswordChanged,
    PasswordRemoved,
    PasswordResetRequested,
    RefreshTokenReused,
    SessionRefreshed,
    SessionRevoked,
    SignedIn,
    SignInFailed,
    UserErased,
    UserRegistered,
)
from lufy.eventstore.envelope import RecordedEvent
from lufy.privacy.sealing import ERASED, Keyring
from lufy.projections.base import Projection
from lufy.sqlfiles import load_queries

__all__ = [
    "PROJECTIONS",
    "SessionsProjection",
    "TokensProjection",
    "UsersProjection",
    "sessions_projection",
    "tokens_projection",
    "users_projection",
]

_Q = load_queries("lufy.accounts")
_KEYRING = Keyring()


def _tag(cls: type[Any]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


class UsersProjection(Projection):
    name = "accounts_users"
    tables = ("users",)
    inline = True
    # Every event of a user stream moves the row's version (optimistic concurrency).
    handles = frozenset(
        _tag(c)
        for c in (
            UserRegistered,
            EmailVerificationRequested,
            MagicLinkRequested,
            PasswordResetRequested,
            EmailVerified,
            PasswordChanged,
            SignInFailed,
            PasswordRemoved,
            UserErased,
        )
    )

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        for r in events:
            e = r.data
            base = {"at": r.occurred_at, "version": r.stream_version or 0}
            if isinstance(e, UserRegistered):
                # Sealed fields open with the person's key; once erased, as ERASED (a replay
                # after erasure then writes placeholders, and user_erased follows anyway).
                u = await _KEYRING.open_struct(conn, e)
                await conn.execute(
                    _Q.users_insert,
                    {
                        **base,
                        "id": u.user_id,
                        "email": f"erased:{u.user_id}" if u.email == ERASED else u.email,
                        "display_name": u.display_name,
                        "role": u.role,
                        "email_verified": u.email_verified,
                        # Hashes live in lufy.credentials only (older events still carry one).
                        "password_hash": None,
                    },
                )
            elif isinstance(e, UserErased):
                await conn.execute(_Q.users_erased, {**base, "id": e.user_id})
            elif isinstance(e, EmailVerified):
                await conn.execute(_Q.users_verified, {**base, "id": e.user_id})
            elif isinstance(e, PasswordChanged | PasswordRemoved):
                await conn.execute(
                    _Q.users_password, {**base, "id": e.user_id, "password_hash": None}
                )
            elif r.stream_type == "user":
                await conn.execute(_Q.users_version, {**base, "id": r.stream_id})


class SessionsProjection(Projection):
    name = "accounts_sessions"
    tables = ("sessions", "refresh_tokens")
    inline = True
    handles = frozenset(
        _tag(c) for c in (SignedIn, SessionRefreshed, RefreshTokenReused, SessionRevoked)
    )

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        for r in events:
            e = r.data
            base = {"at": r.occurred_at, "version": r.stream_version or 0}
            if isinstance(e, SignedIn):
                await conn.execute(
                    _Q.sessions_insert,
                    {
                        **base,
                        "id": e.session_id,
                        "user_id": e.user_id,
                        "method": e.method,
                        "device": e.device,
                        "ip_prefix": e.ip_prefix,
                        "expires_at": e.expires_at,
                    },
                )
                await conn.execute(
                    _Q.refresh_insert,
                    {
                        **base,
                        "token_hash": e.refresh_hash,
                        "session_id": e.session_id,
                        "user_id": e.user_id,
                        "expires_at": e.expires_at,
                    },
                )
            elif isinstance(e, SessionRefreshed):
                await conn.execute(_Q.refresh_used, {**base, "token_hash": e.previous_hash})
                await conn.execute(
                    _Q.refresh_insert,
                    {
                        **base,
                        "token_hash": e.refresh_hash,
                        "session_id": e.session_id,
                        "user_id": e.user_id,
                        "expires_at": e.expires_at,
                    },
                )
                await conn.execute(
                    _Q.sessions_refreshed,
                    {
                        **base,
                        "id": e.session_id,
                        "expires_at": e.expires_at,
                        "ip_prefix": e.ip_prefix,
                    },
                )
            elif isinstance(e, SessionRevoked):
                await conn.execute(
                    _Q.sessions_revoked, {**base, "id": e.session_id, "reason": e.reason}
                )
            else:
                await conn.execute(_Q.sessions_version, {**base, "id": r.stream_id})


class TokensProjection(Projection):
    name = "accounts_tokens"
    tables = ("account_tokens",)
    inline = True
    handles = frozenset(
        _tag(c)
        for c in (
            EmailVerificationRequested,
            MagicLinkRequested,
            PasswordResetRequested,
            EmailVerified,
            PasswordChanged,
            SignedIn,
            UserErased,
        )
    )
    _PURPOSES: ClassVar[dict[type[Any], str]] = {
        EmailVerificationRequested: "verify_email",
        MagicLinkRequested: "magic_link",
        PasswordResetRequested: "password_reset",
    }

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        for r in events:
            e = r.data
            at = r.occurred_at
            if isinstance(
                e, EmailVerificationRequested | MagicLinkRequested | PasswordResetRequested
            ):
                await conn.execute(
                    _Q.tokens_insert,
                    {
                        "at": at,
                        "token_hash": e.token_hash,
                        "user_id": e.user_id,
                        "purpose": self._PURPOSES[type(e)],
                        "expires_at": e.expires_at,
                    },
                )
            elif isinstance(e, PasswordChanged):
                # A reset consumes its own link; every other link sent before the change was
                # sent to whoever held the account then, and dies with the old password.
                if e.token_hash:
                    await conn.execute(_Q.tokens_used, {"at": at, "token_hash": e.token_hash})
                if e.retires_links:
                    await conn.execute(_Q.tokens_retire_all, {"at": at, "user_id": e.user_id})
            elif isinstance(e, UserErased):
                await conn.execute(_Q.tokens_retire_all, {"at": at, "user_id": e.user_id})
            elif isinstance(e, EmailVerified | SignedIn) and e.token_hash:
                await conn.execute(_Q.tokens_used, {"at": at, "token_hash": e.token_hash})


users_projection = UsersProjection()
sessions_projection = SessionsProjection()
tokens_projection = TokensProjection()

PROJECTIONS: list[Projection] = [users_projection, sessions_projection, tokens_projection]
