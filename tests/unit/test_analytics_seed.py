"""The demo data generator: realistic shapes, deterministic ids (so a re-run adds nothing)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from lufy.analytics.ingest import ImportedEvent
from lufy.demo.seed import _plays

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def generate(seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    artist = uuid.UUID(int=1)
    tracks = {uuid.UUID(int=100 + i): (artist, 45_000) for i in range(12)}
    return _plays(tracks, listeners=300, weeks=2, per_day=300, now=NOW, rng=rng)


def test_the_same_seed_gives_the_same_events_with_the_same_ids() -> None:
    first, again = generate(), generate()
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
    assert len({e["event_id"] for e in first}) == len(first)


def test_every_generated_event_is_valid_import_input_in_the_past() -> None:
    import msgspec

    for e in generate():
        item = msgspec.convert(e, type=ImportedEvent)
        assert item.occurred_at <= NOW


def test_plays_peak_in_the_evening_have_a_long_tail_and_the_tail_is_skipped_more() -> None:
    events = generate()
    starts = [e for e in events if e["type"] == "playback.started"]
    hours = Counter(
        datetime.fromisoformat(e["occurred_at"]).astimezone(ZoneInfo("Europe/Stockholm")).hour
        for e in starts
        if e.get("country") == "SE"
    )
    assert sum(hours[h] for h in (19, 20, 21)) > 3 * sum(hours[h] for h in (2, 3, 4))
    per_track = Counter(e["track_id"] for e in starts)
    ranked = [n for _, n in per_track.most_common()]
    assert ranked[0] > 4 * ranked[-1]
    skips = Counter(e["track_id"] for e in events if e["type"] == "playback.skipped")
    top, tail = per_track.most_common()[0][0], per_track.most_common()[-1][0]
    assert skips[tail] / per_track[tail] > skips[top] / per_track[top]
    kinds = Counter(e["type"] for e in events)
    assert kinds["track.liked"] > kinds["track.unliked"] > 0
    assert kinds["artist.followed"] > 0
