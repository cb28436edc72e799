"""The codec: type tags, stored payloads, validation, upcasters, JSON Schemas."""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar

import msgspec
import pytest

from lufy.errors import UnknownEventTypeError, ValidationFailedError
from lufy.eventstore import Event, EventCodec, EventMetadata, default_codec


class Played(Event, frozen=True, tag="test.played"):
    track_id: uuid.UUID
    listened_ms: int
    source: str | None = None


class Empty(Event, frozen=True, tag="test.empty"):
    pass


class NotRegistered(Event, frozen=True, tag="test.not_registered"):
    x: int


class PlayedV2(Event, frozen=True, tag="test.played"):
    schema_version: ClassVar[int] = 2
    track_id: uuid.UUID
    listened_seconds: float
    source: str = "unknown"


@pytest.fixture
def codec() -> EventCodec:
    return EventCodec([Played, Empty])


def test_the_stored_payload_is_a_json_object_without_the_type_tag(codec: EventCodec) -> None:
    track = uuid.uuid4()
    type_name, version, data = codec.encode(Played(track_id=track, listened_ms=31_000))
    assert (type_name, version) == ("test.played", 1)
    assert json.loads(data) == {"track_id": str(track), "listened_ms": 31_000, "source": None}
    assert codec.encode(Empty()) == ("test.empty", 1, "{}")


def test_an_encoded_event_decodes_to_an_equal_event(codec: EventCodec) -> None:
    event = Played(track_id=uuid.uuid4(), listened_ms=5, source="radio")
    type_name, version, data = codec.encode(event)
    assert codec.decode(type_name, version, data) == event
    assert codec.decode(type_name, version, data.encode()) == event


@pytest.mark.parametrize(
    "event",
    [
        Played(track_id="not-a-uuid", listened_ms=1),  # type: ignore[arg-type]
        Played(track_id=uuid.uuid4(), listened_ms="long"),  # type: ignore[arg-type]
        Played(track_id=uuid.uuid4(), listened_ms=1, source=7),  # type: ignore[arg-type]
        Played(track_id=uuid.uuid4(), listened_ms=object()),  # type: ignore[arg-type]
    ],
)
def test_a_struct_holding_values_its_schema_forbids_is_not_encoded(
    codec: EventCodec, event: Played
) -> None:
    with pytest.raises(ValidationFailedError, match=r"^test\.played: "):
        codec.encode(event)


def test_an_unregistered_event_class_is_refused(codec: EventCodec) -> None:
    with pytest.raises(UnknownEventTypeError, match="NotRegistered"):
        codec.encode(NotRegistered(x=1))
    # Same tag, other class: the registered class is the only one the codec writes.
    with pytest.raises(UnknownEventTypeError):
        codec.encode(PlayedV2(track_id=uuid.uuid4(), listened_seconds=1.0))


def test_a_type_cannot_be_registered_twice_with_different_classes(codec: EventCodec) -> None:
    codec.register(Played)  # the same class again is harmless
    with pytest.raises(TypeError, match="registered twice"):
        codec.register(PlayedV2)


def test_untrusted_payloads_are_validated_with_the_offending_path(codec: EventCodec) -> None:
    track = uuid.uuid4()
    assert codec.validate("test.played", {"track_id": str(track), "listened_ms": 3}) == Played(
        track_id=track, listened_ms=3
    )
    with pytest.raises(ValidationFailedError, match=r"\$\.listened_ms"):
        codec.validate("test.played", {"track_id": str(track), "listened_ms": "3s"})
    with pytest.raises(ValidationFailedError, match="track_id"):
        codec.validate("test.played", {"listened_ms": 3})
    with pytest.raises(UnknownEventTypeError, match=r"test\.nope"):
        codec.validate("test.nope", {})


def test_upcasters_run_in_order_up_to_the_current_version() -> None:
    calls: list[int] = []

    def v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return {
            "track_id": payload["track_id"],
            "listened_seconds": payload["listened_ms"] / 1000,
            "source": payload.get("source") or "unknown",
        }

    codec = EventCodec([PlayedV2], upcasters={("test.played", 1): v1_to_v2})
    track = uuid.uuid4()
    old = json.dumps({"track_id": str(track), "listened_ms": 1500, "source": None})
    assert codec.decode("test.played", 1, old) == PlayedV2(track_id=track, listened_seconds=1.5)
    assert calls == [1]
    current = json.dumps({"track_id": str(track), "listened_seconds": 2.0, "source": "radio"})
    assert codec.decode("test.played", 2, current) == PlayedV2(
        track_id=track, listened_seconds=2.0, source="radio"
    )
    assert calls == [1]  # the current version is decoded directly


def test_a_missing_upcaster_is_an_error() -> None:
    codec = EventCodec([PlayedV2])
    with pytest.raises(UnknownEventTypeError, match="no upcaster"):
        codec.decode("test.played", 1, '{"track_id": "x", "listened_ms": 1}')


def test_reading_an_unknown_type_is_an_error(codec: EventCodec) -> None:
    with pytest.raises(UnknownEventTypeError):
        codec.decode("test.gone", 1, "{}")


def test_metadata_round_trips_and_omits_what_is_unset() -> None:
    meta = EventMetadata(correlation_id="c", actor_id="a", weight=4.0)
    text = EventCodec.encode_metadata(meta)
    assert json.loads(text) == {"correlation_id": "c", "actor_id": "a", "weight": 4.0}
    assert EventCodec.decode_metadata(text) == meta
    assert EventCodec.encode_metadata(EventMetadata()) == "{}"


def test_the_json_schema_describes_the_stored_payload(codec: EventCodec) -> None:
    schema = codec.json_schema("test.played")
    assert schema["$id"] == "lufy:event:test.played:v1"
    assert schema["x-schema-version"] == 1
    body = schema["$defs"]["Played"]
    assert "type" not in body["properties"]
    assert set(body["required"]) == {"track_id", "listened_ms"}
    # The schema accepts exactly what the codec stores.
    _, _, data = codec.encode(Played(track_id=uuid.uuid4(), listened_ms=1))
    assert set(json.loads(data)) <= set(body["properties"])


def test_every_catalogued_event_type_encodes_with_its_own_tag() -> None:
    codec = default_codec()
    assert codec.types, "no context registered any event"
    for name, cls in codec.types.items():
        assert codec.type_of(cls) == name
        assert name.count(".") >= 1, f"{name} is not <context>.<fact>"
        assert cls.__struct_config__.frozen, f"{name} is not frozen"
        assert msgspec.structs.fields(cls) is not None
