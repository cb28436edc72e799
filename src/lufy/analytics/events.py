"""The nine analytics event types (CONTRACT.md section 3), as they are stored in the log.

What a client sends (`schemas.IncomingEvent`) is not what is stored: ingestion resolves the
listener into `listener_key` (a keyed hash), fills `artist_id` from the track, and adds the
country and device class it derived from request headers. The client IP is never stored.
Stream: `analytics` / the session id.
"""

from __future__ import annotations

import uuid
from typing import Any

from lufy.eventstore.envelope import Event

__all__ = [
    "ANALYTICS_TYPES",
    "BY_TYPE",
    "EVENTS",
    "PLAYBACK_TYPES",
    "STREAM_TYPE",
    "AnalyticsEvent",
    "ArtistFollowed",
    "ArtistUnfollowed",
    "PageViewed",
    "PlaybackCompleted",
    "PlaybackProgress",
    "PlaybackSkipped",
    "PlaybackStarted",
    "TrackLiked",
    "TrackUnliked",
]

STREAM_TYPE = "analytics"


class AnalyticsEvent(Event, frozen=True, kw_only=True, omit_defaults=True):
    """Fields shared by every analytics event; only the type tag differs."""

    session_id: str
    # HMAC of the listener (user id or anonymous id) under a per-database key: stable, not
    # reversible by analysts, and what every distinct-listener count is taken over.
    listener_key: str
    # The signed-in user and the client's anonymous id, both stored sealed (per person and per
    # month: lufy.privacy.listeners; events from before sealing may hold them in clear until
    # `lufy migrate` seals them). Never in the `analytics` schema; nothing needs to open them.
    listener_id: str | None = None
    anonymous_id: str | None = None
    track_id: uuid.UUID | None = None
    artist_id: uuid.UUID | None = None
    listened_ms: int | None = None
    source: str | None = None
    country: str | None = None
    device: str | None = None
    properties: dict[str, Any] | None = None
    # The stream grant the player was given (`catalog.stream_authorized`, the token's `jti`).
    grant_id: uuid.UUID | None = None
    # Appended by `lufy events import` (trusted operator input): its session is verified.
    imported: bool = False


class PlaybackStarted(AnalyticsEvent, frozen=True, tag="playback.started"):
    pass


class PlaybackProgress(AnalyticsEvent, frozen=True, tag="playback.progress"):
    pass


class PlaybackCompleted(AnalyticsEvent, frozen=True, tag="playback.completed"):
    pass


class PlaybackSkipped(AnalyticsEvent, frozen=True, tag="playback.skipped"):
    pass


class PageViewed(AnalyticsEvent, frozen=True, tag="page.viewed"):
    pass


class TrackLiked(AnalyticsEvent, frozen=True, tag="track.liked"):
    pass


class TrackUnliked(AnalyticsEvent, frozen=True, tag="track.unliked"):
    pass


class ArtistFollowed(AnalyticsEvent, frozen=True, tag="artist.followed"):
    pass


class ArtistUnfollowed(AnalyticsEvent, frozen=True, tag="artist.unfollowed"):
    pass


EVENTS: tuple[type[AnalyticsEvent], ...] = (
    PlaybackStarted,
    PlaybackProgress,
    PlaybackCompleted,
    PlaybackSkipped,
    PageViewed,
    TrackLiked,
    TrackUnliked,
    ArtistFollowed,
    ArtistUnfollowed,
)
BY_TYPE: dict[str, type[AnalyticsEvent]] = {str(cls.__struct_config__.tag): cls for cls in EVENTS}
ANALYTICS_TYPES = frozenset(BY_TYPE)
PLAYBACK_TYPES = frozenset(t for t in ANALYTICS_TYPES if t.startswith("playback."))
