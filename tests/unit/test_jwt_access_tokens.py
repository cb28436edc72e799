"""AccessTokens without HTTP: claims issued, and what verification refuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from lufy.accounts.access_tokens import AUDIENCE, AccessTokens, InvalidAccessToken
from lufy.web.auth import Principal

SECRET = "unit-test-secret-long-enough-for-hs256-0123456789"
ISSUER = "http://lufy.test"
WHO = Principal(user_id=uuid.uuid4(), role="artist", session_id=uuid.uuid4())


def test_an_issued_token_carries_exactly_the_contract_claims_and_verifies() -> None:
    tokens = AccessTokens(SECRET, issuer=ISSUER)
    now = datetime.now(UTC)
    token = tokens.issue(WHO, now=now)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert claims == {
        "sub": str(WHO.user_id),
        "sid": str(WHO.session_id),
        "role": "artist",
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 900,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    assert tokens.verify(token) == WHO


def test_a_token_is_dead_the_second_its_15_minutes_are_over() -> None:
    tokens = AccessTokens(SECRET, issuer=ISSUER)
    stale = tokens.issue(WHO, now=datetime.now(UTC) - timedelta(minutes=15, seconds=1))
    with pytest.raises(InvalidAccessToken, match="expired"):
        tokens.verify(stale)


def test_a_token_of_another_issuer_with_the_same_key_is_refused() -> None:
    other = AccessTokens(SECRET, issuer="http://elsewhere").issue(WHO, now=datetime.now(UTC))
    with pytest.raises(InvalidAccessToken, match="issued by someone else"):
        AccessTokens(SECRET, issuer=ISSUER).verify(other)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        AccessTokens("", issuer=ISSUER)
