"""The buckets of a dashboard range and all that depends on them alone (dashboard.py).

A chart of 12 months by hour has 8,760 buckets; what the reads need of them (their UTC bounds,
the bitmap blocks of each bucket, which bucket a block belongs to, the labels shown) depends
only on the range, the zone and the granularity, not on whose numbers are asked or on the data.
`grid` computes it once and keeps the last few, up to 40,000 buckets in all (every artist
asking for the same range in the same zone shares it; a new day makes new ranges), so a
request's own Python work follows the rows that hold data, not the buckets of the chart.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from itertools import pairwise
from zoneinfo import ZoneInfo

from lufy.analytics import counters
from lufy.analytics import listeners as bitmaps
from lufy.analytics.periods import boundaries
from lufy.analytics.projections import bucket_of
from lufy.analytics.schemas import Point

__all__ = ["Grid", "grid"]

_QUARTER = timedelta(minutes=15)
# Blocks per level as the reads' parameters (`counters.level_arrays`).
_Levels = dict[str, str | int | None]


def _ceil15(moment: datetime) -> datetime:
    floor = bucket_of(moment)
    return floor if floor == moment else floor + _QUARTER


class Grid:
    """[start, end) cut at `bounds` (UTC instants): bucket i is [bounds[i], bounds[i + 1])."""

    def __init__(
        self, start: datetime, end: datetime, bounds: Sequence[datetime], tz: ZoneInfo
    ) -> None:
        self.start, self.end, self.tz = start, end, tz
        self.bounds = tuple(bounds)
        self.epochs = tuple(b.timestamp() for b in bounds)
        mid_from, mid_to = _ceil15(start), bucket_of(end)
        aligned = all(e % 900 == 0 for e in self.epochs[1:-1])
        if mid_from >= mid_to or not aligned:
            # Nothing aligned to read from the blocks: read every row one by one.
            mid_from = mid_to = end
        # The 15-minute-aligned middle (blocks) and the edges around it (rows one by one).
        self.mid_from, self.mid_to = mid_from, mid_to
        self.has_edges = mid_from != start or mid_to != end

    @property
    def size(self) -> int:
        return len(self.bounds) - 1

    @cached_property
    def bucket_blocks(self) -> tuple[tuple[bitmaps.Block, ...], ...]:
        """The blocks of each bucket inside the aligned middle (read from the rows without
        dimension only: an hour from half past is one block, `listeners.epoch_blocks`)."""
        lo, hi = self.mid_from.timestamp(), self.mid_to.timestamp()
        cut = [min(max(e, lo), hi) for e in self.epochs]
        return tuple(
            bitmaps.epoch_blocks(int(a), int(b), True) if a < b else () for a, b in pairwise(cut)
        )

    @cached_property
    def bucket_of(self) -> dict[bitmaps.Block, int]:
        """Which bucket each block of `bucket_blocks` belongs to."""
        return {b: i for i, blocks in enumerate(self.bucket_blocks) for b in blocks}

    @cached_property
    def wanted(self) -> tuple[list[bitmaps.Block], frozenset[bitmaps.Block], _Levels]:
        """Every block of the buckets: sorted, as a set, and as the reads' level parameters."""
        found = sorted(self.bucket_of)
        return found, frozenset(found), counters.level_arrays(found)

    @cached_property
    def middle(self) -> tuple[list[bitmaps.Block], frozenset[bitmaps.Block], _Levels]:
        """The blocks of the whole aligned middle (tracks, breakdowns), as `wanted`."""
        found = bitmaps.blocks(self.mid_from, self.mid_to) if self.mid_from < self.mid_to else []
        return found, frozenset(found), counters.level_arrays(found)

    @cached_property
    def grouping(self) -> dict[str, object]:
        """How the reads find each row's bucket (listeners.sql, counters.sql, dashboard.sql):
        from the uniform width of the buckets (`step`, from `first`: hours, UTC days; no bounds
        sent, so an hourly chart of 12 months costs no array of 8,761 bounds to parse) or, when
        widths differ (days of a zone with summer time, weeks, months), from their bounds as
        epochs. Only the first and last bounds may fall off the second (instants given by the
        caller); every block and every row read lies between them (the queries read [from, to)),
        so the floor of the first and the ceiling of the last bound number the rows the same."""
        first, last = math.floor(self.epochs[0]), math.ceil(self.epochs[-1])
        epochs = (first, *(int(e) for e in self.epochs[1:-1]), last)
        widths = {b - a for a, b in pairwise(epochs)}
        step = widths.pop() if len(widths) == 1 and epochs == self.epochs else None
        return {
            "by_bucket": True,
            "step": step,
            "first": first,
            "epochs": None if step else "{" + ",".join(map(str, epochs)) + "}",
            "edges": self.has_edges,
        }

    def groups_by(self, by: str) -> dict[str, object]:
        """`grouping` for groups of `by` ('buckets', else per owner and key)."""
        if by == "buckets":
            return self.grouping
        return {
            "by_bucket": False,
            "step": None,
            "first": None,
            "epochs": None,
            "edges": self.has_edges,
        }

    @cached_property
    def labels(self) -> tuple[str, ...]:
        """Each bucket's start in the zone, with its offset (`2026-11-01T01:00:00-05:00`)."""
        return tuple(b.astimezone(self.tz).isoformat() for b in self.bounds[:-1])

    @cached_property
    def zeros(self) -> tuple[Point, ...]:
        """A point of value 0 per bucket: a chart starts as a copy of them and replaces only the
        buckets with data (the points are shared between responses, never changed)."""
        return tuple(Point(label, 0) for label in self.labels)


# Grids kept, least recently used out, up to this many buckets in all (an hourly grid of 12
# months, 8,760 buckets, takes about 11 MB with its blocks and labels).
_BUDGET = 40_000
_grids: OrderedDict[tuple[datetime, datetime, ZoneInfo, str | None], Grid] = OrderedDict()


def grid(start: datetime, end: datetime, tz: ZoneInfo, granularity: str | None) -> Grid:
    """The grid of [start, end) in buckets of `granularity` in `tz` (None: one bucket)."""
    key = (start, end, tz, granularity)
    found = _grids.get(key)
    if found is not None:
        _grids.move_to_end(key)
        return found
    bounds = [start, end] if granularity is None else boundaries(start, end, tz, granularity)
    found = _grids[key] = Grid(start, end, bounds, tz)
    while sum(g.size for g in _grids.values()) > _BUDGET and len(_grids) > 1:
        _grids.popitem(last=False)
    return found
