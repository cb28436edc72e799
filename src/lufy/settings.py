"""Configuration: exactly the environment variables of CONTRACT.md section 1, read once."""

from __future__ import annotations

import getpass
import ipaddress
import re
import secrets
import sys
import warnings
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "RatePolicy",
    "Settings",
    "SettingsError",
    "get_settings",
    "load_settings",
    "parse_size",
]

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_DEV_ANALYST_PASSWORD = "lufy_analyst"
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(text: str) -> int:
    """Bytes from `10737418240`, `10 GiB`, `500 MB` (binary units with `i`, decimal without)."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise ValueError(f"expected a size such as '10 GiB' or '500 MB', got {text!r}")
    size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(f"must be more than 0 bytes, got {text!r}")
    return size


class SettingsError(Exception):
    """A configuration value is missing or malformed; the message is one line naming it."""


class RatePolicy:
    """A parsed `N/period` rate limit."""

    __slots__ = ("limit", "window_seconds")

    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window_seconds = window_seconds

    @classmethod
    def parse(cls, text: str) -> RatePolicy:
        match = _RATE_RE.match(text)
        if match is None or int(match.group(1)) <= 0:
            raise ValueError(f"expected 'N/second|minute|hour|day', got {text!r}")
        return cls(int(match.group(1)), _PERIODS[match.group(2)])

    def __repr__(self) -> str:
        return f"RatePolicy({self.limit}/{self.window_seconds}s)"


def _default_admin_url() -> str:
    return f"postgresql://{getpass.getuser()}@127.0.0.1:5432/lufy"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    DATABASE_URL: str = "postgresql://lufy_app:lufy_app@127.0.0.1:5432/lufy"
    DATABASE_ADMIN_URL: str = Field(default_factory=_default_admin_url)
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    ANALYTICS_SAMPLE_RATE: float = 1.0
    S3_BUCKET_NAME: str | None = None
    S3_ENDPOINT_URL: str | None = None
    MEDIA_ROOT: Path = Path("./var/media")
    STRIPE_SECRET_KEY: str | None = None
    STRIPE_WEBHOOK_SECRET: str | None = None
    APP_URL: str = "http://127.0.0.1:8000"
    JWT_SECRET: str | None = None
    CLOUDFRONT_KEY_PAIR_ID: str | None = None
    CLOUDFRONT_PRIVATE_KEY: str | None = None
    CLOUDFRONT_DOMAIN: str | None = None
    RESEND_API_KEY: str | None = None
    EMAIL_FROM: str = "Lufy <no-reply@lufy.local>"
    EMAIL_BACKEND: Literal["resend", "file", "log"] | None = None
    EMAIL_FILE_DIR: Path = Path("./var/mail")
    LUFY_ENV: Literal["dev", "test", "production"] = "dev"
    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_USER: str = "100/minute"
    RATE_LIMIT_GUEST: str = "20/minute"
    TRUSTED_PROXIES: str = ""
    # None: the dev/test default ("lufy_analyst"), or a NOLOGIN role in production.
    LUFY_ANALYST_PASSWORD: str | None = None
    UPLOAD_MAX_IN_FLIGHT: int = 5
    UPLOAD_MAX_STORED_BYTES: str = "10 GiB"
    # During a key rotation: the previous JWT_SECRET(s), comma-separated, whose stream tokens
    # the local edge still accepts (CloudFront: the KeyValueStore still holds them).
    STREAM_PREVIOUS_SECRETS: str = ""
    STRIPE_PRICE_PREMIUM: str | None = None
    STRIPE_API_BASE: str | None = None
    PAYMENTS_GRACE_DAYS: int = Field(default=3, ge=0, le=60)
    ROYALTY_ARTIST_SHARE: Decimal = Field(default=Decimal("0.7"), gt=0, le=1)
    DATABASE_READ_URL: str | None = None
    READ_REPLICA_MAX_LAG: float = 10.0
    METRICS_PORT: int | None = None
    METRICS_TOKEN: str | None = None
    DATABASE_PREPARED_STATEMENTS: bool = True
    CORS_ALLOWED_ORIGINS: str = ""
    FRONTEND_URL: str | None = None
    # Master key wrapping each person's data key (privacy); unset: random per database (dev).
    DATA_KEY_SECRET: str | None = None
    # During a rotation of DATA_KEY_SECRET: the previous secret(s), comma-separated.
    DATA_KEY_PREVIOUS_SECRETS: str = ""
    # Days after which raw analytics events keep only their aggregates (privacy); unset: keep.
    ANALYTICS_RAW_RETENTION_DAYS: int | None = Field(default=None, ge=1, le=36_500)

    @field_validator("DATABASE_URL", "DATABASE_ADMIN_URL")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("ANALYTICS_SAMPLE_RATE")
    @classmethod
    def _rate_in_range(cls, value: float) -> float:
        if not 0.0 < value <= 1.0:
            raise ValueError("must be in (0, 1]")
        return value

    @field_validator("APP_URL", "S3_ENDPOINT_URL", "STRIPE_API_BASE")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/") if value else value

    @field_validator("FRONTEND_URL")
    @classmethod
    def _frontend_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/") if value else None

    @field_validator("CORS_ALLOWED_ORIGINS")
    @classmethod
    def _origins(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            parsed = urlsplit(part)
            if part != "*" and (
                parsed.scheme not in ("http", "https")
                or not parsed.netloc
                or parsed.path not in ("", "/")
                or parsed.query
            ):
                raise ValueError(f"{part!r} is not an origin (scheme://host[:port]) or *")
        return value

    @field_validator("CLOUDFRONT_PRIVATE_KEY")
    @classmethod
    def _pem_key(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(value.replace("\\n", "\n").encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError("must be an unencrypted PEM private key") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("CloudFront needs an RSA key")
        return value

    @field_validator("RATE_LIMIT_USER", "RATE_LIMIT_GUEST")
    @classmethod
    def _rate_policy(cls, value: str) -> str:
        RatePolicy.parse(value)
        return value

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ValueError(f"{part!r} is not a CIDR") from exc
        return value

    @field_validator("UPLOAD_MAX_IN_FLIGHT")
    @classmethod
    def _positive_count(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("UPLOAD_MAX_STORED_BYTES")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)
        return value

    @field_validator("DATABASE_READ_URL")
    @classmethod
    def _read_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value or None

    @field_validator("READ_REPLICA_MAX_LAG")
    @classmethod
    def _lag_positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a number of seconds greater than 0")
        return value

    @field_validator("METRICS_PORT")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 65535:
            raise ValueError("must be a TCP port (1-65535)")
        return value

    @field_validator("METRICS_TOKEN")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value and len(value) < 16:
            raise ValueError("must be at least 16 characters (a bearer token)")
        return value or None

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.LUFY_ENV == "production":
            if not self.JWT_SECRET or len(self.JWT_SECRET) < 32:
                raise ValueError("JWT_SECRET: production needs a secret of at least 32 characters")
            if self.effective_email_backend in ("file", "log"):
                raise ValueError(
                    f"EMAIL_BACKEND: production refuses the {self.effective_email_backend} backend"
                )
            app_password = urlsplit(self.DATABASE_URL).password
            if not app_password or app_password == "lufy_app":
                raise ValueError("DATABASE_URL: production refuses the default lufy_app password")
            if urlsplit(self.APP_URL).hostname in ("127.0.0.1", "localhost", "::1"):
                raise ValueError("APP_URL: production needs the public URL, not a loopback one")
            if self.LUFY_ANALYST_PASSWORD in ("", _DEV_ANALYST_PASSWORD):
                raise ValueError(
                    "LUFY_ANALYST_PASSWORD: production refuses the default (leave it unset "
                    "for a NOLOGIN role granted to people)"
                )
        if self.LUFY_ENV == "production" and (
            not self.DATA_KEY_SECRET or len(self.DATA_KEY_SECRET) < 32
        ):
            raise ValueError(
                "DATA_KEY_SECRET: production needs a master key of at least 32 characters"
            )
        if self.EMAIL_BACKEND == "resend" and not self.RESEND_API_KEY:
            raise ValueError("RESEND_API_KEY: required when EMAIL_BACKEND=resend")
        return self

    # --- derived values -------------------------------------------------------------------

    @property
    def effective_email_backend(self) -> str:
        if self.EMAIL_BACKEND:
            return self.EMAIL_BACKEND
        return "resend" if self.RESEND_API_KEY else "file"

    @property
    def rate_limit_user(self) -> RatePolicy:
        return RatePolicy.parse(self.RATE_LIMIT_USER)

    @property
    def rate_limit_guest(self) -> RatePolicy:
        return RatePolicy.parse(self.RATE_LIMIT_GUEST)

    @property
    def trusted_proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        parts = filter(None, (p.strip() for p in self.TRUSTED_PROXIES.split(",")))
        return [ipaddress.ip_network(p, strict=False) for p in parts]

    @property
    def analyst_password(self) -> str | None:
        """The password `lufy migrate` gives lufy_analyst; None: NOLOGIN (production, unset)."""
        if self.LUFY_ANALYST_PASSWORD is not None:
            return self.LUFY_ANALYST_PASSWORD
        return None if self.LUFY_ENV == "production" else _DEV_ANALYST_PASSWORD

    @property
    def upload_max_stored_bytes(self) -> int:
        return parse_size(self.UPLOAD_MAX_STORED_BYTES)

    @property
    def cors_allowed_origins(self) -> list[str]:
        parts = filter(None, (p.strip() for p in self.CORS_ALLOWED_ORIGINS.split(",")))
        return [p.rstrip("/") for p in parts]

    @property
    def frontend_url(self) -> str:
        """Base URL of the web app, for the links in e-mails (the API's own URL by default)."""
        return self.FRONTEND_URL or self.APP_URL

    @property
    def jwt_secret(self) -> str:
        """The signing key; in dev/test a random per-process key when none is configured."""
        if self.JWT_SECRET:
            return self.JWT_SECRET
        return _ephemeral_secret()


@lru_cache(maxsize=1)
def _ephemeral_secret() -> str:
    warnings.warn(
        "JWT_SECRET is not set: using a random per-process key (tokens die with the process)",
        stacklevel=2,
    )
    return secrets.token_urlsafe(48)


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise SettingsError with one line naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "configuration"
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"] and ":" in message:
            name, message = (s.strip() for s in message.split(":", 1))
        raise SettingsError(f"invalid configuration: {name}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process; on a bad value print one line and exit(1)."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(1) from None
