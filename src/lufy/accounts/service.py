"""The accounts application service: load state, decide, append with inline projections.

Transactions run as `system` where the caller is not yet known (sign-up, sign-in, e-mailed
tokens, refresh) or where the service itself fixes whose rows are touched (password change);
reads on behalf of a signed-in user run in that user's context, so Row-Level Security is the
last word on what they see.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, errors

from lufy.accounts.access_tokens import AccessTokens, InvalidAccessToken
from lufy.accounts.clients import ClientInfo
from lufy.accounts.errors import EmailTakenError, InvalidCredentialsError, InvalidTokenError
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
    RefreshState,
    SessionState,
    TokenState,
    UserState,
    check_token,
    decide_change_password,
    decide_claim_address,
    decide_refresh,
    decide_register,
    decide_request_token,
    decide_revoke,
    decide_sign_in,
    decide_verify_email,
    normalize_email,
)
from lufy.accounts.passwords import PasswordHashing, check_password_policy
from lufy.accounts.projections import PROJECTIONS
from lufy.accounts.schemas import (
    Accepted,
    AuthTokens,
    CurrentSession,
    SessionInfo,
    SessionList,
    User,
)
from lufy.accounts.secrets import TokenSealer, hash_token, new_token
from lufy.db import Database
from lufy.errors import NotFoundError, ValidationFailedError
from lufy.eventstore import ANY, NO_STREAM, Event, EventMetadata, EventStore, NewEvent
from lufy.eventstore.envelope import ExpectedVersion
from lufy.identity import Principal, event_metadata
from lufy.privacy import sealing
from lufy.projections.inline import append_inline
from lufy.settings import Settings
from lufy.sqlfiles import load_queries

__all__ = ["AccountService"]

_Q = load_queries("lufy.accounts")
_NIL = uuid.UUID(int=0)
_ACCEPTED_MAGIC = (
    "if an account exists for this address, a sign-in link is on its way (valid 10 minutes)"
)
_ACCEPTED_RESET = (
    "if an account exists for this address, a password reset link is on its way (valid 1 hour)"
)
ROLES = ("listener", "artist", "admin")
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


def _user(row: Sequence[Any]) -> UserState:
    return UserState(
        id=row[0],
        email=row[1],
        display_name=row[2],
        role=row[3],
        email_verified=row[4],
        password_hash=row[5],
        version=row[6],
    )


def _view(user: UserState) -> User:
    return User(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        email_verified=user.email_verified,
    )


def _session_info(row: Sequence[Any], current: uuid.UUID) -> SessionInfo:
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


def _display_name(text: str) -> str:
    cleaned = " ".join("".join(ch for ch in text if ch.isprintable()).split())
    if not cleaned:
        raise ValidationFailedError("display_name must contain visible characters")
    return cleaned[:100]


class AccountService:
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

    # --- plumbing -------------------------------------------------------------------------

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

    async def _one(
        self, conn: AsyncConnection[Any], query: Any, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        cur = await conn.execute(query, params, prepare=True)
        return await cur.fetchone()

    async def _user_by_email(self, conn: AsyncConnection[Any], email: str) -> UserState | None:
        row = await self._one(conn, _Q.user_by_email, {"email": email})
        return _user(row) if row else None

    async def _user_for_update(self, conn: AsyncConnection[Any], user_id: uuid.UUID) -> UserState:
        row = await self._one(conn, _Q.user_by_id_for_update, {"id": user_id})
        if row is None:
            raise NotFoundError("no such account")
        return _user(row)

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
        if row is None:
            return None
        return SessionState(
            id=row[0], user_id=row[1], expires_at=row[2], revoked_at=row[3], version=row[4]
        )

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
            user=_view(user),
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
        revoked: list[uuid.UUID] = []
        for row in await cur.fetchall():
            session = SessionState(
                id=row[0], user_id=row[1], expires_at=row[2], revoked_at=row[3], version=row[4]
            )
            events = decide_revoke(session, reason=reason, by_session_id=by)
            await self._append(
                conn, "session", session.id, events, expected=session.version, actor=user_id
            )
            revoked.append(session.id)
        return revoked

    def _forget(self, session_ids: Sequence[uuid.UUID]) -> None:
        for session_id in session_ids:
            self._live[session_id] = (False, time.monotonic())

    # --- registration ---------------------------------------------------------------------

    async def sign_up(self, *, email: str, password: str, display_name: str, role: str) -> User:
        if role not in ("listener", "artist"):
            raise ValidationFailedError("role must be listener or artist")
        return await self.register(
            email=email, password=password, display_name=display_name, role=role, verified=False
        )

    async def register(
        self,
        *,
        email: str,
        password: str,
        role: str,
        display_name: str | None = None,
        verified: bool,
        via: str = "sign_up",
    ) -> User:
        """Create an account (sign-up, or `lufy users create` with verified=True)."""
        if role not in ROLES:
            raise ValidationFailedError(f"role must be one of {', '.join(ROLES)}")
        address = normalize_email(email)
        name = _display_name(display_name or address.split("@", 1)[0])
        check_password_policy(password)
        password_hash = await self.passwords.hash_async(password)
        user_id = uuid.uuid4()
        async with self._system() as conn:
            events = decide_register(
                existing=await self._user_by_email(conn, address),
                user_id=user_id,
                email=address,
                display_name=name,
                role=role,
                password_hash=password_hash,
                verified=verified,
                via=via,
                verification=None if verified else self._issue("verify_email"),
                now=self.clock(),
            )
            try:
                await self._append(conn, "user", user_id, events, expected=NO_STREAM, actor=None)
            except errors.UniqueViolation:
                # Another sign-up with this address committed first.
                raise EmailTakenError(
                    f"an account with the address {address} already exists"
                ) from None
        return User(
            id=user_id, email=address, display_name=name, role=role, email_verified=verified
        )

    async def verify_email(self, token: str) -> User:
        async with self._system() as conn:
            found = check_token(await self._token(conn, token), "verify_email", self.clock())
            user = await self._user_for_update(conn, found.user_id)
            events = decide_verify_email(user, found, via="verification_link")
            await self._append(conn, "user", user.id, events, expected=user.version, actor=user.id)
        return _view(user) if user.email_verified else _view(_verified(user))

    async def resend_verification(self, principal: Principal) -> Accepted:
        async with self._system() as conn:
            user = await self._user_for_update(conn, principal.user_id)
            if not user.email_verified:
                events = decide_request_token(
                    user, "verify_email", self._issue("verify_email"), self.clock()
                )
                await self._append(conn, "user", user.id, events, expected=ANY, actor=user.id)
        return Accepted(detail="a verification link is on its way unless already verified")

    # --- signing in -----------------------------------------------------------------------

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

    async def request_magic_link(self, email: str) -> Accepted:
        await self._request_token(email, "magic_link")
        return Accepted(detail=_ACCEPTED_MAGIC)

    async def verify_magic_link(self, token: str, client: ClientInfo) -> AuthTokens:
        revoked: list[uuid.UUID] = []
        async with self._system() as conn:
            found = check_token(await self._token(conn, token), "magic_link", self.clock())
            user = await self._user_for_update(conn, found.user_id)
            if not user.email_verified:
                # Following the link proved the address; a password set before that proof,
                # and every session it opened, may be someone else's (pre-hijacking).
                events = decide_claim_address(user, found)
                await self._append(
                    conn, "user", user.id, events, expected=user.version, actor=user.id
                )
                revoked = await self._revoke_all(
                    conn, user.id, keep=_NIL, reason="address_claimed", by=None
                )
                user = msgspec.structs.replace(_verified(user), password_hash=None)
            tokens = await self._start_session(
                conn, user, client, method="magic_link", token_hash=found.token_hash
            )
        self._forget(revoked)
        return tokens

    async def _request_token(self, email: str, purpose: Purpose) -> None:
        """Issue an e-mailed token when the address has an account; silently nothing when
        not, so the answer never tells whether an address is registered."""
        address = normalize_email(email)
        async with self._system() as conn:
            user = await self._user_by_email(conn, address)
            if user is not None:
                events = decide_request_token(user, purpose, self._issue(purpose), self.clock())
                await self._append(conn, "user", user.id, events, expected=ANY, actor=None)

    # --- passwords ------------------------------------------------------------------------

    async def forgot_password(self, email: str) -> Accepted:
        await self._request_token(email, "password_reset")
        return Accepted(detail=_ACCEPTED_RESET)

    async def reset_password(self, token: str, password: str) -> User:
        check_password_policy(password)
        password_hash = await self.passwords.hash_async(password)
        async with self._system() as conn:
            found = check_token(await self._token(conn, token), "password_reset", self.clock())
            user = await self._user_for_update(conn, found.user_id)
            events = decide_change_password(
                user, password_hash, via="reset", token_hash=found.token_hash
            )
            if not user.email_verified:
                events += decide_verify_email(user, found, via="password_reset")
            await self._append(conn, "user", user.id, events, expected=user.version, actor=user.id)
            # Whoever knew the old password is signed out everywhere.
            revoked = await self._revoke_all(
                conn, user.id, keep=_NIL, reason="password_reset", by=None
            )
        self._forget(revoked)
        return _view(_verified(user))

    async def change_password(
        self, principal: Principal, *, current_password: str, new_password: str
    ) -> int:
        check_password_policy(new_password)
        async with self._system() as conn:
            user = await self._user_for_update(conn, principal.user_id)
        if not await self.passwords.verify_async(user.password_hash, current_password):
            raise InvalidCredentialsError("the current password is incorrect")
        password_hash = await self.passwords.hash_async(new_password)
        async with self._system() as conn:
            locked = await self._user_for_update(conn, principal.user_id)
            events = decide_change_password(locked, password_hash, via="change")
            await self._append(
                conn, "user", locked.id, events, expected=locked.version, actor=locked.id
            )
            revoked = await self._revoke_all(
                conn,
                locked.id,
                keep=principal.session_id,
                reason="password_changed",
                by=principal.session_id,
            )
        self._forget(revoked)
        return len(revoked)

    # --- sessions -------------------------------------------------------------------------

    async def current(self, principal: Principal) -> CurrentSession:
        async with self._as(principal) as conn:
            row = await self._one(
                conn,
                _Q.current_session,
                {"id": principal.session_id, "user_id": principal.user_id},
            )
        if row is None:
            raise NotFoundError("the session no longer exists")
        return CurrentSession(
            user=_view(_user(row[10:])), session=_session_info(row[:10], principal.session_id)
        )

    async def list_sessions(self, principal: Principal) -> SessionList:
        async with self._as(principal) as conn:
            cur = await conn.execute(_Q.sessions_of_user, {"user_id": principal.user_id})
            rows = await cur.fetchall()
        return SessionList(sessions=[_session_info(r, principal.session_id) for r in rows])

    async def sign_out(self, principal: Principal) -> None:
        await self._revoke(principal, principal.session_id, reason="sign_out")

    async def revoke_session(self, principal: Principal, session_id: uuid.UUID) -> None:
        await self._revoke(principal, session_id, reason="revoked")

    async def _revoke(self, principal: Principal, session_id: uuid.UUID, *, reason: str) -> None:
        # In the caller's own context: another user's session is invisible, hence "not found".
        async with self._as(principal) as conn:
            session = await self._session_for_update(conn, session_id)
            if session is None or session.user_id != principal.user_id:
                raise NotFoundError(f"no session {session_id} among yours")
            events = decide_revoke(session, reason=reason, by_session_id=principal.session_id)
            await self._append(
                conn,
                "session",
                session.id,
                events,
                expected=session.version,
                actor=principal.user_id,
            )
        self._forget([session_id])

    async def revoke_other_sessions(self, principal: Principal) -> int:
        async with self._as(principal) as conn:
            revoked = await self._revoke_all(
                conn,
                principal.user_id,
                keep=principal.session_id,
                reason="revoked_others",
                by=principal.session_id,
            )
        self._forget(revoked)
        return len(revoked)

    # --- erasure (privacy) ----------------------------------------------------------------

    async def find_user(self, who: str) -> UserState:
        """An account by id or e-mail address (operators: `lufy users forget|export`)."""
        async with self._system() as conn:
            try:
                row = await self._one(conn, _Q.user_by_id, {"id": uuid.UUID(who)})
            except ValueError:
                row = await self._one(conn, _Q.user_by_email, {"email": normalize_email(who)})
        if row is None:
            raise NotFoundError(f"no account {who}")
        return _user(row)

    async def check_erasure_proof(
        self, principal: Principal, *, password: str | None, token: str | None
    ) -> None:
        """The caller proves it is the person: the password, or for an account without one, a
        fresh magic link's token (consumed here)."""
        async with self._system() as conn:
            user = await self._user_for_update(conn, principal.user_id)
        if user.password_hash is not None:
            if password is None:
                raise ValidationFailedError("password: required to erase this account")
            if not await self.passwords.verify_async(user.password_hash, password):
                raise InvalidCredentialsError("the password is incorrect")
            return
        if token is None:
            raise ValidationFailedError(
                "token: this account has no password; send the token of a fresh sign-in link"
            )
        async with self._system() as conn:
            found = check_token(await self._token(conn, token), "magic_link", self.clock())
            if found.user_id != user.id:
                raise InvalidTokenError("this link is not valid; request a new one")
            await conn.execute(_Q.tokens_used, {"at": self.clock(), "token_hash": found.token_hash})

    async def erase(self, user_id: uuid.UUID, *, via: str) -> bool:
        """Erase a person's account in one transaction: `accounts.user_erased`, the data key
        destroyed, the password hash deleted, every session revoked and every e-mailed link
        retired. Idempotent: a second call finds the person erased and returns False."""
        async with self._system() as conn:
            user = await self._user_for_update(conn, user_id)
            row = await self._one(conn, _Q.user_erased_at, {"id": user_id})
            first = row is None or row[0] is None
            if first:
                await self._append(
                    conn,
                    "user",
                    user.id,
                    [UserErased(user_id=user.id, via=via)],
                    expected=user.version,
                    actor=user.id,
                )
            cur = await conn.execute(_Q.all_live_sessions_for_update, {"user_id": user_id})
            revoked: list[uuid.UUID] = []
            for r in await cur.fetchall():
                session = SessionState(
                    id=r[0], user_id=r[1], expires_at=r[2], revoked_at=r[3], version=r[4]
                )
                events = decide_revoke(session, reason="account_erased")
                await self._append(
                    conn, "session", session.id, events, expected=session.version, actor=user_id
                )
                revoked.append(session.id)
            await conn.execute(_Q.credentials_delete, {"user_id": user_id})
            await self.keyring.destroy(conn, user_id)
        self._forget(revoked)
        return first

    # --- every request --------------------------------------------------------------------

    async def authenticate(self, bearer: str) -> Principal:
        """The Principal of a valid access token whose session is live; else
        InvalidAccessToken saying why."""
        principal = self.access_tokens.verify(bearer)
        if not await self._session_live(principal):
            raise InvalidAccessToken("the session of this access token has been revoked")
        return principal

    async def _session_live(self, principal: Principal) -> bool:
        now = time.monotonic()
        cached = self._live.get(principal.session_id)
        if cached is not None and (not cached[0] or now - cached[1] < self.session_check_ttl):
            # A session seen dead stays dead (revocation is final).
            return cached[0]
        async with self._as(principal) as conn:
            row = await self._one(
                conn,
                _Q.session_is_live,
                {"id": principal.session_id, "user_id": principal.user_id},
            )
        live = bool(row and row[0])
        if len(self._live) > 50_000:
            self._live.clear()
        self._live[principal.session_id] = (live, now)
        return live


def _verified(user: UserState) -> UserState:
    return msgspec.structs.replace(user, email_verified=True)
