"""What the analytics and dashboard APIs return (never an event Struct)."""

from __future__ import annotations

import uuid

import msgspec

__all__ = [
    "BreakdownResponse",
    "BreakdownRow",
    "Metrics",
    "Overview",
    "Point",
    "RealtimeResponse",
    "TimeseriesResponse",
    "TrackRow",
    "TracksResponse",
]


class Metrics(msgspec.Struct, kw_only=True):
    streams: float = 0
    listeners: float = 0
    listen_seconds: float = 0
    completion_rate: float = 0
    skip_rate: float = 0
    likes: float = 0
    followers: float = 0


class Overview(Metrics, kw_only=True):
    previous: Metrics


class Point(msgspec.Struct):
    t: str
    value: float


class TimeseriesResponse(msgspec.Struct):
    points: list[Point]


class TrackRow(Metrics, kw_only=True):
    track_id: uuid.UUID
    title: str | None = None


class TracksResponse(msgspec.Struct):
    rows: list[TrackRow]


class BreakdownRow(msgspec.Struct):
    key: str
    streams: float
    listeners: float


class BreakdownResponse(msgspec.Struct):
    rows: list[BreakdownRow]


class RealtimeResponse(msgspec.Struct):
    points: list[Point]
