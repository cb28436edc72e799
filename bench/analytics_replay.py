"""Projection-side figures of bench/analytics_scale.py (issue 17): rebuild and import.

Imported by analytics_scale.py, which builds the fixture; each figure is a ratio to a baseline
measured in the same run, on the same database:

- rebuild: `lufy projections rebuild analytics` (a subprocess, as an operator runs it: shadow
  tables, pages in log order, atomic swap) against ONE `INSERT … SELECT … GROUP BY` statement
  computing the same sessions and 15-minute rollups from the same events into tables shaped
  like the live ones (same columns, generated columns and indexes). Ratio = baseline seconds /
  rebuild seconds (target >= 0.5); the rebuild's peak RSS (target <= 500 MB).
- import: `lufy events import FILE` (a subprocess: validation, sampling, bot filter,
  idempotency, COPY) of `--import-events` NDJSON lines while a projector (`lufy projector`) is
  running, against a raw binary COPY of the very rows it appended into a table shaped like
  lufy.events. Ratio = COPY seconds / import seconds (target >= 0.3).

The rebuild figure alone on a fixture kept by `analytics_scale.py --keep` (migrated with this
checkout), optionally also with another checkout's code (`--also-src ../main/src`: its rebuild,
run with that src/ first on PYTHONPATH, each rebuild after a baseline statement of its own):

    .venv/bin/python bench/analytics_replay.py --database NAME [--also-src DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from lufy.analytics.events import PLAYBACK_TYPES
from lufy.analytics.projections import AnalyticsProjection

PLAYBACK = sorted(PLAYBACK_TYPES)
HANDLED = AnalyticsProjection.handles

BASELINE_TABLES = """
DROP TABLE IF EXISTS public.bench_sessions, public.bench_rollup;
CREATE TABLE public.bench_sessions (LIKE lufy.playback_sessions INCLUDING DEFAULTS
                                    INCLUDING GENERATED INCLUDING INDEXES);
CREATE TABLE public.bench_rollup (LIKE lufy.track_rollup_15m INCLUDING DEFAULTS
                                  INCLUDING INDEXES);
"""

# The same sessions (earliest start, max listened_ms, any completion/skip, weight, source,
# country, device, verified = imported: the fixture is imported) and the same 15-minute rollups,
# from the same events, in one statement.
BASELINE_SQL = """
WITH s AS (
    INSERT INTO public.bench_sessions (session_id, track_id, artist_id, listener_key,
        start_event_at, first_event_at, listened_ms, completed, skipped, source, country, device,
        weight, grant_id, signed_in, imported, grant_deadline, verified)
    SELECT e.data ->> 'session_id', min(e.data ->> 'track_id')::uuid,
           min(e.data ->> 'artist_id')::uuid, min(e.data ->> 'listener_key'),
           min(e.occurred_at) FILTER (WHERE e.type = 'playback.started'), min(e.occurred_at),
           max(coalesce((e.data ->> 'listened_ms')::bigint, 0)),
           bool_or(e.type = 'playback.completed'), bool_or(e.type = 'playback.skipped'),
           min(e.data ->> 'source'), min(e.data ->> 'country'), min(e.data ->> 'device'),
           max(coalesce(nullif((e.metadata ->> 'weight')::float8, 0), 1)),
           min(e.data ->> 'grant_id')::uuid, bool_or(e.data ->> 'listener_id' IS NOT NULL),
           bool_or(coalesce((e.data ->> 'imported')::boolean, false)),
           min(e.recorded_at - coalesce((e.data ->> 'listened_ms')::bigint, 0)
               * interval '1 millisecond'),
           bool_or(coalesce((e.data ->> 'imported')::boolean, false))
    FROM lufy.events e
    WHERE e.type = ANY(%(types)s)
    GROUP BY e.data ->> 'session_id'
    RETURNING track_id, artist_id, started_at, is_stream, listened_ms, completed, skipped, weight
)
INSERT INTO public.bench_rollup (track_id, bucket, artist_id, streams, listen_ms, starts,
                                 completions, skips)
SELECT s.track_id, date_bin('15 minutes', s.started_at, timestamptz '2000-01-01 00:00:00+00'),
       s.artist_id, sum(CASE WHEN s.is_stream THEN s.weight ELSE 0 END),
       sum(s.listened_ms * s.weight), sum(s.weight),
       sum(CASE WHEN s.completed THEN s.weight ELSE 0 END),
       sum(CASE WHEN s.skipped THEN s.weight ELSE 0 END)
FROM s GROUP BY 1, 2, 3
"""

CHECK_SQL = """
SELECT (SELECT count(*) FROM (SELECT session_id, started_at, listened_ms, is_stream
                              FROM public.bench_sessions
                              EXCEPT SELECT session_id, started_at, listened_ms, is_stream
                              FROM lufy.playback_sessions) d),
       (SELECT count(*) FROM (SELECT track_id, bucket, streams, starts FROM public.bench_rollup
                              EXCEPT SELECT track_id, bucket, streams, starts
                              FROM lufy.track_rollup_15m) d)
"""


def lufy_env(app_url: str, src: str | None = None) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": app_url, "LUFY_ENV": "dev"}
    if src:  # another checkout's code (its src/ first on the path)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run `lufy ARGS` to the end; (seconds, peak RSS in bytes, sampled every 0.1 s)."""
    lufy = str(Path(sys.executable).with_name("lufy"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([lufy, *args], env=env, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            for line in status.splitlines():
                if line.startswith(("VmHWM:", "VmRSS:")):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.1)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"lufy {' '.join(args)} exited with {proc.returncode}")
    return took, peak


def rebuild_figure(admin_url: str, app_url: str, src: str | None = None) -> float:
    """Print the baseline statement's time and the rebuild's; returns the ratio."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        events = conn.execute(
            "SELECT count(*) FROM lufy.events WHERE type = ANY(%s)", [sorted(HANDLED)]
        ).fetchone()[0]
        conn.execute(BASELINE_TABLES)
        conn.execute("CHECKPOINT")
        t0 = time.perf_counter()
        conn.execute(BASELINE_SQL, {"types": PLAYBACK})
        baseline = time.perf_counter() - t0
    print(f"baseline: one INSERT … SELECT … GROUP BY (sessions and rollups) {baseline:.1f}s")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    took, peak = run_measured(["projections", "rebuild", "analytics"], lufy_env(app_url, src))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.current_role', 'system', false)")
        sessions_off, rollups_off = conn.execute(CHECK_SQL).fetchone()
        conn.execute("DROP TABLE public.bench_sessions, public.bench_rollup")
    print(
        f"rebuild{f' (code of {src})' if src else ''}: `lufy projections rebuild analytics` "
        f"{events:,} events in {took:.1f}s "
        f"({events / took:,.0f} events/s), peak RSS {peak / 2**20:.0f} MB (target <= 500); "
        f"ratio to the statement {baseline / took:.3f} (target >= 0.5); rows differing from "
        f"the statement's: sessions {sessions_off}, rollups {rollups_off}",
        flush=True,
    )
    return baseline / took


EXPORT_SQL = """
COPY (
    SELECT json_build_object(
        'event_id', gen_random_uuid(), 'type', e.type, 'occurred_at', e.at,
        'session_id', s.sid, 'anonymous_id', 'imp-' || s.listener, 'track_id', s.track_id,
        'listened_ms', e.ms, 'source', s.source, 'country', 'SE', 'device', 'mobile')
    FROM (
        SELECT 'i-' || g AS sid, (g * 7919) %% %(listeners)s AS listener,
               (%(tracks)s::uuid[])[1 + g %% cardinality(%(tracks)s::uuid[])] AS track_id,
               (ARRAY['playlist', 'search', 'album', 'radio'])[1 + g %% 4] AS source,
               now() - interval '20 days' + g * interval '1 second' AS started
        FROM generate_series(1::bigint, %(sessions)s) AS g
    ) s
    CROSS JOIN LATERAL (VALUES ('playback.started', s.started, 0),
                               ('playback.progress', s.started + interval '10 seconds', 10000),
                               ('playback.completed', s.started + interval '45 seconds', 45000))
        AS e(type, at, ms)
) TO STDOUT
"""


def import_figure(
    admin_url: str,
    app_url: str,
    tracks: list[uuid.UUID],
    events: int,
    listeners: int,
    src: str | None = None,
) -> float:
    """`lufy events import` with a projector running, against raw COPY of the same rows; the
    ratio. With `src`, the import runs another checkout's code (its src/ first on the path;
    the projector runs this checkout's)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.ndjson"
        with psycopg.connect(admin_url, autocommit=True) as conn, path.open("wb") as out:
            params: dict[str, Any] = {
                "sessions": events // 3,
                "tracks": tracks,
                "listeners": listeners,
            }
            with conn.cursor().copy(EXPORT_SQL, params) as copy:
                for chunk in copy:
                    out.write(bytes(chunk))
            before = conn.execute("SELECT max(global_position) FROM lufy.events").fetchone()[0]
        env = lufy_env(app_url)
        projector = subprocess.Popen(
            [str(Path(sys.executable).with_name("lufy")), "projector"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            took, peak = run_measured(["events", "import", str(path)], lufy_env(app_url, src))
        finally:
            projector.terminate()
            projector.wait(60)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "DROP TABLE IF EXISTS public.bench_events; "
            "CREATE TABLE public.bench_events (LIKE lufy.events INCLUDING ALL)"
        )
        columns = (
            "event_id, transaction_id, stream_type, stream_id, stream_version, type, "
            "schema_version, data, metadata, occurred_at, recorded_at"
        )
        rows: list[bytes] = []
        with conn.cursor().copy(
            f"COPY (SELECT {columns} FROM lufy.events WHERE global_position > {before}) "
            "TO STDOUT (FORMAT binary)"
        ) as copy:
            rows.extend(bytes(chunk) for chunk in copy)
        imported = conn.execute(
            "SELECT count(*) FROM lufy.events WHERE global_position > %s", [before]
        ).fetchone()[0]
        t0 = time.perf_counter()
        with conn.cursor().copy(
            f"COPY public.bench_events ({columns}) FROM STDIN (FORMAT binary)"
        ) as copy:
            for chunk in rows:
                copy.write(chunk)
        raw = time.perf_counter() - t0
        conn.execute("DROP TABLE public.bench_events")
    print(
        f"import{f' (code of {src})' if src else ''}: `lufy events import` {imported:,} events "
        f"in {took:.1f}s "
        f"({imported / took:,.0f} events/s, peak RSS {peak / 2**20:.0f} MB) with the projector "
        f"running; raw COPY of the same rows {raw:.2f}s; ratio {raw / took:.3f} "
        "(target >= 0.3)",
        flush=True,
    )
    return raw / took


def main() -> None:
    from analytics_scale import db_url  # (it imports this module)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[-1])
    parser.add_argument("--database", required=True, help="a fixture kept by analytics_scale.py")
    parser.add_argument("--also-src", help="also rebuild with this src/ (another checkout)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    admin, app = db_url(args.database), db_url(args.database, "lufy_app")
    for n in range(args.rounds):
        for src in [None, args.also_src] if args.also_src else [None]:
            print(f"round {n + 1}: load {os.getloadavg()[0]:.2f}", flush=True)
            rebuild_figure(admin, app, src)
    print(f"load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
