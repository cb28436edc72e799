"""Query values that used to crash the dashboard are clear 400s (BadQueryError)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lufy.analytics.periods import resolve_period, zone
from lufy.errors import LufyError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "name", ["Europe", "posix/Europe/Paris", "localtime", "", "x" * 5000, "../../etc/passwd"]
)
def test_a_tz_that_is_not_an_iana_zone_name_is_refused(name: str) -> None:
    if name == "":
        assert zone(name).key == "UTC"  # empty means the default
        return
    with pytest.raises(LufyError) as caught:
        zone(name)
    assert caught.value.status == 400
    assert caught.value.detail.startswith("tz: ")


@pytest.mark.parametrize(
    ("from_", "to"),
    [
        ("0001-01-01", "0001-01-02"),
        ("9999-12-30", "9999-12-31"),
        ("9999-12-31T23:00:00-05:00", "9999-12-31T23:30:00-05:00"),
        ("0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00+05:00"),
    ],
)
def test_dates_far_from_now_are_a_bad_query_not_a_crash(from_: str, to: str) -> None:
    with pytest.raises(LufyError) as caught:
        resolve_period(None, from_, to, "Asia/Kolkata", NOW)
    assert caught.value.status == 400
    assert caught.value.detail.startswith("from: ")
