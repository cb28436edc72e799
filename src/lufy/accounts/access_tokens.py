"""Access tokens: JWT HS256 with `sub sid role iat exp iss aud`, 15 minutes.

Verification pins the algorithm to HS256 (so `alg: none` and any algorithm confusion fail),
requires every claim, checks issuer and audience, and allows no clock leeway.

Every authenticated request verifies its bearer token, and a client sends the same token for
its 15 minutes: a token that verified is remembered (per process, by its exact text, with its
expiry), so its later requests skip the signature and claim checks (a few hundred microseconds
of PyJWT) but not the expiry, which is checked as PyJWT checks it (dead once `exp <= now`).
Nothing else about a token can change while it is valid; whether its session is still live is
a separate check (`authenticate`). A refused token is never remembered.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import jwt
import msgspec

from lufy.identity import Principal

__all__ = ["ACCESS_TTL", "AUDIENCE", "ROLES", "AccessTokens", "InvalidAccessToken"]

ACCESS_TTL = timedelta(minutes=15)
AUDIENCE = "lufy-api"
ROLES = frozenset({"listener", "artist", "admin"})
_ALGORITHM = "HS256"
_REQUIRED = ["sub", "sid", "role", "iat", "exp", "iss", "aud"]
# The verified tokens remembered are dropped whole past this many.
_VERIFIED_MAX = 20_000


class InvalidAccessToken(Exception):
    """The bearer token is not one we issued, or no longer valid; the message says which."""


class AccessTokens:
    def __init__(self, secret: str, *, issuer: str, ttl: timedelta = ACCESS_TTL) -> None:
        if not secret:
            raise ValueError("an access-token secret is required")
        self._secret = secret
        self.issuer = issuer
        self.ttl = ttl
        self._verified: dict[str, tuple[Principal, float]] = {}

    def issue(self, principal: Principal, *, now: datetime) -> str:
        claims = {
            "sub": str(principal.user_id),
            "sid": str(principal.session_id),
            "role": principal.role,
            "iat": int(now.timestamp()),
            "exp": int((now + self.ttl).timestamp()),
            "iss": self.issuer,
            "aud": AUDIENCE,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            if known[1] <= time.time():
                self._verified.pop(token, None)
                raise InvalidAccessToken("access token has expired")
            return known[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        if len(token) > 4096:
            raise InvalidAccessToken("access token is malformed")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": _REQUIRED, "verify_signature": True},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidAccessToken("access token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidAccessToken("access token is not meant for this API") from None
        except jwt.InvalidIssuerError:
            raise InvalidAccessToken("access token was issued by someone else") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidAccessToken(f"access token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidAccessToken("access token uses a forbidden algorithm") from None
        except jwt.InvalidSignatureError:
            raise InvalidAccessToken("access token signature is invalid") from None
        except jwt.PyJWTError:
            raise InvalidAccessToken("access token is malformed") from None
        try:
            principal = msgspec.convert(
                {"user_id": claims["sub"], "session_id": claims["sid"], "role": claims["role"]},
                Principal,
            )
        except msgspec.ValidationError:
            raise InvalidAccessToken("access token claims are invalid") from None
        if principal.role not in ROLES:
            raise InvalidAccessToken("access token claims are invalid")
        return principal, float(claims["exp"])
