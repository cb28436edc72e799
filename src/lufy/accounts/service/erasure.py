"""The accounts side of erasing a person (docs/privacy.md): finding the account, checking the
caller's proof that it is theirs, and erasing it in one transaction."""

from __future__ import annotations

import uuid

from lufy.accounts.errors import InvalidCredentialsError, InvalidTokenError
from lufy.accounts.events import UserErased
from lufy.accounts.model import UserState, check_token, normalize_email
from lufy.accounts.service.base import AccountsBase, user_state
from lufy.errors import NotFoundError, ValidationFailedError
from lufy.identity import Principal
from lufy.sqlfiles import load_queries

__all__ = ["Erasure"]

_Q = load_queries("lufy.accounts")


class Erasure(AccountsBase):
    async def find_user(self, who: str) -> UserState:
        """An account by id or e-mail address (operators: `lufy users forget|export`)."""
        async with self._system() as conn:
            try:
                row = await self._one(conn, _Q.user_by_id, {"id": uuid.UUID(who)})
            except ValueError:
                row = await self._one(conn, _Q.user_by_email, {"email": normalize_email(who)})
        if row is None:
            raise NotFoundError(f"no account {who}")
        return user_state(row)

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
            revoked = await self._revoke_rows(
                conn, user_id, await cur.fetchall(), reason="account_erased"
            )
            await conn.execute(_Q.credentials_delete, {"user_id": user_id})
            await self.keyring.destroy(conn, user_id)
        self._forget(revoked)
        return first
