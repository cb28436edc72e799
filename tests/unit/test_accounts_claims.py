"""Pre-hijacking and retired links in the pure domain: given events, when a command, then
events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lufy.accounts.errors import InvalidTokenError
from lufy.accounts.events import EmailVerified, PasswordRemoved, UserRegistered
from lufy.accounts.model import TokenState, check_token, decide_claim_address, replay_user

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
USER = uuid.uuid4()
LINK = TokenState(
    token_hash="h", user_id=USER, purpose="magic_link", expires_at=NOW + timedelta(minutes=10)
)


def _registered(password_hash: str | None) -> UserRegistered:
    return UserRegistered(
        user_id=USER,
        email="victim@example.com",
        display_name="V",
        role="listener",
        password_hash=password_hash,
    )


def test_claiming_an_unverified_address_removes_the_password_someone_set_before() -> None:
    user = replay_user([_registered("$argon2id$attacker")])
    assert user is not None

    events = decide_claim_address(user, LINK)

    assert events == [
        EmailVerified(user_id=USER, email="victim@example.com", token_hash="h", via="magic_link"),
        PasswordRemoved(user_id=USER, reason="set_before_verification"),
    ]
    after = replay_user([_registered("$argon2id$attacker"), *events])
    assert after is not None
    assert after.password_hash is None
    assert after.email_verified


def test_claiming_an_address_without_a_password_only_verifies_it() -> None:
    user = replay_user([_registered(None)])
    assert user is not None
    assert [type(e) for e in decide_claim_address(user, LINK)] == [EmailVerified]


def test_a_link_retired_by_a_password_change_is_refused_with_the_reason() -> None:
    retired = TokenState(
        token_hash="h",
        user_id=USER,
        purpose="magic_link",
        expires_at=NOW + timedelta(minutes=10),
        retired_at=NOW - timedelta(minutes=1),
    )
    with pytest.raises(InvalidTokenError, match="password changed"):
        check_token(retired, "magic_link", NOW)
