"""Shared pieces of the projector and the rebuild tool: schemas, lock namespaces, transactions."""

from __future__ import annotations

import os
import socket
from typing import Any

from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint, RecordedEvent
from lufy.eventstore.postgres import EventStore
from lufy.sqlfiles import load_queries

__all__ = [
    "LIVE_PATH",
    "NS_LIVE",
    "NS_MAINTENANCE",
    "NS_REBUILD",
    "SHADOW_PATH",
    "SHADOW_SCHEMA",
    "Q",
    "enter_system_transaction",
    "process_label",
]

Q = load_queries("lufy.projections")

LIVE_SCHEMA = "lufy"
SHADOW_SCHEMA = "lufy_shadow"
LIVE_PATH = "lufy, public"
# The shadow schema first: a projection's unqualified tables resolve to their shadow copies,
# anything else it names (lufy.events) to the live schema.
SHADOW_PATH = "lufy_shadow, lufy, public"

# Advisory lock namespaces (first key of the two-int form; the second is hashtext(name)).
NS_LIVE = 0x4C50  # leadership of a projection's live processing
NS_REBUILD = 0x4C52  # one rebuild of a projection at a time
NS_MAINTENANCE = 0x4C4D  # the sweeper and the periodic scheduler


def process_label(role: str) -> str:
    """Shown as the owner in `lufy projections status` (the backend's application_name)."""
    return f"lufy-{role} {socket.gethostname()}:{os.getpid()}"[:63]


async def enter_system_transaction(conn: AsyncConnection[Any], search_path: str) -> None:
    """Inside an open transaction: act as `system` for RLS, resolve tables in `search_path`."""
    await conn.execute(Q.txn_context, {"search_path": search_path}, prepare=True)


def decode_rows(store: EventStore, rows: list[tuple[Any, ...]]) -> list[RecordedEvent]:
    # Same row shape as EventStore.read_all; reuse its decoder rather than a second copy.
    return [store._recorded(r) for r in rows if r[0] is not None]


def checkpoint_of(row: tuple[Any, ...] | None) -> Checkpoint:
    return Checkpoint(int(row[0]), int(row[1])) if row else Checkpoint.START
