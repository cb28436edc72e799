"""LUFY_ANALYST_PASSWORD: the analyst role's password, refused default in production, NOLOGIN
when production leaves it unset."""

from __future__ import annotations

import pytest

from lufy.settings import SettingsError, load_settings

_PRODUCTION = {
    "LUFY_ENV": "production",
    "JWT_SECRET": "p" * 48,
    "RESEND_API_KEY": "re_live",
    "DATABASE_URL": "postgresql://lufy_app:s3cret-long@db:5432/lufy",
    "APP_URL": "https://lufy.example",
    "DATA_KEY_SECRET": "d" * 48,
}


@pytest.fixture(autouse=True)
def no_analyst_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUFY_ANALYST_PASSWORD", raising=False)


@pytest.mark.parametrize("password", ["lufy_analyst", ""])
def test_production_refuses_the_well_known_analyst_password(password: str) -> None:
    with pytest.raises(SettingsError, match=r"^invalid configuration: LUFY_ANALYST_PASSWORD: "):
        load_settings(**_PRODUCTION, LUFY_ANALYST_PASSWORD=password)


def test_production_without_an_analyst_password_makes_the_role_nologin() -> None:
    assert load_settings(**_PRODUCTION).analyst_password is None


def test_production_uses_the_configured_analyst_password() -> None:
    settings = load_settings(**_PRODUCTION, LUFY_ANALYST_PASSWORD="a long analyst secret")
    assert settings.analyst_password == "a long analyst secret"


def test_a_local_run_keeps_the_documented_analyst_password() -> None:
    assert load_settings(LUFY_ENV="dev").analyst_password == "lufy_analyst"
    assert load_settings(LUFY_ENV="test").analyst_password == "lufy_analyst"
