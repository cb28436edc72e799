"""The grid of a dashboard range: each bucket's blocks tile it exactly, labels in the zone."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime

import pytest

from lufy.analytics.grid import grid
from lufy.analytics.periods import resolve_period, zone

LENGTH = {"q": 900, "o": 3600, "h": 3600, "s": 21600, "d": 86400}
SHIFT = {"o": 1800}  # hours from half past
NOW = datetime(2026, 11, 2, 10, 7, tzinfo=UTC)  # the week after New York's DST change


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "America/New_York", "Asia/Kathmandu"])
@pytest.mark.parametrize(("rng", "grain"), [("28d", "hour"), ("90d", "day"), ("12m", "week")])
def test_each_buckets_blocks_tile_it_and_labels_show_the_zone(
    tz: str, rng: str, grain: str
) -> None:
    period = resolve_period(rng, None, None, tz, NOW)
    cells = grid(period.start, period.end, period.tz, grain)
    assert cells is grid(period.start, period.end, period.tz, grain)  # shared
    assert len(cells.labels) == cells.size == len(cells.bucket_blocks)
    for i, blocks in enumerate(cells.bucket_blocks):
        lo = max(cells.epochs[i], cells.mid_from.timestamp())
        hi = min(cells.epochs[i + 1], cells.mid_to.timestamp())
        at = lo
        for level, epoch in blocks:  # contiguous, in order, from lo to hi
            assert epoch == at
            assert (epoch - SHIFT.get(level, 0)) % LENGTH[level] == 0
            assert cells.bucket_of[(level, epoch)] == i
            at += LENGTH[level]
        assert at == (hi if lo < hi else lo)
        assert cells.labels[i] == cells.bounds[i].astimezone(zone(tz)).isoformat()
    wanted, as_set, levels = cells.wanted
    assert as_set == set(cells.bucket_of)
    assert wanted == sorted(as_set)
    assert levels["day_lo"] <= min(e for _, e in wanted)
    assert levels["day_lo"] % 86400 == 0
    assert levels["day_hi"] <= max(e for _, e in wanted) < levels["day_hi"] + 86400


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "America/New_York", "Asia/Kathmandu"])
@pytest.mark.parametrize(("rng", "grain"), [("28d", "hour"), ("90d", "day"), ("12m", "month")])
def test_the_reads_number_each_block_with_its_bucket(tz: str, rng: str, grain: str) -> None:
    """`grouping` (how listeners.sql numbers a block's bucket) agrees with `bucket_of`: by the
    uniform width when every bucket has it, else by the bounds."""
    period = resolve_period(rng, None, None, tz, NOW)
    cells = grid(period.start, period.end, period.tz, grain)
    how = cells.grouping
    widths = {b - a for a, b in zip(cells.epochs, cells.epochs[1:], strict=False)}
    assert (how["step"] is not None) == (len(widths) == 1)
    if grain == "month" or (grain == "day" and tz == "America/New_York"):
        assert how["step"] is None  # months differ; a DST day has 23 or 25 hours
    for (_, epoch), i in cells.bucket_of.items():
        if how["step"] is not None:
            assert (epoch - how["first"]) // how["step"] == i
        else:
            bounds = [int(e) for e in str(how["epochs"]).strip("{}").split(",")]
            assert bisect.bisect_right(bounds, epoch) - 1 == i
    assert cells.groups_by("tracks")["by_bucket"] is False


def test_instants_off_the_second_number_blocks_between_floor_and_ceiling() -> None:
    start = datetime(2026, 11, 1, 0, 0, 0, 500000, tzinfo=UTC)
    end = datetime(2026, 11, 1, 3, 0, 0, 250000, tzinfo=UTC)
    cells = grid(start, end, zone("UTC"), None)
    how = cells.grouping
    assert how["step"] is None
    assert how["epochs"] == f"{{{int(start.timestamp())},{int(end.timestamp()) + 1}}}"
    assert cells.has_edges
    assert how["edges"] is True


def test_a_chart_starts_from_shared_zero_points_labelled_in_the_zone() -> None:
    period = resolve_period("28d", None, None, "Asia/Kolkata", NOW)
    cells = grid(period.start, period.end, period.tz, "hour")
    assert [p.t for p in cells.zeros] == list(cells.labels)
    assert {p.value for p in cells.zeros} == {0}
    assert cells.zeros is cells.zeros


def test_an_hour_of_a_half_hour_zone_is_one_block_but_the_one_across_midnight_utc() -> None:
    """Hourly charts in Kolkata read hours from half past (level 'o', one row each), except
    05:00-06:00 local (23:30-00:30 UTC: no block crosses a UTC day), which is four quarters;
    the 'o' blocks go to the reads as one range (there is no 'o' row at 23:30 to exclude)."""
    period = resolve_period("28d", None, None, "Asia/Kolkata", NOW)
    cells = grid(period.start, period.end, period.tz, "hour")
    shapes = {tuple(level for level, _ in blocks) for blocks in cells.bucket_blocks}
    assert shapes == {("o",), ("q", "q", "q", "q")}
    across = [b for b in cells.bucket_blocks if len(b) == 4]
    assert len(across) == 28
    assert all(b[0][1] % 86400 == 84600 for b in across)
    levels = cells.wanted[2]
    assert levels["o"] == "{}"
    assert levels["o_lo"] == min(e for level, e in cells.wanted[0] if level == "o")
    # Breakdowns (rows with a dimension, which have no 'o' rows) never get one.
    assert all(level != "o" for level, _ in cells.middle[0])
