"""Signing in with a password, and refreshing a session's tokens.

A failed sign-in is an event too (`accounts.sign_in_failed`); a refresh token is used once, and
a second use revokes its session (a stolen token is worth one refresh at most).
"""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg import AsyncConnection

from lufy.accounts.clients import ClientInfo
from lufy.accounts.errors import InvalidCredentialsError
from lufy.accounts.events import SignInFailed
from lufy.accounts.model import RefreshState, UserState, decide_refresh, normalize_email
from lufy.accounts.schemas import AuthTokens
from lufy.accounts.secrets import hash_token, new_token
from lufy.accounts.service.base import AccountsBase
from lufy.eventstore import ANY
from lufy.sqlfiles import load_queries

__all__ = ["SignIn"]

_Q = load_queries("lufy.accounts")


class SignIn(AccountsBase):
    async def sign_in(self, *, email: str, password: str, client: ClientInfo) -> AuthTokens:
        address = normalize_email(email)
        async with self._system() as conn:
            user = await self._user_by_email(conn, address)
        # Always verify (against a dummy hash when needed): same cost whether or not the
        # address exists.
        ok = await self.passwords.verify_async(user.password_hash if user else None, password)
        async with self._system() as conn:
            if not ok or user is None:
                await self._record_failure(conn, address, user, client)
            else:
                return await self._start_session(conn, user, client, method="password")
        raise InvalidCredentialsError("the e-mail address or the password is incorrect")

    async def _record_failure(
        self,
        conn: AsyncConnection[Any],
        address: str,
        user: UserState | None,
        client: ClientInfo,
    ) -> None:
        email_hash = hashlib.sha256(address.encode()).hexdigest()
        if user is None:
            reason, stream_type, stream_id = "unknown_email", "sign_in", email_hash
        else:
            reason = "wrong_password" if user.password_hash else "no_password"
            stream_type, stream_id = "user", str(user.id)
        event = SignInFailed(
            user_id=user.id if user else None,
            email_hash=email_hash,
            reason=reason,
            ip_prefix=client.ip_prefix,
        )
        await self._append(
            conn, stream_type, stream_id, [event], expected=ANY, actor=user.id if user else None
        )

    async def refresh(self, refresh_token: str, client: ClientInfo) -> AuthTokens:
        token_hash = hash_token(refresh_token)
        now = self.clock()
        async with self._system() as conn:
            row = await self._one(conn, _Q.refresh_for_update, {"token_hash": token_hash})
            if row is None:
                raise InvalidCredentialsError("the refresh token is not valid")
            refresh = RefreshState(
                token_hash=row[0],
                session_id=row[1],
                user_id=row[2],
                expires_at=row[3],
                used_at=row[4],
            )
            session = await self._session_for_update(conn, refresh.session_id)
            assert session is not None  # written together with its first refresh token
            new = new_token()
            outcome, events = decide_refresh(
                session, refresh, new_hash=hash_token(new), ip_prefix=client.ip_prefix, now=now
            )
            await self._append(
                conn,
                "session",
                session.id,
                events,
                expected=session.version,
                actor=session.user_id,
            )
            if outcome == "rotated":
                user = await self._user_for_update(conn, session.user_id)
                return self._tokens(user, session.id, new, now)
        # Outside the transaction: the revocation of a reused token's session is committed.
        if outcome == "reused":
            self._forget([session.id])
            raise InvalidCredentialsError(
                "this refresh token was already used: the session has been revoked, sign in again"
            )
        if outcome == "revoked":
            raise InvalidCredentialsError("the session has been revoked, sign in again")
        raise InvalidCredentialsError("the refresh token has expired, sign in again")
