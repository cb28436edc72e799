"""Type tag <-> Struct, with schema versions and upcasters.

Each package that `lufy.contexts` lists with events has an `events.py` exporting `EVENTS` (a
tuple of Event subclasses) and optionally `UPCASTERS`: {(type, from_version): fn(dict) -> dict}
taking a payload of `from_version` to `from_version + 1`. Unknown types and payloads that do not
match their Struct are rejected before anything is written.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from types import GenericAlias
from typing import Any, Union

import msgspec

from lufy.contexts import modules
from lufy.errors import UnknownEventTypeError, ValidationFailedError
from lufy.eventstore.envelope import Event, EventMetadata, RecordedEvent

__all__ = ["EventCodec", "PageDecoding", "Upcaster", "default_codec"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_encoder = msgspec.json.Encoder()
_meta_decoder = msgspec.json.Decoder(EventMetadata)


class _Undecoded(Event, frozen=True, tag="lufy.undecoded"):
    """A payload stored at another schema version than its Struct's: the page query wraps it
    in this so the page still decodes in one call, and it is then decoded (upcast) alone."""

    payload: msgspec.Raw


class PageDecoding(msgspec.Struct, frozen=True):
    """What the page queries (`read_page`) and their one-call decoder need from a codec."""

    decoder: msgspec.json.Decoder[list[RecordedEvent]]
    # {type: current schema version} as JSON, for the types whose current version is not 1.
    versions: str
    # The same as a dict (the client-side page assembly, plainpage.py).
    current: dict[str, int]
    # A page's payloads in one call (decode_payloads, the column reader): tagged, of any
    # registered type (or `lufy.undecoded`), or, all of one type, untagged.
    payloads: msgspec.json.Decoder[list[Event]]
    # {type: (current schema version, decoder of a list of its untagged payloads)}
    by_type: dict[str, tuple[int, msgspec.json.Decoder[list[Any]]]]


class _Entry:
    __slots__ = ("cls", "decoder", "prefix", "schema_version", "tag", "upcasters")

    def __init__(self, cls: type[Event], tag: str, upcasters: Mapping[int, Upcaster]) -> None:
        self.cls = cls
        self.tag = tag
        self.schema_version = cls.schema_version
        self.decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(cls)
        self.upcasters = dict(upcasters)
        # msgspec always writes the tag first: `{"type":"<tag>"` is cut off the encoded event,
        # because the type has its own column and the stored payload matches the JSON Schema.
        self.prefix = _encoder.encode({"type": tag})[:-1]


class EventCodec:
    def __init__(self, events: Iterable[type[Event]] = (), upcasters: Mapping[Any, Upcaster] = {}):
        self._by_type: dict[str, _Entry] = {}
        self._page: PageDecoding | None = None
        for cls in events:
            self.register(cls)
        for (type_name, version), fn in upcasters.items():
            self.add_upcaster(type_name, version, fn)

    def register(self, cls: type[Event]) -> None:
        tag = cls.__struct_config__.tag
        if not isinstance(tag, str):
            raise TypeError(f"{cls.__name__} has no string type tag")
        known = self._by_type.get(tag)
        if known is not None and known.cls is not cls:
            raise TypeError(f"event type {tag!r} registered twice")
        self._by_type[tag] = _Entry(cls, tag, {})
        self._page = None

    def add_upcaster(self, type_name: str, from_version: int, fn: Upcaster) -> None:
        self._entry(type_name).upcasters[from_version] = fn

    def _entry(self, type_name: str) -> _Entry:
        try:
            return self._by_type[type_name]
        except KeyError:
            raise UnknownEventTypeError(f"unknown event type {type_name!r}") from None

    @property
    def types(self) -> dict[str, type[Event]]:
        return {name: entry.cls for name, entry in sorted(self._by_type.items())}

    def type_of(self, cls: type[Event]) -> str:
        tag = cls.__struct_config__.tag
        assert isinstance(tag, str)
        return tag

    def schema_version(self, type_name: str) -> int:
        return self._entry(type_name).schema_version

    # --- writing ------------------------------------------------------------------------------

    def encode(self, event: Event) -> tuple[str, int, str]:
        """(type, schema_version, JSON object text without the type tag).

        Structs are not type-checked when constructed, so the encoded payload is decoded once
        against its Struct: a payload that does not match its schema never reaches the log.
        """
        cls = type(event)
        type_name = cls.__struct_config__.tag
        entry = self._by_type.get(type_name) if isinstance(type_name, str) else None
        if entry is None or entry.cls is not cls:
            raise UnknownEventTypeError(f"event class {cls.__name__} is not registered")
        try:
            raw = _encoder.encode(event)
        except (TypeError, ValueError) as exc:
            raise ValidationFailedError(f"{entry.tag}: {exc}") from None
        rest = raw[len(entry.prefix) :]
        data = b"{" + rest[1:] if rest.startswith(b",") else b"{}"
        try:
            entry.decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise ValidationFailedError(f"{entry.tag}: {exc}") from None
        return entry.tag, entry.schema_version, data.decode()

    def validate(self, type_name: str, payload: Mapping[str, Any]) -> Event:
        """Decode an untrusted payload of the current schema version into its Struct."""
        entry = self._entry(type_name)
        try:
            return msgspec.convert(dict(payload), type=entry.cls)
        except msgspec.ValidationError as exc:
            raise ValidationFailedError(f"{type_name}: {exc}") from None

    # --- reading ------------------------------------------------------------------------------

    def decode(self, type_name: str, schema_version: int, data: str | bytes) -> Event:
        entry = self._entry(type_name)
        if schema_version == entry.schema_version:
            return entry.decoder.decode(data)
        payload: dict[str, Any] = msgspec.json.decode(data)
        for version in range(schema_version, entry.schema_version):
            try:
                payload = entry.upcasters[version](payload)
            except KeyError:
                raise UnknownEventTypeError(
                    f"no upcaster for {type_name} from schema version {version}"
                ) from None
        return msgspec.convert(payload, type=entry.cls)

    def page_decoding(self) -> PageDecoding:
        """The decoder of a whole page: `RecordedEvent[A | B | ... | _Undecoded]`, tagged by
        `type`, built once per set of registered events."""
        if self._page is None:
            classes = (*(e.cls for e in self._by_type.values()), _Undecoded)
            union: Any = Union.__getitem__(classes)
            current = {
                t: e.schema_version for t, e in self._by_type.items() if e.schema_version != 1
            }
            self._page = PageDecoding(
                decoder=msgspec.json.Decoder(list[RecordedEvent[union]]),
                versions=_encoder.encode(current).decode(),
                current=current,
                payloads=msgspec.json.Decoder(list[union]),
                by_type={
                    t: (e.schema_version, msgspec.json.Decoder(GenericAlias(list, e.cls)))
                    for t, e in self._by_type.items()
                },
            )
        return self._page

    def decode_page(self, body: str | bytes) -> list[RecordedEvent]:
        """Decode a page, the JSON array `read_page` (queries.sql) returns, in one call.

        Raises msgspec.DecodeError/ValidationError when a line does not fit (an unknown type, a
        payload that no longer matches its Struct...): the caller then reads the page again the
        precise way, event by event, and gets the precise error.
        """
        events = self.page_decoding().decoder.decode(body)
        for i, event in enumerate(events):
            data = event.data
            if data.__class__ is _Undecoded:
                assert isinstance(data, _Undecoded)
                upcast = self.decode(event.type, event.schema_version, bytes(data.payload))
                events[i] = msgspec.structs.replace(event, data=upcast)
        return events

    def decode_payloads(self, types: list[str], versions: list[int], data: bytes) -> list[Event]:
        """A page's payloads in one msgspec call: `data` is their stored JSON objects (UTF-8)
        separated by U+001F, which JSONB escapes (read_page_columns in queries.sql), `types` and
        `versions` their types and schema versions. A page of one type, stored at its current
        version, is decoded untagged by that type's decoder; any other page's payloads get their
        type tag (or are wrapped as `lufy.undecoded` and upcast one by one), as in decode_page.

        Raises msgspec.DecodeError/ValidationError as decode_page does (an unregistered type, a
        payload that no longer fits its Struct).
        """
        decoding = self.page_decoding()
        n = len(types)
        first = types[0]
        known = decoding.by_type.get(first)
        if known is not None and types.count(first) == n and versions.count(known[0]) == n:
            one: list[Event] = known[1].decode(b"[" + data.replace(b"\x1f", b",") + b"]")
            return one
        payloads = data.split(b"\x1f")
        if len(payloads) != n:  # cannot happen (JSONB escapes U+001F): decode_page's fallback
            raise msgspec.DecodeError("the payloads do not split into the page's events")
        tags = {t: b'{"type":' + _encoder.encode(t) for t in set(types)}
        current = decoding.current
        tagged = [
            b'{"type":"lufy.undecoded","payload":' + d + b"}"
            if v != current.get(t, 1)
            else tags[t] + b"}"
            if d == b"{}"
            else tags[t] + b"," + d[1:]
            for t, v, d in zip(types, versions, payloads, strict=True)
        ]
        events: list[Event] = decoding.payloads.decode(b"[" + b",".join(tagged) + b"]")
        for i, event in enumerate(events):
            if event.__class__ is _Undecoded:
                assert isinstance(event, _Undecoded)
                events[i] = self.decode(types[i], versions[i], bytes(event.payload))
        return events

    @staticmethod
    def decode_metadata(data: str | bytes) -> EventMetadata:
        return _meta_decoder.decode(data)

    @staticmethod
    def encode_metadata(metadata: EventMetadata) -> str:
        return _encoder.encode(metadata).decode()

    def json_schema(self, type_name: str) -> dict[str, Any]:
        """JSON Schema of the stored payload (`data`) of the current version."""
        entry = self._entry(type_name)
        schema: dict[str, Any] = msgspec.json.schema(entry.cls)
        defs = schema.get("$defs", {})
        body = defs.get(entry.cls.__name__, schema)
        body.get("properties", {}).pop("type", None)
        if "required" in body:
            body["required"] = [r for r in body["required"] if r != "type"]
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"lufy:event:{type_name}:v{entry.schema_version}",
            "x-event-type": type_name,
            "x-schema-version": entry.schema_version,
            **schema,
        }


@cache
def default_codec() -> EventCodec:
    """The codec with the events of every package `lufy.contexts` lists with events."""
    codec = EventCodec()
    for name in modules("events"):
        module = importlib.import_module(name)
        for cls in module.EVENTS:
            codec.register(cls)
        for (type_name, version), fn in getattr(module, "UPCASTERS", {}).items():
            codec.add_upcaster(type_name, version, fn)
    return codec
