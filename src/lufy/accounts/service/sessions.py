"""Sessions and access tokens: the signed-in user's sessions, their revocation, and the check
every authenticated request makes (`authenticate`).

Reads and revocations on behalf of a user run in that user's context, so Row-Level Security
hides every other user's sessions ("not found"). Whether a session is live is cached per
process for `session_check_ttl` seconds; a revocation seen here is final at once.
"""

from __future__ import annotations

import time
import uuid

from lufy.accounts.access_tokens import InvalidAccessToken
from lufy.accounts.model import decide_revoke
from lufy.accounts.schemas import CurrentSession, SessionList
from lufy.accounts.service.base import AccountsBase, session_info, user_state, user_view
from lufy.errors import NotFoundError
from lufy.identity import Principal
from lufy.sqlfiles import load_queries

__all__ = ["Sessions"]

_Q = load_queries("lufy.accounts")
# The live-session cache is dropped whole past this many entries.
_LIVE_CACHE_MAX = 50_000


class Sessions(AccountsBase):
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
            user=user_view(user_state(row[10:])),
            session=session_info(row[:10], principal.session_id),
        )

    async def list_sessions(self, principal: Principal) -> SessionList:
        async with self._as(principal) as conn:
            cur = await conn.execute(_Q.sessions_of_user, {"user_id": principal.user_id})
            rows = await cur.fetchall()
        return SessionList(sessions=[session_info(r, principal.session_id) for r in rows])

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
        if len(self._live) > _LIVE_CACHE_MAX:
            self._live.clear()
        self._live[principal.session_id] = (live, now)
        return live
