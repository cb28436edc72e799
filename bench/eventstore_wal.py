"""WAL written per single-event append: the event store's statement against the plain INSERT.

    python bench/eventstore_wal.py [--appends 2000] [--rounds 3]

Both sides write into a throw-away database like `bench/eventstore.py append` (same baseline
table, same events, `lufy_app`, one connection, rounds alternating). Each statement runs under
`EXPLAIN (ANALYZE, WAL, FORMAT JSON)`, so the figures are the statement's own WAL, not the
cluster's (which other sessions share): records, full-page images and bytes. The commit record
(34 bytes on both sides) is not included. Prints the store ÷ plain ratio of bytes per append.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from lufy.eventstore import NewEvent, statements

sys.path.insert(0, str(Path(__file__).parent))
# bench/eventstore.py: the same database, baseline table and events.
from eventstore import (
    _PLAIN_INSERT,
    CODEC,
    BenchDatabase,
    _encoder,
    _event,
    _metadata,
)


def _wal(conn: psycopg.Connection[Any], query: str | bytes, params: Any) -> tuple[int, int, int]:
    """(records, full-page images, bytes) of one statement, children included."""
    plan = conn.execute(b"EXPLAIN (ANALYZE, WAL, FORMAT JSON) " + _bytes(query), params)
    top = plan.fetchone()[0][0]["Plan"]
    return top["WAL Records"], top["WAL FPI"], top["WAL Bytes"]


def _bytes(query: str | bytes) -> bytes:
    return query if isinstance(query, bytes) else query.encode()


def _store(conn: psycopg.Connection[Any], stream: str, version: int, i: int) -> tuple[int, ...]:
    items = [NewEvent(event=_event(i), metadata=_metadata())]
    call = statements.AppendCall(
        "bench", stream, version, items, [CODEC.encode(e.event) for e in items]
    )
    stmt = statements.append_statement(version, single=True, in_tx=False)
    return _wal(conn, stmt, call.params(CODEC))


def _plain(conn: psycopg.Connection[Any], stream: str, version: int, i: int) -> tuple[int, ...]:
    params = (
        uuid.uuid4(),
        "bench",
        stream,
        version + 1,
        "bench.track_played",
        1,
        _encoder.encode(_event(i)).decode(),
        _encoder.encode(_metadata()).decode(),
        datetime.now(UTC),
    )
    return _wal(conn, _PLAIN_INSERT, params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sides = {"plain": _plain, "store": _store}
    per_append: dict[str, list[tuple[float, float, float]]] = {name: [] for name in sides}
    with BenchDatabase() as bench, psycopg.connect(bench.app_url, autocommit=True) as conn:
        for r in range(args.rounds):
            for name in list(sides)[r % 2 :] + list(sides)[: r % 2]:
                stream, total = uuid.uuid4().hex[:12], [0, 0, 0]
                for i in range(args.appends):
                    for k, v in enumerate(sides[name](conn, stream, i, i)):
                        total[k] += v
                n = args.appends
                per_append[name].append((total[0] / n, total[1] / n, total[2] / n))
    for name, rows in per_append.items():
        records, fpi, size = (statistics.median(x[k] for x in rows) for k in range(3))
        print(
            f"{name}: {size:,.0f} WAL bytes, {records:.2f} records, {fpi:.3f} full-page images"
            f" per append (medians of {args.rounds} rounds of {args.appends})"
        )
    ratio = statistics.median(
        s[2] / p[2] for s, p in zip(per_append["store"], per_append["plain"], strict=True)
    )
    print(f"store ÷ plain INSERT, WAL bytes per append: {ratio:.2f}")


if __name__ == "__main__":
    main()
