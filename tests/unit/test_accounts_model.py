"""The accounts domain as given-events / when-command / then-events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lufy.accounts.errors import EmailTakenError, InvalidTokenError
from lufy.accounts.events import (
    EmailVerificationRequested,
    EmailVerified,
    PasswordChanged,
    RefreshTokenReused,
    SessionRefreshed,
    SessionRevoked,
    UserRegistered,
)
from lufy.accounts.model import (
    IssuedToken,
    RefreshState,
    SessionState,
    TokenState,
    check_token,
    decide_refresh,
    decide_register,
    decide_request_token,
    decide_revoke,
    normalize_email,
    replay_user,
)
from lufy.errors import ValidationFailedError

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
USER = uuid.uuid4()
ISSUED = IssuedToken(token="t", token_hash="h", sealed="s")


def registered(**changes: object) -> UserRegistered:
    values: dict[str, object] = {
        "user_id": USER,
        "email": "ada@example.com",
        "display_name": "Ada",
        "role": "listener",
        "password_hash": "$argon2id$...",
    }
    values.update(changes)
    return UserRegistered(**values)  # type: ignore[arg-type]


def test_registering_a_new_address_records_the_user_and_a_verification_request() -> None:
    events = decide_register(
        existing=None,
        user_id=USER,
        email="ada@example.com",
        display_name="Ada",
        role="listener",
        password_hash="x",
        verified=False,
        via="sign_up",
        verification=ISSUED,
        now=NOW,
    )
    assert [type(e) for e in events] == [UserRegistered, EmailVerificationRequested]
    request = events[1]
    assert isinstance(request, EmailVerificationRequested)
    assert request.expires_at == NOW + timedelta(hours=24)
    assert request.token_hash == "h"
    assert request.sealed_token == "s"


def test_an_operator_created_user_is_verified_and_gets_no_verification_request() -> None:
    events = decide_register(
        existing=None,
        user_id=USER,
        email="ops@example.com",
        display_name="Ops",
        role="admin",
        password_hash="x",
        verified=True,
        via="cli",
        verification=None,
        now=NOW,
    )
    assert len(events) == 1
    assert isinstance(events[0], UserRegistered)
    assert events[0].email_verified


def test_registering_a_taken_address_is_refused() -> None:
    existing = replay_user([registered()])
    with pytest.raises(EmailTakenError):
        decide_register(
            existing=existing,
            user_id=uuid.uuid4(),
            email="ada@example.com",
            display_name="Ada 2",
            role="listener",
            password_hash="x",
            verified=False,
            via="sign_up",
            verification=ISSUED,
            now=NOW,
        )


def test_replaying_a_users_events_gives_their_state() -> None:
    state = replay_user(
        [
            registered(),
            EmailVerified(user_id=USER, email="ada@example.com", token_hash="h"),
            PasswordChanged(
                user_id=USER,
                email="ada@example.com",
                display_name="Ada",
                password_hash="new",
                via="change",
            ),
        ]
    )
    assert state is not None
    assert state.email_verified
    assert state.password_hash == "new"
    assert state.version == 3


@pytest.mark.parametrize(
    ("purpose", "ttl"),
    [
        ("verify_email", timedelta(hours=24)),
        ("magic_link", timedelta(minutes=10)),
        ("password_reset", timedelta(hours=1)),
    ],
)
def test_each_emailed_token_expires_after_its_own_time(purpose: str, ttl: timedelta) -> None:
    user = replay_user([registered()])
    assert user is not None
    [event] = decide_request_token(user, purpose, ISSUED, NOW)  # type: ignore[arg-type]
    assert event.expires_at == NOW + ttl  # type: ignore[attr-defined]
    token = TokenState(token_hash="h", user_id=USER, purpose=purpose, expires_at=NOW + ttl)
    assert check_token(token, purpose, NOW + ttl - timedelta(seconds=1)) is token  # type: ignore[arg-type]
    with pytest.raises(InvalidTokenError, match="expired"):
        check_token(token, purpose, NOW + ttl)  # type: ignore[arg-type]


def test_a_used_token_a_missing_token_and_a_token_of_another_purpose_are_refused() -> None:
    used = TokenState(
        token_hash="h",
        user_id=USER,
        purpose="magic_link",
        expires_at=NOW + timedelta(1),
        used_at=NOW,
    )
    with pytest.raises(InvalidTokenError, match="already been used"):
        check_token(used, "magic_link", NOW)
    with pytest.raises(InvalidTokenError, match="not valid"):
        check_token(None, "magic_link", NOW)
    reset = TokenState(
        token_hash="h", user_id=USER, purpose="password_reset", expires_at=NOW + timedelta(1)
    )
    with pytest.raises(InvalidTokenError, match="not valid"):
        check_token(reset, "magic_link", NOW)


def _session(**changes: object) -> SessionState:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "user_id": USER,
        "expires_at": NOW + timedelta(days=30),
        "version": 1,
    }
    values.update(changes)
    return SessionState(**values)  # type: ignore[arg-type]


def _refresh(session: SessionState, **changes: object) -> RefreshState:
    values: dict[str, object] = {
        "token_hash": "old",
        "session_id": session.id,
        "user_id": USER,
        "expires_at": NOW + timedelta(days=30),
    }
    values.update(changes)
    return RefreshState(**values)  # type: ignore[arg-type]


def test_a_fresh_refresh_token_rotates_and_slides_the_expiry() -> None:
    session = _session()
    outcome, events = decide_refresh(
        session, _refresh(session), new_hash="new", ip_prefix=None, now=NOW
    )
    assert outcome == "rotated"
    [event] = events
    assert isinstance(event, SessionRefreshed)
    assert (event.previous_hash, event.refresh_hash) == ("old", "new")
    assert event.expires_at == NOW + timedelta(days=30)


def test_a_reused_refresh_token_revokes_the_session() -> None:
    session = _session()
    outcome, events = decide_refresh(
        session, _refresh(session, used_at=NOW), new_hash="new", ip_prefix=None, now=NOW
    )
    assert outcome == "reused"
    assert [type(e) for e in events] == [RefreshTokenReused, SessionRevoked]
    assert isinstance(events[1], SessionRevoked)
    assert events[1].reason == "refresh_token_reuse"


def test_refreshing_a_revoked_or_expired_session_changes_nothing() -> None:
    revoked = _session(revoked_at=NOW)
    assert decide_refresh(revoked, _refresh(revoked), new_hash="n", ip_prefix=None, now=NOW) == (
        "revoked",
        [],
    )
    live = _session()
    stale = _refresh(live, expires_at=NOW)
    assert decide_refresh(live, stale, new_hash="n", ip_prefix=None, now=NOW) == ("expired", [])


def test_revoking_twice_records_one_revocation() -> None:
    session = _session()
    assert len(decide_revoke(session, reason="sign_out")) == 1
    assert decide_revoke(_session(revoked_at=NOW), reason="sign_out") == []


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [(" Ada@Example.COM ", "ada@example.com"), ("a.b+c@sub.example.org", "a.b+c@sub.example.org")],
)
def test_addresses_are_normalized(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw", ["", "ada", "ada@", "@example.com", "a b@example.com", "a@b", "a@@b.com"]
)
def test_invalid_addresses_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailedError):
        normalize_email(raw)
