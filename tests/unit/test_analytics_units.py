"""Pure pieces of analytics: listener sampling, bots, device classes, periods and buckets."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from lufy.analytics.classify import country_code, device_class, is_bot, is_sampled_in
from lufy.analytics.periods import BadQueryError, boundaries, resolve_period
from lufy.analytics.projections import bucket_of


def test_sampling_is_a_fixed_decision_per_listener_close_to_the_rate() -> None:
    kept = [is_sampled_in(f"a:listener-{i}", 0.25) for i in range(20_000)]
    assert kept == [is_sampled_in(f"a:listener-{i}", 0.25) for i in range(20_000)]
    assert 0.23 < sum(kept) / len(kept) < 0.27
    # raising the rate only adds listeners
    assert all(is_sampled_in(f"a:listener-{i}", 0.5) for i, k in enumerate(kept) if k)
    assert all(is_sampled_in(f"a:listener-{i}", 1.0) for i in range(100))


@pytest.mark.parametrize(
    ("user_agent", "bot", "device"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True, None),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True, None),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0 Safari/537.36", True, "desktop"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36", False, "desktop"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", False, "mobile"),
        ("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X)", False, "tablet"),
        (
            "Mozilla/5.0 (Linux; Android 13; Pixel 7) Chrome/120 Mobile Safari/537.36",
            False,
            "mobile",
        ),
        ("Mozilla/5.0 (Linux; Android 13; SM-X700) Chrome/120 Safari/537.36", False, "tablet"),
        ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36", False, "tv"),
        ("curl/8.4.0", False, None),
        (None, False, None),
    ],
)
def test_bots_and_device_classes_come_from_the_user_agent(user_agent, bot, device) -> None:
    assert is_bot(user_agent) is bot
    if not bot:
        assert device_class(user_agent) == device


def test_country_codes_are_two_upper_case_letters_or_nothing() -> None:
    assert country_code("se") == "SE"
    assert country_code("XX1") is None
    assert country_code("") is None


def test_buckets_are_15_minutes_of_utc() -> None:
    moment = datetime(2026, 3, 29, 1, 44, 59, 999, tzinfo=ZoneInfo("Europe/Berlin"))
    assert bucket_of(moment) == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


NOW = datetime(2026, 11, 25, 3, 20, tzinfo=UTC)


def test_seven_days_end_today_in_the_zone_and_the_previous_period_precedes_it() -> None:
    p = resolve_period("7d", None, None, "America/Los_Angeles", NOW)  # 19:20 on the 24th there
    assert p.start == datetime(2026, 11, 18, 8, tzinfo=UTC)
    assert p.end == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert (p.previous_start, p.previous_end) == (datetime(2026, 11, 11, 8, tzinfo=UTC), p.start)


def test_twelve_months_and_24_hours() -> None:
    year = resolve_period("12m", None, None, "UTC", NOW)
    assert (year.start, year.end) == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert year.previous_start == datetime(2024, 12, 1, tzinfo=UTC)
    day = resolve_period("24h", None, None, "Asia/Kolkata", NOW)  # 08:50 in Kolkata
    assert day.end == datetime(2026, 11, 25, 3, 30, tzinfo=UTC)
    assert (day.end - day.start).total_seconds() == 24 * 3600


def test_instant_ranges_compare_with_the_same_duration_before() -> None:
    p = resolve_period(None, "2026-11-20T10:07:00Z", "2026-11-21T10:07:00+00:00", None, NOW)
    assert p.previous_start == datetime(2026, 11, 19, 10, 7, tzinfo=UTC)
    assert p.previous_end == p.start


def test_a_dst_day_in_new_york_has_25_hour_buckets() -> None:
    p = resolve_period(None, "2026-11-01", "2026-11-01", "America/New_York", NOW)
    assert (p.end - p.start).total_seconds() == 25 * 3600
    assert len(boundaries(p.start, p.end, p.tz, "hour")) == 26


def test_too_many_points_are_refused() -> None:
    p = resolve_period(None, "2025-11-01T00:00:00Z", "2026-11-01T00:00:00Z", None, NOW)
    with pytest.raises(BadQueryError, match="granularity"):
        boundaries(p.start, p.end, p.tz, "minute")
