"""E-mailed links and passwords: magic sign-in links, password reset, password change.

Asking for a link never tells whether the address has an account. Following a magic link or a
reset link proves the address; a password reset or change signs out the sessions that the old
password may have opened.
"""

from __future__ import annotations

import uuid

import msgspec

from lufy.accounts.clients import ClientInfo
from lufy.accounts.errors import InvalidCredentialsError
from lufy.accounts.model import (
    Purpose,
    check_token,
    decide_change_password,
    decide_claim_address,
    decide_request_token,
    decide_verify_email,
    normalize_email,
)
from lufy.accounts.passwords import check_password_policy
from lufy.accounts.schemas import Accepted, AuthTokens, User
from lufy.accounts.service.base import NIL, AccountsBase, as_verified, user_view
from lufy.eventstore import ANY
from lufy.identity import Principal

__all__ = ["LinksAndPasswords"]

_ACCEPTED_MAGIC = (
    "if an account exists for this address, a sign-in link is on its way (valid 10 minutes)"
)
_ACCEPTED_RESET = (
    "if an account exists for this address, a password reset link is on its way (valid 1 hour)"
)


class LinksAndPasswords(AccountsBase):
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
                    conn, user.id, keep=NIL, reason="address_claimed", by=None
                )
                user = msgspec.structs.replace(as_verified(user), password_hash=None)
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
                conn, user.id, keep=NIL, reason="password_reset", by=None
            )
        self._forget(revoked)
        return user_view(as_verified(user))

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
