"""The append statements, composed once from one template, and their parameters.

`queries.sql` holds the `append` statement (and `append_one`, the same for a single event) with
three slots and the fragments that fill them (see the comment above it there): which events
({events}: one from plain parameters, or a JSON batch), the check of the expected-version
mode against the log ({stream}, with its event-id check) and whether the statement runs in a
caller's transaction (then the ids and versions are probed and the NOTIFY goes with it) or
commits alone. psycopg's SQL composition fills them here, once, into the sixteen variants;
nothing edits query text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString

import msgspec
from psycopg import sql

from lufy.eventstore.codec import EventCodec
from lufy.eventstore.envelope import EventMetadata, ExpectedVersion, NewEvent, _Sentinel
from lufy.sqlfiles import load_queries

__all__ = ["ANY_CODE", "MAX_BATCH", "AppendCall", "append_statement", "expected_code"]

_Q = load_queries("lufy.eventstore")
MAX_BATCH = 10_000

# Expected-version mode: ANY, NO_STREAM, an exact version (exactly 0 is a stream that does not
# exist yet, so it takes the NO_STREAM statement).
ANY_CODE = -2
# An exact version whose event is known to exist (append_statement's `known`).
_KNOWN = -3
_STREAM = {
    ANY_CODE: _Q.stream_any,
    -1: _Q.stream_no_stream,
    0: _Q.stream_exact,
    _KNOWN: _Q.stream_known,
}


def _compose(
    template: LiteralString, events: LiteralString, stream: LiteralString, *, in_tx: bool
) -> bytes:
    # Inside a caller's transaction the event ids and the next versions are probed (a unique
    # violation would abort that transaction) and the NOTIFY goes with it; a statement that
    # commits alone leaves both to the unique indexes (a violation rolls back only itself) and
    # the NOTIFY to the caller.
    fresh_ids = sql.SQL(_Q.fresh_ids_probed if in_tx else _Q.fresh_ids_by_index)
    parts = {
        "events": sql.SQL(events),
        "stream": sql.SQL(stream).format(fresh_ids=fresh_ids),
        "notify": sql.SQL(_Q.notify_in_tx if in_tx else _Q.notify_after_commit),
    }
    return sql.SQL(template).format(**parts).as_bytes(None)


# (mode, single event, in a caller's transaction) -> the statement.
_STATEMENTS = {
    (mode, single, in_tx): _compose(
        _Q.append_one if single else _Q.append,
        _Q.events_one if single else _Q.events_batch,
        stream,
        in_tx=in_tx,
    )
    for mode, stream in _STREAM.items()
    for single in (True, False)
    for in_tx in (True, False)
}


def expected_code(expected: ExpectedVersion) -> int:
    """-2 for ANY, -1 for NO_STREAM, else the version (an int >= 0)."""
    if isinstance(expected, _Sentinel):
        return expected.code
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise ValueError("expected version must be an int >= 0, NO_STREAM or ANY")
    return expected


def append_statement(code: int, *, single: bool, in_tx: bool, known: bool = False) -> bytes:
    """The fast-path statement for expected-version `code` (see expected_code). `in_tx`: inside
    a transaction of the caller's (the event ids and versions probed, the NOTIFY sent with it);
    otherwise the statement commits alone: a used event id or a taken version fails it on a
    unique index, rolling back only itself, and the caller sends the NOTIFY after the commit.
    `known` (an exact version >= 1 only): the stream's event at version `code` is known to
    exist, so the statement does not look for it (`stream_known`)."""
    if known and code > 0:
        return _STATEMENTS[_KNOWN, single, in_tx]
    mode = code if code < 0 else (-1 if code == 0 else 0)
    return _STATEMENTS[mode, single, in_tx]


class _BatchItem(msgspec.Struct, frozen=True):
    """One event of an append, as `events_batch` reads it from its JSON parameter."""

    event_id: uuid.UUID
    type: str
    schema_version: int
    data: msgspec.Raw
    metadata: EventMetadata
    occurred_at: datetime | None


_batch_encoder = msgspec.json.Encoder()


class AppendCall(msgspec.Struct, frozen=True):
    """One call of EventStore.append, its events already encoded (type, version, JSON)."""

    stream_type: str
    stream_id: str
    code: int  # expected_code()
    items: Sequence[NewEvent]
    encoded: Sequence[tuple[str, int, str]]

    def params(self, codec: EventCodec) -> dict[str, Any]:
        """The parameters of append_statement(code, single=len(items) == 1, ...)."""
        params: dict[str, Any] = {
            "stream_type": self.stream_type,
            "stream_id": self.stream_id,
            "expected": self.code,
            "n": len(self.items),
        }
        if len(self.items) == 1:
            [item], [(type_name, version, data)] = self.items, self.encoded
            params |= {
                "event_id": item.event_id,
                "type": type_name,
                "schema_version": version,
                "data": data,
                "metadata": codec.encode_metadata(item.metadata),
                "occurred_at": item.occurred_at,
            }
            return params
        params["batch"] = _batch_encoder.encode(
            [
                _BatchItem(
                    event_id=item.event_id,
                    type=type_name,
                    schema_version=version,
                    data=msgspec.Raw(data.encode()),
                    metadata=item.metadata,
                    occurred_at=item.occurred_at,
                )
                for item, (type_name, version, data) in zip(self.items, self.encoded, strict=True)
            ]
        ).decode()
        return params

    def function_params(self, codec: EventCodec) -> dict[str, Any]:
        """Parameters of lufy.append_to_stream (the precise, slower path): one array per
        column."""
        return {
            "stream_type": self.stream_type,
            "stream_id": self.stream_id,
            "expected": self.code,
            "event_ids": [item.event_id for item in self.items],
            "types": [t for t, _, _ in self.encoded],
            "schema_versions": [v for _, v, _ in self.encoded],
            "data": [d for _, _, d in self.encoded],
            "metadata": [codec.encode_metadata(item.metadata) for item in self.items],
            "occurred_at": [item.occurred_at for item in self.items],
        }
