"""The grid of a dashboard range: each bucket's blocks tile it exactly, labels in the zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lufy.analytics.grid import grid
from lufy.analytics.periods import resolve_period, zone

LENGTH = {"q": 900, "h": 3600, "s": 21600, "d": 86400}
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
            assert epoch % LENGTH[level] == 0
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
