"""`lufy events export`: the log without personal data, for warehouses, resumable without loss.

One REPEATABLE READ, read-only transaction reads `analytics.safe_position()` and then every row
of `analytics.events` with `since < transaction_id < safe position`, in commit order
(transaction_id, global_position). Every transaction below the safe position has finished, so
nothing can later appear below it: the next run, given the `transaction_id` of the last event
this one wrote, neither skips nor repeats an event. Reads go to the read replica when one is
configured and fresh (`DATABASE_READ_URL`), else to the primary.

With `--out`, the file is written next to its destination and renamed into place at the end:
an interrupted export leaves no partial file to resume from.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import psycopg
from psycopg import IsolationLevel

from lufy.readdb import read_url_for_export
from lufy.settings import Settings
from lufy.sqlfiles import load_queries

__all__ = ["ExportResult", "export_events"]

Format = Literal["ndjson", "parquet"]
_BATCH = 5000
_COLUMNS = (
    "transaction_id",
    "global_position",
    "event_id",
    "type",
    "stream_type",
    "occurred_at",
    "recorded_at",
    "data",
    "weight",
)
_Q = load_queries("lufy.analytics", "export.sql")


@dataclass(frozen=True)
class ExportResult:
    events: int
    safe_position: int
    # What to pass as `--since` next time: the last event's transaction id, or `since` again.
    resume_from: int


def export_events(
    settings: Settings, *, since: int, fmt: Format, out: Path | None, url: str | None = None
) -> ExportResult:
    """Write the events after `since` (a transaction id) up to the safe position."""
    conninfo = url or read_url_for_export(settings)
    with psycopg.connect(conninfo) as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            row = conn.execute(_Q.safe_position).fetchone()
            assert row is not None
            upto = int(row[0])
            with conn.cursor(name="lufy_events_export") as cur:
                cur.itersize = _BATCH
                cur.execute(_Q.events, {"since": str(since), "upto": str(upto)})
                rows = _rows(cur)
                if fmt == "parquet":
                    if out is None:
                        raise ValueError("parquet needs --out PATH")
                    count, last = _write_atomically(out, lambda f: _parquet(rows, f), binary=True)
                elif out is None:
                    count, last = _ndjson(rows, sys.stdout)
                    sys.stdout.flush()
                else:
                    count, last = _write_atomically(out, lambda f: _ndjson(rows, f), binary=False)
    return ExportResult(events=count, safe_position=upto, resume_from=last if count else since)


def _rows(cur: psycopg.Cursor[Any]) -> Iterator[dict[str, Any]]:
    while batch := cur.fetchmany(_BATCH):
        for values in batch:
            record = dict(zip(_COLUMNS, values, strict=True))
            record["data"] = json.loads(record["data"]) if record["data"] is not None else None
            yield record


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")


def _ndjson(rows: Iterator[dict[str, Any]], sink: IO[Any]) -> tuple[int, int]:
    count, last = 0, 0
    for record in rows:
        sink.write(json.dumps(record, default=_json_default, separators=(",", ":")) + "\n")
        count, last = count + 1, int(record["transaction_id"])
    return count, last


def _parquet(rows: Iterator[dict[str, Any]], sink: IO[Any]) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("transaction_id", pa.int64()),
            ("global_position", pa.int64()),
            ("event_id", pa.string()),
            ("type", pa.string()),
            ("stream_type", pa.string()),
            ("occurred_at", pa.timestamp("us", tz="UTC")),
            ("recorded_at", pa.timestamp("us", tz="UTC")),
            # The payload as JSON text: its shape differs per event type.
            ("data", pa.string()),
            ("weight", pa.float64()),
        ]
    )
    count, last = 0, 0
    with pq.ParquetWriter(sink, schema) as writer:
        batch: list[dict[str, Any]] = []
        for record in rows:
            record["data"] = None if record["data"] is None else json.dumps(record["data"])
            batch.append(record)
            count, last = count + 1, int(record["transaction_id"])
            if len(batch) >= _BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        # An empty export is still a valid file with the schema.
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return count, last


def _write_atomically(out: Path, write: Any, *, binary: bool) -> tuple[int, int]:
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as sink:
            result: tuple[int, int] = write(sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return result
