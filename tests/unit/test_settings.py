"""Configuration: every bad value stops the process with one clear line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from lufy.settings import Settings, SettingsError, load_settings

VARIABLES = sorted(Settings.model_fields)
CONTRACT = [
    "DATABASE_URL",
    "DATABASE_ADMIN_URL",
    "REDIS_URL",
    "ANALYTICS_SAMPLE_RATE",
    "S3_BUCKET_NAME",
    "S3_ENDPOINT_URL",
    "MEDIA_ROOT",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "APP_URL",
    "JWT_SECRET",
    "CLOUDFRONT_KEY_PAIR_ID",
    "CLOUDFRONT_PRIVATE_KEY",
    "CLOUDFRONT_DOMAIN",
    "RESEND_API_KEY",
    "EMAIL_FROM",
    "EMAIL_BACKEND",
    "EMAIL_FILE_DIR",
    "LUFY_ENV",
    "RATE_LIMIT_ENABLED",
    "RATE_LIMIT_USER",
    "RATE_LIMIT_GUEST",
    "TRUSTED_PROXIES",
    "LUFY_ANALYST_PASSWORD",
    "UPLOAD_MAX_IN_FLIGHT",
    "UPLOAD_MAX_STORED_BYTES",
    "STREAM_PREVIOUS_SECRETS",
    "STRIPE_PRICE_PREMIUM",
    "STRIPE_API_BASE",
    "PAYMENTS_GRACE_DAYS",
    "ROYALTY_ARTIST_SHARE",
    "DATABASE_READ_URL",
    "READ_REPLICA_MAX_LAG",
    "METRICS_PORT",
    "METRICS_TOKEN",
    "DATABASE_PREPARED_STATEMENTS",
    "CORS_ALLOWED_ORIGINS",
    "FRONTEND_URL",
    "DATA_KEY_SECRET",
    "ANALYTICS_RAW_RETENTION_DAYS",
    "DATA_KEY_PREVIOUS_SECRETS",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets is seen: no CI or developer variables leak in."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_settings_are_exactly_the_contract_variables() -> None:
    assert sorted(CONTRACT) == VARIABLES


def test_the_defaults_are_those_of_a_local_run() -> None:
    s = load_settings()
    assert s.DATABASE_URL == "postgresql://lufy_app:lufy_app@127.0.0.1:5432/lufy"
    assert s.DATABASE_ADMIN_URL.startswith("postgresql://")
    assert s.DATABASE_ADMIN_URL.endswith("@127.0.0.1:5432/lufy")
    assert s.REDIS_URL == "redis://127.0.0.1:6379/0"
    assert s.ANALYTICS_SAMPLE_RATE == 1.0
    assert s.S3_BUCKET_NAME is None
    assert s.S3_ENDPOINT_URL is None
    assert str(s.MEDIA_ROOT) == "var/media"
    assert s.APP_URL == "http://127.0.0.1:8000"
    assert s.effective_email_backend == "file"
    assert str(s.EMAIL_FILE_DIR) == "var/mail"
    assert s.LUFY_ENV == "dev"
    assert s.RATE_LIMIT_ENABLED is True
    assert (s.rate_limit_user.limit, s.rate_limit_user.window_seconds) == (100, 60)
    assert (s.rate_limit_guest.limit, s.rate_limit_guest.window_seconds) == (20, 60)
    assert s.trusted_proxies == []


def test_values_from_the_environment_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_SAMPLE_RATE", "0.25")
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    monkeypatch.setenv("RATE_LIMIT_USER", "5/second")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32")
    monkeypatch.setenv("APP_URL", "https://lufy.example/")
    monkeypatch.setenv("RESEND_API_KEY", "re_123")
    s = load_settings()
    assert s.ANALYTICS_SAMPLE_RATE == 0.25
    assert s.RATE_LIMIT_ENABLED is False
    assert (s.rate_limit_user.limit, s.rate_limit_user.window_seconds) == (5, 1)
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "2001:db8::/32"]
    assert s.APP_URL == "https://lufy.example"
    assert s.effective_email_backend == "resend"


BAD_VALUES = [
    ({"DATABASE_URL": "mysql://app@db/lufy"}, "DATABASE_URL"),
    ({"DATABASE_ADMIN_URL": "lufy"}, "DATABASE_ADMIN_URL"),
    ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
    ({"ANALYTICS_SAMPLE_RATE": "0"}, "ANALYTICS_SAMPLE_RATE"),
    ({"ANALYTICS_SAMPLE_RATE": "1.5"}, "ANALYTICS_SAMPLE_RATE"),
    ({"ANALYTICS_SAMPLE_RATE": "-0.1"}, "ANALYTICS_SAMPLE_RATE"),
    ({"ANALYTICS_SAMPLE_RATE": "half"}, "ANALYTICS_SAMPLE_RATE"),
    ({"S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL"),
    ({"APP_URL": "lufy.example"}, "APP_URL"),
    ({"EMAIL_BACKEND": "smtp"}, "EMAIL_BACKEND"),
    ({"EMAIL_BACKEND": "resend"}, "RESEND_API_KEY"),
    ({"LUFY_ENV": "staging"}, "LUFY_ENV"),
    ({"RATE_LIMIT_ENABLED": "perhaps"}, "RATE_LIMIT_ENABLED"),
    ({"RATE_LIMIT_USER": "100"}, "RATE_LIMIT_USER"),
    ({"RATE_LIMIT_USER": "0/minute"}, "RATE_LIMIT_USER"),
    ({"RATE_LIMIT_GUEST": "20/fortnight"}, "RATE_LIMIT_GUEST"),
    ({"TRUSTED_PROXIES": "10.0.0.0/8,not-a-network"}, "TRUSTED_PROXIES"),
    ({"LUFY_ENV": "production"}, "JWT_SECRET"),
    ({"LUFY_ENV": "production", "JWT_SECRET": "short"}, "JWT_SECRET"),
    (
        {"LUFY_ENV": "production", "JWT_SECRET": "x" * 40, "EMAIL_BACKEND": "file"},
        "EMAIL_BACKEND",
    ),
    ({"CLOUDFRONT_PRIVATE_KEY": "not a pem"}, "CLOUDFRONT_PRIVATE_KEY"),
    (
        {"LUFY_ENV": "production", "JWT_SECRET": "x" * 40, "EMAIL_BACKEND": "log"},
        "EMAIL_BACKEND",
    ),
    (
        {"LUFY_ENV": "production", "JWT_SECRET": "x" * 40, "RESEND_API_KEY": "re_live"},
        "DATABASE_URL",
    ),
    (
        {
            "LUFY_ENV": "production",
            "JWT_SECRET": "x" * 40,
            "RESEND_API_KEY": "re_live",
            "DATABASE_URL": "postgresql://lufy_app:s3cret-long@db:5432/lufy",
        },
        "APP_URL",
    ),
    ({"DATABASE_READ_URL": "mysql://replica/lufy"}, "DATABASE_READ_URL"),
    ({"READ_REPLICA_MAX_LAG": "0"}, "READ_REPLICA_MAX_LAG"),
    ({"READ_REPLICA_MAX_LAG": "soon"}, "READ_REPLICA_MAX_LAG"),
    ({"METRICS_PORT": "70000"}, "METRICS_PORT"),
    ({"METRICS_PORT": "nine"}, "METRICS_PORT"),
    ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
    (
        {
            "LUFY_ENV": "production",
            "JWT_SECRET": "x" * 40,
            "RESEND_API_KEY": "re_live",
            "DATABASE_URL": "postgresql://lufy_app:s3cret-long@db:5432/lufy",
            "APP_URL": "https://lufy.example",
            "DATA_KEY_SECRET": "too short",
        },
        "DATA_KEY_SECRET",
    ),
]


@pytest.mark.parametrize(("env", "variable"), BAD_VALUES, ids=[v for _, v in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"invalid configuration: {variable}: ")
    assert len(message) > len(f"invalid configuration: {variable}: ")


def test_production_with_safe_values_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUFY_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "p" * 48)
    monkeypatch.setenv("RESEND_API_KEY", "re_live")
    monkeypatch.setenv("DATABASE_URL", "postgresql://lufy_app:s3cret-long@db:5432/lufy")
    monkeypatch.setenv("APP_URL", "https://lufy.example")
    monkeypatch.setenv("DATA_KEY_SECRET", "d" * 48)
    s = load_settings()
    assert s.jwt_secret == "p" * 48
    assert s.effective_email_backend == "resend"


def test_dev_without_a_jwt_secret_uses_one_random_key_per_process() -> None:
    # (It warns the first time; earlier tests in this process may have taken that warning.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = load_settings().jwt_secret
        assert len(key) >= 32
        assert load_settings().jwt_secret == key


def _run_lufy(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "lufy.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ANALYTICS_SAMPLE_RATE", "2"),
        ("DATABASE_URL", "sqlite:///lufy.db"),
        ("RATE_LIMIT_GUEST", "lots"),
    ],
)
def test_lufy_migrate_with_a_bad_value_exits_1_with_one_line_on_stderr(
    tmp_path: Path, variable: str, value: str
) -> None:
    done = _run_lufy(["migrate"], {variable: value}, tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]
    assert done.stdout == ""


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    done = _run_lufy(["migrate", "--no-such-flag"], {}, tmp_path)
    assert done.returncode == 2
