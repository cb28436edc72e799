"""Blocks of time and weighted unions: the arithmetic behind exact distinct listeners."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pyroaring import BitMap

from lufy.analytics.listeners import blocks, weighted_count

LENGTH = {"q": 900, "h": 3600, "s": 21600, "d": 86400}


def covers(start: datetime, end: datetime) -> bool:
    """The blocks tile [start, end) exactly: contiguous, no gap, no overlap."""
    at = int(start.timestamp())
    for level, block_start in blocks(start, end):
        if block_start != at:
            return False
        at = block_start + LENGTH[level]
    return at == int(end.timestamp())


def test_a_utc_month_is_whole_days() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = datetime(2026, 12, 1, tzinfo=UTC)
    first = int(start.timestamp())
    assert blocks(start, end) == [("d", first + i * 86400) for i in range(30)]


def test_a_kolkata_day_is_quarters_hours_and_six_hours_and_no_more_than_it_needs() -> None:
    z = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 11, 5, tzinfo=z).astimezone(UTC)  # 18:30 UTC the day before
    end = datetime(2026, 11, 6, tzinfo=z).astimezone(UTC)
    got = blocks(start, end)
    assert covers(start, end)
    # 18:30-19:00, 19:00-24:00, 00:00-18:00, 18:00-18:30
    assert [level for level, _ in got] == ["q", "q"] + ["h"] * 5 + ["s"] * 3 + ["q", "q"]


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "America/New_York"])
def test_ninety_local_days_take_few_blocks_in_any_zone(zone: str) -> None:
    z = ZoneInfo(zone)
    start = datetime(2026, 8, 1, tzinfo=z).astimezone(UTC)
    end = datetime(2026, 10, 30, tzinfo=z).astimezone(UTC)  # across a DST change
    assert covers(start, end)
    assert len(blocks(start, end)) <= 89 + 2 * (3 + 5 + 3)


def test_a_range_off_the_quarter_hour_is_refused() -> None:
    start = datetime(2026, 11, 5, 10, 7, tzinfo=UTC)
    with pytest.raises(ValueError, match="15-minute"):
        blocks(start, start + timedelta(hours=2))


def test_a_listener_in_several_blocks_counts_once_with_the_largest_weight() -> None:
    members = [
        (1.0, BitMap([1, 2, 3])),
        (1.0, BitMap([3, 4])),
        (4.0, BitMap([2, 9])),
    ]
    # 2 and 9 at weight 4; 1, 3 and 4 at weight 1.
    assert weighted_count(members) == 2 * 4.0 + 3 * 1.0
    assert weighted_count([]) == 0
