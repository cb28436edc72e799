"""What sql/0400's read barrier costs per call, as a ratio to sql/0003's, measured in one run.

    python bench/read_barrier.py [--holders 8] [--analysts 2] [--calls 2000] [--rounds 5]

The projector and every gap-free reader call `lufy.read_barrier()` on each poll. sql/0400 adds a
privilege check per backend that holds a transaction id (does its role may append?). This
creates a throw-away migrated database, keeps `--holders` app-role and `--analysts` analyst
transactions open with an xid (the backends the barrier must look at), and times
`SELECT lufy.read_barrier()` against the 0003 definition (installed as
`bench.read_barrier_0003()`), alternating rounds on one app-role connection. Prints the median
microseconds per call of each and the ratio new / old. It also checks that the new barrier
passes the analysts' transactions while the old one stops at them.
Admin connection: LUFY_BENCH_ADMIN_URL (default: the current OS user on 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import getpass
import os
import statistics
import time
import uuid
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from benchkit import drop_database

from lufy.migrate import migrate
from lufy.sqlfiles import data_dir

ADMIN_BASE = os.environ.get(
    "LUFY_BENCH_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)


def _url(dbname: str, role: str | None = None) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = f"{role}:{role}@{base.hostname}:{base.port or 5432}" if role else base.netloc
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


def _old_barrier_sql() -> str:
    text = data_dir("sql").joinpath("0003_database_local_read_barrier.sql").read_text("utf-8")
    body = text[text.index("CREATE FUNCTION") : text.index("COMMENT ON FUNCTION")]
    return "CREATE SCHEMA bench; GRANT USAGE ON SCHEMA bench TO lufy_app; " + body.replace(
        "lufy.read_barrier()", "bench.read_barrier_0003()"
    )


def _hold(url: str) -> tuple[psycopg.Connection[Any], int]:
    conn = psycopg.connect(url)
    row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
    assert row is not None
    return conn, int(row[0])


def _time(conn: psycopg.Connection[Any], query: str, calls: int) -> float:
    conn.execute(query, prepare=True)
    start = time.perf_counter()
    for _ in range(calls):
        conn.execute(query, prepare=True).fetchone()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--holders", type=int, default=8)
    parser.add_argument("--analysts", type=int, default=2)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    name = f"lufy_bench_{uuid.uuid4().hex[:8]}"
    migrate(_url(name), _url(name, "lufy_app"))
    try:
        with psycopg.connect(_url(name), autocommit=True) as admin:
            admin.execute(_old_barrier_sql().encode())
        with ExitStack() as stack, psycopg.connect(_url(name, "lufy_app")) as reader:
            reader.autocommit = True
            analysts = []
            for _ in range(args.analysts):
                conn, xid = _hold(_url(name, "lufy_analyst"))
                stack.callback(conn.close)
                analysts.append(xid)
            # Sanity, before any app transaction is open: only analysts hold xids. One
            # committed transaction after theirs moves the snapshot's xmax past them.
            reader.execute("SELECT pg_current_xact_id()")
            old_row = reader.execute("SELECT bench.read_barrier_0003()::text::bigint").fetchone()
            new_row = reader.execute("SELECT lufy.read_barrier()::text::bigint").fetchone()
            assert old_row is not None
            assert new_row is not None
            if analysts:
                assert old_row[0] <= min(analysts) < new_row[0], (old_row, new_row, analysts)
            for _ in range(args.holders):
                conn, _xid = _hold(_url(name, "lufy_app"))
                stack.callback(conn.close)
            old, new = [], []
            for _ in range(args.rounds):
                old.append(_time(reader, "SELECT bench.read_barrier_0003()", args.calls))
                new.append(_time(reader, "SELECT lufy.read_barrier()", args.calls))
        old_us, new_us = statistics.median(old), statistics.median(new)
        print(
            f"read_barrier with {args.holders} app and {args.analysts} analyst transactions "
            f"open: 0003 {old_us:.1f} us/call, 0400 {new_us:.1f} us/call, "
            f"ratio 0400/0003 = {new_us / old_us:.2f} (median of {args.rounds} rounds of "
            f"{args.calls} calls)"
        )
        if analysts:
            print(
                f"analysts' transactions: 0003 stops at {old_row[0]}, "
                f"0400 passes them ({new_row[0]} > {max(analysts)})"
            )
    finally:
        drop_database(ADMIN_BASE, name)


if __name__ == "__main__":
    main()
