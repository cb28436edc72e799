"""`lufy projections status` lists every projection, also before any projector has run."""

from __future__ import annotations

from typing import Any

from lufy.projections.discovery import all_projections
from lufy.projections.operations import status


async def test_a_fresh_database_lists_every_projection_as_not_started(app_conn: Any) -> None:
    rows, _holder = await status(app_conn)
    by_name = {row.name: row for row in rows}
    assert set(by_name) == {p.name for p in all_projections()}
    assert {row.state for row in rows} == {"not started"}
    assert all(row.lag_events == 0 for row in rows)  # nothing in the log yet
