"""Signing up: an account is registered, its address verified by an e-mailed link."""

from __future__ import annotations

import uuid

from psycopg import errors

from lufy.accounts.errors import EmailTakenError
from lufy.accounts.model import (
    check_token,
    decide_register,
    decide_request_token,
    decide_verify_email,
    normalize_email,
)
from lufy.accounts.passwords import check_password_policy
from lufy.accounts.schemas import Accepted, User
from lufy.accounts.service.base import AccountsBase, as_verified, user_view
from lufy.errors import ValidationFailedError
from lufy.eventstore import ANY, NO_STREAM
from lufy.identity import Principal

__all__ = ["ROLES", "Registration"]

ROLES = ("listener", "artist", "admin")


def _display_name(text: str) -> str:
    cleaned = " ".join("".join(ch for ch in text if ch.isprintable()).split())
    if not cleaned:
        raise ValidationFailedError("display_name must contain visible characters")
    return cleaned[:100]


class Registration(AccountsBase):
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
        return user_view(user) if user.email_verified else user_view(as_verified(user))

    async def resend_verification(self, principal: Principal) -> Accepted:
        async with self._system() as conn:
            user = await self._user_for_update(conn, principal.user_id)
            if not user.email_verified:
                events = decide_request_token(
                    user, "verify_email", self._issue("verify_email"), self.clock()
                )
                await self._append(conn, "user", user.id, events, expected=ANY, actor=user.id)
        return Accepted(detail="a verification link is on its way unless already verified")
