"""`lufy.identity.event_metadata`: the one place event metadata is put together.

Each case compares the bytes the log gets with those of the construction the caller used before
`event_metadata` existed, inside and outside a request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import msgspec
import pytest

from lufy.eventstore import EventMetadata
from lufy.identity import correlation_id_var, event_metadata, request_id_var

ACTOR = uuid.UUID("3f0c0b1e-8d1a-4a53-9c61-2a1f0e7b9d42")


@pytest.fixture(params=["in a request", "outside a request"])
def ids(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    if request.param == "outside a request":
        yield None, None
        return
    cid_token = correlation_id_var.set("caller-corr-1")
    rid_token = request_id_var.set("4b1d0c3e9f")
    try:
        yield "caller-corr-1", "4b1d0c3e9f"
    finally:
        request_id_var.reset(rid_token)
        correlation_id_var.reset(cid_token)


def encoded(metadata: EventMetadata) -> bytes:
    return msgspec.json.encode(metadata)


def test_a_service_action_by_an_actor(ids: tuple[str | None, str | None]) -> None:
    cid, rid = ids
    before = EventMetadata(
        actor_id=str(ACTOR), correlation_id=cid, request_id=rid, causation_id="upload-7"
    )
    after = EventMetadata(**event_metadata(ACTOR, causation_id="upload-7"))
    assert encoded(after) == encoded(before)
    assert encoded(EventMetadata(**event_metadata(None))) == encoded(
        EventMetadata(correlation_id=cid, request_id=rid)
    )


def test_a_webhook_with_extra_fields(ids: tuple[str | None, str | None]) -> None:
    cid, rid = ids
    extra = {"source": "webhook", "stripe_type": "invoice.paid"}
    before = EventMetadata(correlation_id=cid, request_id=rid, causation_id="evt_1", extra=extra)
    after = EventMetadata(**event_metadata(causation_id="evt_1", extra=extra))
    assert encoded(after) == encoded(before)


def test_ids_captured_earlier_win_over_the_ambient_ones(
    ids: tuple[str | None, str | None],
) -> None:
    before = EventMetadata(weight=4.0, correlation_id="captured", request_id=None)
    after = EventMetadata(**event_metadata(weight=4.0, correlation="captured", request=None))
    assert encoded(after) == encoded(before)
    assert b"request_id" not in encoded(after)


def test_an_operator_action_outside_a_request() -> None:
    before = EventMetadata(actor_id="ops@example.org", causation_id="9f1e")
    after = EventMetadata(**event_metadata("ops@example.org", causation_id="9f1e"))
    assert (
        encoded(after) == encoded(before) == b'{"causation_id":"9f1e","actor_id":"ops@example.org"}'
    )
