"""What every part of the accounts service shares: its state, transactions and appends.

`AccountsBase` holds the dependencies and the per-process session cache, opens transactions
(`_system`, `_as`), appends events with their personal fields sealed and their password hashes
moved to `lufy.credentials` (`_append`), reads the rows the decisions need, and starts and
revokes sessions (sign-in, magic links, password changes and erasure all do). The concerns
built on it are in the sibling modules; `lufy.accounts.service` says how they are composed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from lufy.accounts.access_tokens import AccessTokens
from lufy.accounts.clients import ClientInfo
from lufy.accounts.events import (
    EmailVerificationRequested,
    EmailVerified,
    MagicLinkRequested,
    PasswordChanged,
    PasswordRemoved,
    PasswordResetRequested,
    SignInFailed,
    UserErased,
    UserRegistered,
)
from lufy.accounts.model import (
    IssuedToken,
    Purpose,
    SessionState,
    TokenState,
    UserState,
    decide_revoke,
    decide_sign_in,
)
from lufy.accounts.passwords import PasswordHashing
from lufy.accounts.projections import PROJECTIONS
from lufy.accounts.schemas import AuthTokens, SessionInfo, User
from lufy.accounts.secrets import TokenSealer, hash_token, new_token
from lufy.db import Database
from lufy.errors import NotFoundError
from lufy.eventstore import NO_STREAM, Event, EventMetadata, EventStore, NewEvent
from lufy.eventstore.envelope import ExpectedVersion
from lufy.identity import Principal, event_metadata
from lufy.privacy import sealing
from lufy.projections.inline import append_inline
from lufy.settings import Settings
from lufy.sqlfiles import load_queries

__all__ = [
    "NIL",
    "AccountsBase",
    "as_verified",
    "session_info",
    "session_state",
    "user_state",
    "user_view",
]

_Q = load_queries("lufy.accounts")
# "Keep no session" for `_revoke_all`.
NIL = uuid.UUID(int=0)
# Personal fields sealed with the person's data key before an event reaches the log.
_PERSONAL: dict[type[Event], tuple[str, ...]] = {
    UserRegistered: ("email", "display_name"),
    EmailVerificationRequested: ("email", "display_name"),
    MagicLinkRequested: ("email", "display_name"),
    PasswordResetRequested: ("email", "display_name"),
    EmailVerified: ("email",),
    PasswordChanged: ("email", "display_name"),
    # A failed sign-in of a known account: the address's hash names the person too.
    SignInFailed: ("email_hash",),
}


def user_state(row: Sequence[Any]) -> UserState:
    return UserState(
        id=row[0],
        email=row[1],
        display_name=row[2],
        role=row[3],
        email_verified=row[4],
        password_hash=row[5],
        version=row[6],
    )


def user_view(user: UserState) -> User:
    return User(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        email_verified=user.email_verified,
    )


def session_info(row: Sequence[Any], current: uuid.UUID) -> SessionInfo:
    return SessionInfo(
        id=row[0],
        method=row[2],
        device=row[3],
        ip_prefix=row[4],
        created_at=row[5],
        last_seen_at=row[6],
        expires_at=row[7],
        current=row[0] == current,
    )


def session_state(row: Sequence[Any]) -> SessionState:
    return SessionState(
        id=row[0], user_id=row[1], expires_at=row[2], revoked_at=row[3], version=row[4]
    )


def as_verified(user: UserState) -> UserState:
    return msgspec.structs.replace(user, email_verified=True)


class AccountsBase:
    def __init__(
        self,
        *,
        db: Database,
        store: EventStore,
        settings: Settings,
        passwords: PasswordHashing | None = None,
        clock: Callable[[], datetime] | None = None,
        session_check_ttl: float = 5.0,
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.passwords = passwords or PasswordHashing(cheap=settings.LUFY_ENV == "test")
        self.clock = clock or (lambda: datetime.now(UTC))
        self.access_tokens = AccessTokens(settings.jwt_secret, issuer=settings.APP_URL)
        self.sealer = TokenSealer(settings.jwt_secret)
        sealing.configure(settings.DATA_KEY_SECRET, settings.DATA_KEY_PREVIOUS_SECRETS)
        self.keyring = sealing.Keyring()
        # session id -> (live?, monotonic time checked). Revocation here drops the entry at
        # once; another process notices within `session_check_ttl` seconds.
        self.session_check_ttl = session_check_ttl
        self._live: dict[uuid.UUID, tuple[bool, float]] = {}

    # --- transactions and appends ---------------------------------------------------------

    @asynccontextmanager
    async def _system(self) -> AsyncIterator[AsyncConnection[Any]]:
        async with self.db.transaction(role="system") as conn:
            yield conn

    @asynccontextmanager
    async def _as(self, principal: Principal) -> AsyncIterator[AsyncConnection[Any]]:
        async with self.db.transaction(user_id=principal.user_id, role=principal.role) as conn:
            yield conn

    async def _append(
        self,
        conn: AsyncConnection[Any],
        stream_type: str,
        stream_id: uuid.UUID | str,
        events: Sequence[Event],
        *,
        expected: ExpectedVersion,
        actor: uuid.UUID | None,
    ) -> None:
        if not events:
            return
        for_log = [await self._for_log(conn, e) for e in events]
        # One time for the events and the credentials they imply (the read of the password
        # hash compares lufy.credentials.changed_at with users.password_changed_at).
        at = datetime.now(UTC)
        metadata = EventMetadata(**event_metadata(actor))
        await append_inline(
            self.store,
            conn,
            stream_type,
            str(stream_id),
            [NewEvent(event=e, metadata=metadata, occurred_at=at) for e in for_log],
            expected=expected,
            projections=PROJECTIONS,
        )
        await self._write_credentials(conn, events, at)

    async def _for_log(self, conn: AsyncConnection[Any], event: Event) -> Event:
        """The event as the log keeps it: personal fields sealed, no password hash."""
        fields = _PERSONAL.get(type(event))
        subject: uuid.UUID | None = getattr(event, "user_id", None)
        if not fields or subject is None:
            return event
        changes: dict[str, Any] = {
            name: await self.keyring.seal(conn, subject, getattr(event, name))
            for name in fields
            if not sealing.is_sealed(getattr(event, name))
        }
        if isinstance(event, UserRegistered | PasswordChanged):
            changes["password_hash"] = None
        return msgspec.structs.replace(event, **changes)

    async def _write_credentials(
        self, conn: AsyncConnection[Any], events: Sequence[Event], at: datetime
    ) -> None:
        """Password hashes go to lufy.credentials, in the transaction that appends the event."""
        for e in events:
            if isinstance(e, UserRegistered | PasswordChanged) and e.password_hash:
                await conn.execute(
                    _Q.credentials_set,
                    {"user_id": e.user_id, "password_hash": e.password_hash, "at": at},
                )
            elif isinstance(e, PasswordRemoved | UserErased):
                await conn.execute(_Q.credentials_delete, {"user_id": e.user_id})

    def _issue(self, purpose: Purpose) -> IssuedToken:
        token = new_token()
        return IssuedToken(
            token=token,
            token_hash=hash_token(token),
            sealed=self.sealer.seal(token, purpose=purpose),
        )

    # --- reads ----------------------------------------------------------------------------

    async def _one(
        self, conn: AsyncConnection[Any], query: Any, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        cur = await conn.execute(query, params, prepare=True)
        return await cur.fetchone()

    async def _user_by_email(self, conn: AsyncConnection[Any], email: str) -> UserState | None:
        row = await self._one(conn, _Q.user_by_email, {"email": email})
        return user_state(row) if row else None

    async def _user_for_update(self, conn: AsyncConnection[Any], user_id: uuid.UUID) -> UserState:
        row = await self._one(conn, _Q.user_by_id_for_update, {"id": user_id})
        if row is None:
            raise NotFoundError("no such account")
        return user_state(row)

    async def _token(self, conn: AsyncConnection[Any], token: str) -> TokenState | None:
        row = await self._one(conn, _Q.token_for_update, {"token_hash": hash_token(token)})
        if row is None:
            return None
        return TokenState(
            token_hash=row[0],
            user_id=row[1],
            purpose=row[2],
            expires_at=row[3],
            used_at=row[4],
            retired_at=row[5],
        )

    async def _session_for_update(
        self, conn: AsyncConnection[Any], session_id: uuid.UUID
    ) -> SessionState | None:
        row = await self._one(conn, _Q.session_for_update, {"id": session_id})
        return session_state(row) if row is not None else None

    # --- sessions: started, revoked, forgotten --------------------------------------------

    async def _start_session(
        self,
        conn: AsyncConnection[Any],
        user: UserState,
        client: ClientInfo,
        *,
        method: str,
        token_hash: str | None = None,
    ) -> AuthTokens:
        now = self.clock()
        session_id = uuid.uuid4()
        refresh = new_token()
        events = decide_sign_in(
            user,
            session_id=session_id,
            method=method,
            device=client.device,
            ip_prefix=client.ip_prefix,
            refresh_hash=hash_token(refresh),
            now=now,
            token_hash=token_hash,
        )
        await self._append(conn, "session", session_id, events, expected=NO_STREAM, actor=user.id)
        return self._tokens(user, session_id, refresh, now)

    def _tokens(
        self, user: UserState, session_id: uuid.UUID, refresh: str, now: datetime
    ) -> AuthTokens:
        principal = Principal(user_id=user.id, role=user.role, session_id=session_id)
        return AuthTokens(
            access_token=self.access_tokens.issue(principal, now=now),
            expires_in=int(self.access_tokens.ttl.total_seconds()),
            refresh_token=refresh,
            user=user_view(user),
        )

    async def _revoke_all(
        self,
        conn: AsyncConnection[Any],
        user_id: uuid.UUID,
        *,
        keep: uuid.UUID,
        reason: str,
        by: uuid.UUID | None,
    ) -> list[uuid.UUID]:
        cur = await conn.execute(
            _Q.other_live_sessions_for_update, {"user_id": user_id, "keep": keep}
        )
        return await self._revoke_rows(conn, user_id, await cur.fetchall(), reason=reason, by=by)

    async def _revoke_rows(
        self,
        conn: AsyncConnection[Any],
        user_id: uuid.UUID,
        rows: Sequence[Sequence[Any]],
        *,
        reason: str,
        by: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """Revoke the sessions of `rows` (locked by the caller's query); their ids."""
        revoked: list[uuid.UUID] = []
        for row in rows:
            session = session_state(row)
            events = decide_revoke(session, reason=reason, by_session_id=by)
            await self._append(
                conn, "session", session.id, events, expected=session.version, actor=user_id
            )
            revoked.append(session.id)
        return revoked

    def _forget(self, session_ids: Sequence[uuid.UUID]) -> None:
        for session_id in session_ids:
            self._live[session_id] = (False, time.monotonic())
