"""A hot standby of a throwaway cluster (`pg_basebackup -R`), and where dashboard statements ran.

Used by tests/integration/test_read_replica.py and bench/replica_reads.py.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from lufy.sqlfiles import load_queries
from tests.faults.harness import PG_BIN, PgCluster, _as_postgres, free_port

__all__ = ["Standby", "dashboard_statement_calls", "enable_statement_stats"]


def enable_statement_stats(primary: PgCluster) -> None:
    """Before the primary starts: load pg_stat_statements (the standby inherits the setting)."""
    with (primary.data / "postgresql.conf").open("a") as conf:
        conf.write("shared_preload_libraries = 'pg_stat_statements'\n")


class Standby:
    """A hot standby of `primary`, made with `pg_basebackup -R`, on a port of its own."""

    def __init__(self, primary: PgCluster) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lufy-standby-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.root, pg.pw_uid, pg.pw_gid)
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(self.data),
                    "-R",
                    "-X",
                    "stream",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            # The copy carries the primary's port and socket directory: later lines win.
            conf.write(
                f"port = {self.port}\nunix_socket_directories = '{self.root}'\n"
                "hot_standby = on\nhot_standby_feedback = on\n"
            )
        subprocess.run(
            _as_postgres(
                [
                    *(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)),
                    *("start", "-w", "-t", "60"),
                ]
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                _as_postgres(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "stop", "-m", "immediate"]
                ),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _fingerprints() -> list[str]:
    """The longest placeholder-free line of each dashboard query: how it shows in
    pg_stat_activity.query."""
    queries = load_queries("lufy.analytics", "dashboard.sql")
    prints = []
    for name in queries.names():
        lines = [
            line.strip()
            for line in getattr(queries, name).splitlines()
            # pg_stat_statements shows constants as $n: lines without any.
            if not any(c in line for c in "%'$0123456789") and not line.strip().startswith("--")
        ]
        longest = max(lines, key=len, default="")
        if len(longest) >= 20:
            prints.append(longest)
    assert prints, "no dashboard query to recognise"
    return prints


async def dashboard_statement_calls(url: str, dbname: str) -> int:
    """How many dashboard statements lufy_app ran on this server (pg_stat_statements counts
    per server: a standby counts what ran on it). pg_stat_activity only keeps a backend's last
    statement, which for a dashboard read is the COMMIT that ends it."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT s.query, s.calls FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid "
            "WHERE d.datname = %s AND r.rolname = 'lufy_app'",
            [dbname],
        )
        rows = [(str(q), int(n)) for q, n in await cur.fetchall()]
    prints = _fingerprints()
    return sum(n for text, n in rows if any(p in text for p in prints))
