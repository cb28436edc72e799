"""Payments settings: defaults of a local run, and one clear line for a bad value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lufy.settings import SettingsError, load_settings

NAMES = ("STRIPE_PRICE_PREMIUM", "STRIPE_API_BASE", "PAYMENTS_GRACE_DAYS", "ROYALTY_ARTIST_SHARE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_payments_default_to_three_grace_days_and_a_seventy_percent_artist_share() -> None:
    s = load_settings()
    assert s.PAYMENTS_GRACE_DAYS == 3
    assert (s.ROYALTY_ARTIST_SHARE, type(s.ROYALTY_ARTIST_SHARE)) == (Decimal("0.7"), Decimal)
    assert s.STRIPE_API_BASE is None
    assert s.STRIPE_PRICE_PREMIUM is None


def test_the_artist_share_is_read_as_an_exact_decimal() -> None:
    share = load_settings(ROYALTY_ARTIST_SHARE="0.65").ROYALTY_ARTIST_SHARE
    assert str(share) == "0.65"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ROYALTY_ARTIST_SHARE", "0"),
        ("ROYALTY_ARTIST_SHARE", "1.5"),
        ("ROYALTY_ARTIST_SHARE", "most"),
        ("PAYMENTS_GRACE_DAYS", "-1"),
        ("PAYMENTS_GRACE_DAYS", "three"),
        ("STRIPE_API_BASE", "localhost:12111"),
    ],
)
def test_a_bad_payments_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"invalid configuration: {variable}: ")
