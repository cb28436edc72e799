"""UPLOAD_MAX_IN_FLIGHT and UPLOAD_MAX_STORED_BYTES: defaults, units, and bad values named."""

from __future__ import annotations

import pytest

from lufy.settings import SettingsError, load_settings, parse_size


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UPLOAD_MAX_IN_FLIGHT", "UPLOAD_MAX_STORED_BYTES", "LUFY_ENV"):
        monkeypatch.delenv(name, raising=False)


def test_the_defaults_are_five_uploads_in_flight_and_ten_gibibytes() -> None:
    s = load_settings()
    assert s.UPLOAD_MAX_IN_FLIGHT == 5
    assert s.upload_max_stored_bytes == 10 * 2**30


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10 GiB", 10 * 2**30),
        ("500 MB", 500_000_000),
        ("1.5 gib", int(1.5 * 2**30)),
        ("2048", 2048),
        ("64KiB", 65536),
    ],
)
def test_sizes_are_read_with_binary_and_decimal_units(text: str, size: int) -> None:
    assert parse_size(text) == size
    assert load_settings(UPLOAD_MAX_STORED_BYTES=text).upload_max_stored_bytes == size


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"UPLOAD_MAX_IN_FLIGHT": "0"}, "UPLOAD_MAX_IN_FLIGHT"),
        ({"UPLOAD_MAX_IN_FLIGHT": "many"}, "UPLOAD_MAX_IN_FLIGHT"),
        ({"UPLOAD_MAX_STORED_BYTES": "ten gigs"}, "UPLOAD_MAX_STORED_BYTES"),
        ({"UPLOAD_MAX_STORED_BYTES": "0 GiB"}, "UPLOAD_MAX_STORED_BYTES"),
        ({"UPLOAD_MAX_STORED_BYTES": "-5 GiB"}, "UPLOAD_MAX_STORED_BYTES"),
    ],
)
def test_a_bad_upload_limit_stops_the_process_naming_the_variable(
    overrides: dict[str, str], name: str
) -> None:
    with pytest.raises(SettingsError, match=f"^invalid configuration: {name}: "):
        load_settings(**overrides)
