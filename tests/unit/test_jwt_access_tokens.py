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


def test_a_verified_token_is_remembered_but_still_dies_at_its_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = AccessTokens(SECRET, issuer=ISSUER)
    now = datetime.now(UTC)
    token = tokens.issue(WHO, now=now)
    assert tokens.verify(token) == WHO

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise jwt.DecodeError("decoded again")

    monkeypatch.setattr("lufy.accounts.access_tokens.jwt.decode", no_decoding)
    assert tokens.verify(token) == WHO  # remembered: not decoded again
    expiry = float(int(now.timestamp()) + 900)
    monkeypatch.setattr("lufy.accounts.access_tokens.time.time", lambda: expiry - 0.001)
    assert tokens.verify(token) == WHO
    monkeypatch.setattr("lufy.accounts.access_tokens.time.time", lambda: expiry)
    with pytest.raises(InvalidAccessToken, match="expired"):
        tokens.verify(token)
    # Forgotten once expired: it is decoded again (and here refused by the stand-in).
    with pytest.raises(InvalidAccessToken, match="malformed"):
        tokens.verify(token)


def test_a_refused_token_is_never_remembered() -> None:
    tokens = AccessTokens(SECRET, issuer=ISSUER)
    token = tokens.issue(WHO, now=datetime.now(UTC))
    assert tokens.verify(token) == WHO
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for _ in range(2):
        with pytest.raises(InvalidAccessToken, match="signature is invalid"):
            tokens.verify(forged)
    other = AccessTokens(SECRET + "-other", issuer=ISSUER)
    with pytest.raises(InvalidAccessToken, match="signature is invalid"):
        other.verify(token)  # what one instance remembers, another does not know
