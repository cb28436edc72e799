"""Account events. Streams: `user/{user_id}` for the account, `session/{session_id}` for each
signed-in session, and `sign_in/{sha256(email)}` for failed sign-ins of unknown addresses.

No event carries a password, a usable token or a full IP address. Password hashes are not
written to the log any more (only to `lufy.credentials`; events written before carry their
argon2id hash); e-mail addresses and display names are sealed with the person's data key
(lufy.privacy.sealing) and read back through the keyring; e-mailed tokens appear as their
SHA-256 plus a copy sealed (AES-GCM) with a key derived from JWT_SECRET so that the e-mail
reactor can put it in a link, and clients as a network prefix.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lufy.eventstore.envelope import Event

__all__ = [
    "EVENTS",
    "AccountEvent",
    "EmailVerificationRequested",
    "EmailVerified",
    "MagicLinkRequested",
    "PasswordChanged",
    "PasswordRemoved",
    "PasswordResetRequested",
    "RefreshTokenReused",
    "SessionRefreshed",
    "SessionRevoked",
    "SignInFailed",
    "SignedIn",
    "TokenRequested",
    "UserErased",
    "UserRegistered",
]


class UserRegistered(Event, frozen=True, tag="accounts.user_registered"):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    password_hash: str | None = None
    # True when an operator created the account (`lufy users create`): nothing to verify.
    email_verified: bool = False
    via: str = "sign_up"  # sign_up | cli


class EmailVerificationRequested(Event, frozen=True, tag="accounts.email_verification_requested"):
    user_id: uuid.UUID
    email: str
    display_name: str
    token_hash: str
    sealed_token: str
    expires_at: datetime


class MagicLinkRequested(Event, frozen=True, tag="accounts.magic_link_requested"):
    user_id: uuid.UUID
    email: str
    display_name: str
    token_hash: str
    sealed_token: str
    expires_at: datetime


class PasswordResetRequested(Event, frozen=True, tag="accounts.password_reset_requested"):
    user_id: uuid.UUID
    email: str
    display_name: str
    token_hash: str
    sealed_token: str
    expires_at: datetime


TokenRequested = EmailVerificationRequested | MagicLinkRequested | PasswordResetRequested


class EmailVerified(Event, frozen=True, tag="accounts.email_verified"):
    user_id: uuid.UUID
    email: str
    # The verification or magic-link token that proved the address (consumed by this event).
    token_hash: str | None = None
    via: str = "verification_link"  # verification_link | magic_link


class PasswordChanged(Event, frozen=True, tag="accounts.password_changed"):
    user_id: uuid.UUID
    email: str
    display_name: str
    via: str  # change | reset | cli
    # Not written since privacy sealing (the hash lives in lufy.credentials); older events have it.
    password_hash: str | None = None
    # The reset token consumed by this change, when via == "reset".
    token_hash: str | None = None
    # Whether every other outstanding e-mailed link of the account dies with the old password.
    # False for a change on an unverified account: its holder never proved the address, and
    # must not be able to cancel the links its owner asked for (a squatter's denial of service).
    retires_links: bool = True


class PasswordRemoved(Event, frozen=True, tag="accounts.password_removed"):
    """The account has no password any more (only e-mailed links sign in until one is set)."""

    user_id: uuid.UUID
    # set_before_verification: a magic link proved the address of an unverified account, whose
    # password may have been chosen by someone else (account pre-hijacking).
    reason: str


class SignedIn(Event, frozen=True, tag="accounts.signed_in"):
    session_id: uuid.UUID
    user_id: uuid.UUID
    method: str  # password | magic_link
    device: str
    ip_prefix: str | None
    refresh_hash: str
    expires_at: datetime
    # The magic-link token consumed by this sign-in, when method == "magic_link".
    token_hash: str | None = None


class SignInFailed(Event, frozen=True, tag="accounts.sign_in_failed"):
    # None when no account has the address; then the stream is sign_in/{email_hash}.
    user_id: uuid.UUID | None
    email_hash: str
    reason: str  # unknown_email | wrong_password | no_password
    ip_prefix: str | None = None


class SessionRefreshed(Event, frozen=True, tag="accounts.session_refreshed"):
    session_id: uuid.UUID
    user_id: uuid.UUID
    previous_hash: str
    refresh_hash: str
    expires_at: datetime
    ip_prefix: str | None = None


class RefreshTokenReused(Event, frozen=True, tag="accounts.refresh_token_reused"):
    session_id: uuid.UUID
    user_id: uuid.UUID
    token_hash: str
    ip_prefix: str | None = None


class SessionRevoked(Event, frozen=True, tag="accounts.session_revoked"):
    session_id: uuid.UUID
    user_id: uuid.UUID
    # sign_out | revoked | revoked_others | password_changed | password_reset | refresh_token_reuse
    # | address_claimed (a magic link proved the address of an unverified account)
    reason: str
    # The session that asked for it (None when the system did it, e.g. on token reuse).
    by_session_id: uuid.UUID | None = None


class UserErased(Event, frozen=True, tag="accounts.user_erased"):
    """The person was erased: their data key is destroyed (every sealed field of theirs opens
    as "[erased]"), their sessions and e-mailed links are dead, an artist's tracks deleted."""

    user_id: uuid.UUID
    via: str  # account (the person, DELETE /api/auth/account) | cli (lufy users forget)


AccountEvent = (
    UserRegistered
    | EmailVerificationRequested
    | MagicLinkRequested
    | PasswordResetRequested
    | EmailVerified
    | PasswordChanged
    | PasswordRemoved
    | SignedIn
    | SignInFailed
    | SessionRefreshed
    | RefreshTokenReused
    | SessionRevoked
    | UserErased
)

EVENTS = (
    UserRegistered,
    EmailVerificationRequested,
    MagicLinkRequested,
    PasswordResetRequested,
    EmailVerified,
    PasswordChanged,
    SignedIn,
    SignInFailed,
    SessionRefreshed,
    RefreshTokenReused,
    SessionRevoked,
    PasswordRemoved,
    UserErased,
)
