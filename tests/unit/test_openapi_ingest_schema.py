"""The ingestion route's documented body is generated from the Struct it decodes, so the
document cannot drift from what the route enforces (it once said maxLength 200 where the code
enforced 128 and 64, and it did not know grant_id)."""

from __future__ import annotations

from typing import Any

import msgspec

from lufy.analytics.events import ANALYTICS_TYPES
from lufy.analytics.ingest import MAX_BATCH_EVENTS, IncomingEvent
from lufy.web.openapi import _ingest_body


def _event_schema() -> dict[str, Any]:
    batch = _ingest_body().content["application/json"].schema
    assert batch is not None
    document: dict[str, Any] = batch.to_schema()  # type: ignore[union-attr]
    assert document["properties"]["events"]["maxItems"] == MAX_BATCH_EVENTS
    return document["properties"]["events"]["items"]  # type: ignore[no-any-return]


def _string_limits(schema: dict[str, Any]) -> dict[str, Any]:
    node = next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "string")
    return {k: v for k, v in node.items() if k in ("maxLength", "minLength")}


def test_the_documented_ingestion_event_has_every_field_of_the_struct_and_its_limits() -> None:
    documented = _event_schema()
    _, components = msgspec.json.schema_components([IncomingEvent])
    enforced = components["IncomingEvent"]
    assert set(documented["properties"]) == set(enforced["properties"])
    assert set(documented["required"]) == set(enforced["required"])
    for name in ("session_id", "anonymous_id", "source"):
        assert _string_limits(documented["properties"][name]) == _string_limits(
            enforced["properties"][name]
        )
    assert _string_limits(documented["properties"]["session_id"]) == {
        "maxLength": 128,
        "minLength": 1,
    }
    assert _string_limits(documented["properties"]["source"]) == {"maxLength": 64}
    assert "grant_id" in documented["properties"]


def test_the_documented_ingestion_types_are_the_accepted_ones_and_instants_are_date_times() -> None:
    documented = _event_schema()
    assert set(documented["properties"]["type"]["enum"]) == set(ANALYTICS_TYPES)
    assert documented["properties"]["occurred_at"]["format"] == "date-time"
