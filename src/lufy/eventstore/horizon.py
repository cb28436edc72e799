"""Transaction ids in the log must stay below the cluster's: a guard for restores.

`transaction_id` is the writer's xid8. A physical copy of the cluster (a replica, a base
backup, PITR) keeps the xid counter, but a dump restored into a new cluster starts counting
again from a low xid while the restored rows keep their high ones: every new event would then
sort *before* the readers' checkpoints and never be delivered. `lufy migrate` refuses to finish
on such a database and says how to advance the cluster's xid epoch.
"""

from __future__ import annotations

from typing import Any

import psycopg

from lufy.sqlfiles import load_queries

__all__ = ["xid_horizon_problem"]

_Q = load_queries("lufy.eventstore", "horizon.sql")


def xid_horizon_problem(conn: psycopg.Connection[Any]) -> str | None:
    """A one-line explanation when the log holds transaction ids at or above the cluster's."""
    row = conn.execute(_Q.xid_horizon).fetchone()
    if row is None or row[0] is None:
        return None
    highest, current = int(row[0]), int(row[1])
    if highest < current:
        return None
    epoch = (highest >> 32) + 1
    return (
        f"lufy.events holds transaction ids up to {highest} but this cluster is at {current} "
        f"(restored from a dump?): stop PostgreSQL, run `pg_resetwal -e {epoch} $PGDATA`, "
        "start it and migrate again (docs/architecture.md, 'Restores')"
    )
