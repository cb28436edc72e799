"""The accounts domain, pure: state, `decide_*` (command -> events) and `evolve`.

No I/O here. Randomness (ids, tokens) and the clock are passed in by the service, which loads
the state from the inline read models inside the transaction it appends in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from lufy.accounts.errors import EmailTakenError, InvalidTokenError
from lufy.accounts.events import (
    AccountEvent,
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
    UserRegistered,
)
from lufy.errors import ValidationFailedError
from lufy.eventstore.envelope import Event

__all__ = [
    "MAGIC_LINK_TTL",
    "REFRESH_TTL",
    "RESET_TTL",
    "VERIFY_TTL",
    "IssuedToken",
    "Purpose",
    "RefreshOutcome",
    "RefreshState",
    "SessionState",
    "TokenState",
    "UserState",
    "check_token",
    "decide_change_password",
    "decide_claim_address",
    "decide_refresh",
    "decide_register",
    "decide_request_token",
    "decide_revoke",
    "decide_sign_in",
    "decide_verify_email",
    "evolve_user",
    "normalize_email",
    "replay_user",
]

VERIFY_TTL = timedelta(hours=24)
MAGIC_LINK_TTL = timedelta(minutes=10)
RESET_TTL = timedelta(hours=1)
REFRESH_TTL = timedelta(days=30)

Purpose = Literal["verify_email", "magic_link", "password_reset"]
_TTL: dict[str, timedelta] = {
    "verify_email": VERIFY_TTL,
    "magic_link": MAGIC_LINK_TTL,
    "password_reset": RESET_TTL,
}
# A plain RFC 5321 mailbox: a dot-string local part (atext atoms joined by single dots) and a
# domain of two or more LDH labels. Quoted local parts, address literals, display names
# (`Eve <victim@example.com>`), lists (commas, semicolons), comments and anything non-ASCII
# are refused: the address is a key, goes into mail headers and names whoever can reset it.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_RE = re.compile(rf"(?P<local>{_ATEXT}+(?:\.{_ATEXT}+)*)@{_LABEL}(?:\.{_LABEL})+")


class UserState(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    email: str
    display_name: str
    role: str
    email_verified: bool = False
    password_hash: str | None = None
    version: int = 0


class TokenState(msgspec.Struct, frozen=True, kw_only=True):
    token_hash: str
    user_id: uuid.UUID
    purpose: str
    expires_at: datetime
    used_at: datetime | None = None
    # Set when the account's password changed after the token was sent.
    retired_at: datetime | None = None


class SessionState(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    revoked_at: datetime | None = None
    version: int = 0


class RefreshState(msgspec.Struct, frozen=True, kw_only=True):
    token_hash: str
    session_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    used_at: datetime | None = None


class IssuedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A freshly generated token: the secret (for the client), its hash, and its sealed copy."""

    token: str
    token_hash: str
    sealed: str


RefreshOutcome = Literal["rotated", "reused", "revoked", "expired"]


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    match = _EMAIL_RE.fullmatch(value) if len(value) <= 254 else None
    if match is None or len(match.group("local")) > 64:
        raise ValidationFailedError(
            f"{email[:100]!r} is not a valid e-mail address (expected a plain address such "
            "as name@example.com)"
        )
    return value


# --- users ----------------------------------------------------------------------------------


def decide_register(
    *,
    existing: UserState | None,
    user_id: uuid.UUID,
    email: str,
    display_name: str,
    role: str,
    password_hash: str | None,
    verified: bool,
    via: str,
    verification: IssuedToken | None,
    now: datetime,
) -> list[Event]:
    if existing is not None:
        raise EmailTakenError(f"an account with the address {email} already exists")
    events: list[Event] = [
        UserRegistered(
            user_id=user_id,
            email=email,
            display_name=display_name,
            role=role,
            password_hash=password_hash,
            email_verified=verified,
            via=via,
        )
    ]
    if not verified and verification is not None:
        events.append(
            EmailVerificationRequested(
                user_id=user_id,
                email=email,
                display_name=display_name,
                token_hash=verification.token_hash,
                sealed_token=verification.sealed,
                expires_at=now + VERIFY_TTL,
            )
        )
    return events


def decide_request_token(
    user: UserState, purpose: Purpose, issued: IssuedToken, now: datetime
) -> list[Event]:
    expires_at = now + _TTL[purpose]
    common = {
        "user_id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "token_hash": issued.token_hash,
        "sealed_token": issued.sealed,
        "expires_at": expires_at,
    }
    if purpose == "verify_email":
        return [EmailVerificationRequested(**common)]  # type: ignore[arg-type]
    if purpose == "magic_link":
        return [MagicLinkRequested(**common)]  # type: ignore[arg-type]
    return [PasswordResetRequested(**common)]  # type: ignore[arg-type]


def check_token(token: TokenState | None, purpose: Purpose, now: datetime) -> TokenState:
    """The token if it may be used now for `purpose`; else InvalidTokenError saying why."""
    if token is None or token.purpose != purpose:
        raise InvalidTokenError("this link is not valid; request a new one")
    if token.used_at is not None:
        raise InvalidTokenError("this link has already been used; request a new one")
    if token.retired_at is not None:
        raise InvalidTokenError(
            "this link was cancelled when the account's password changed; request a new one"
        )
    if token.expires_at <= now:
        raise InvalidTokenError("this link has expired; request a new one")
    return token


def decide_verify_email(user: UserState, token: TokenState, *, via: str) -> list[Event]:
    return [EmailVerified(user_id=user.id, email=user.email, token_hash=token.token_hash, via=via)]


def decide_claim_address(user: UserState, token: TokenState) -> list[Event]:
    """A magic link proved the address of an unverified account.

    Whoever chose the account's password never proved the address: it may be someone who
    signed up with it first (account pre-hijacking). The proof wins: the address is verified
    and the password set before it is removed (the service also ends every session).
    """
    events: list[Event] = decide_verify_email(user, token, via="magic_link")
    if user.password_hash is not None:
        events.append(PasswordRemoved(user_id=user.id, reason="set_before_verification"))
    return events


def decide_change_password(
    user: UserState, password_hash: str, *, via: str, token_hash: str | None = None
) -> list[Event]:
    return [
        PasswordChanged(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            password_hash=password_hash,
            via=via,
            token_hash=token_hash,
        )
    ]


def evolve_user(state: UserState | None, event: AccountEvent | Event) -> UserState | None:
    if isinstance(event, UserRegistered):
        return UserState(
            id=event.user_id,
            email=event.email,
            display_name=event.display_name,
            role=event.role,
            email_verified=event.email_verified,
            password_hash=event.password_hash,
            version=1,
        )
    if state is None:
        return None
    if isinstance(event, EmailVerified):
        return msgspec.structs.replace(state, email_verified=True, version=state.version + 1)
    if isinstance(event, PasswordChanged):
        return msgspec.structs.replace(
            state, password_hash=event.password_hash, version=state.version + 1
        )
    if isinstance(event, PasswordRemoved):
        return msgspec.structs.replace(state, password_hash=None, version=state.version + 1)
    return msgspec.structs.replace(state, version=state.version + 1)


def replay_user(events: Iterable[Event]) -> UserState | None:
    state: UserState | None = None
    for event in events:
        state = evolve_user(state, event)
    return state


# --- sessions -------------------------------------------------------------------------------


def decide_sign_in(
    user: UserState,
    *,
    session_id: uuid.UUID,
    method: str,
    device: str,
    ip_prefix: str | None,
    refresh_hash: str,
    now: datetime,
    token_hash: str | None = None,
) -> list[Event]:
    return [
        SignedIn(
            session_id=session_id,
            user_id=user.id,
            method=method,
            device=device,
            ip_prefix=ip_prefix,
            refresh_hash=refresh_hash,
            expires_at=now + REFRESH_TTL,
            token_hash=token_hash,
        )
    ]


def decide_refresh(
    session: SessionState,
    refresh: RefreshState,
    *,
    new_hash: str,
    ip_prefix: str | None,
    now: datetime,
) -> tuple[RefreshOutcome, list[Event]]:
    """Rotate a refresh token. A token presented twice is a theft signal: the session dies."""
    if session.revoked_at is not None:
        return "revoked", []
    if refresh.used_at is not None:
        return "reused", [
            RefreshTokenReused(
                session_id=session.id,
                user_id=session.user_id,
                token_hash=refresh.token_hash,
                ip_prefix=ip_prefix,
            ),
            SessionRevoked(
                session_id=session.id, user_id=session.user_id, reason="refresh_token_reuse"
            ),
        ]
    if refresh.expires_at <= now or session.expires_at <= now:
        return "expired", []
    return "rotated", [
        SessionRefreshed(
            session_id=session.id,
            user_id=session.user_id,
            previous_hash=refresh.token_hash,
            refresh_hash=new_hash,
            expires_at=now + REFRESH_TTL,
            ip_prefix=ip_prefix,
        )
    ]


def decide_revoke(
    session: SessionState, *, reason: str, by_session_id: uuid.UUID | None = None
) -> list[Event]:
    if session.revoked_at is not None:
        return []
    return [
        SessionRevoked(
            session_id=session.id,
            user_id=session.user_id,
            reason=reason,
            by_session_id=by_session_id,
        )
    ]
