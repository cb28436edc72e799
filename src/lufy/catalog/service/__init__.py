"""The catalog's application service: load a track, decide, append (with the inline read model).

Every write runs in one transaction carrying the caller's identity for Row-Level Security, so
the tracks read model is written under the same rules it is read with.

`CatalogService` is one object composed of one mixin per concern, each in its own module:

- `uploads`: requesting an upload (checks, quotas, the target), completing it, the sweep of
  uploads never completed;
- `transcoding`: the media-processing job's steps (started, transcoded, failed);
- `reads` and `tracks`: reading tracks, and a track's lifecycle (edit, publish, unpublish,
  delete);
- `stream`: stream authorisation (the grant and its signed URL; the SQL side is
  `lufy.catalog.grants`);

on `base.CatalogBase`, which holds the dependencies, loads a track and appends its events.
Mixins rather than separate objects: the concerns share one state that callers set on the
service (`encrypt_hls` in benchmarks, `storage` read by the processing job and tests), and
`CatalogService` keeps its one constructor and its methods; rather than module functions,
because a delegating class would repeat every signature.
"""

from __future__ import annotations

from lufy.catalog.service.base import TierResolver, everyone_premium, normalize_content_type
from lufy.catalog.service.reads import TrackReads
from lufy.catalog.service.stream import StreamGrants
from lufy.catalog.service.tracks import TrackLifecycle
from lufy.catalog.service.transcoding import Transcoding
from lufy.catalog.service.uploads import ABANDON_AFTER, ABANDONED_REASON, UPLOAD_TTL, Uploads
from lufy.media.uploads import UnsupportedMediaTypeError

__all__ = [
    "ABANDONED_REASON",
    "ABANDON_AFTER",
    "UPLOAD_TTL",
    "CatalogService",
    "TierResolver",
    "UnsupportedMediaTypeError",
    "everyone_premium",
    "normalize_content_type",
]


class CatalogService(Uploads, Transcoding, TrackLifecycle, TrackReads, StreamGrants):
    """The catalogue: uploads, processing, tracks and their lifecycle, stream grants."""
