"""Local media delivery: what the CloudFront edge does, for a deployment without one.

Every request carries a stream token; playlists are rewritten so that each segment, variant
and key URI carries it too (an HLS client does not propagate query strings by itself).
"""

from __future__ import annotations

import re
import uuid

from lufy.errors import NotFoundError
from lufy.media.storage import check_key

__all__ = ["media_key", "rewrite_playlist"]

_URI_ATTR = re.compile(r'URI="([^"]*)"')


def media_key(track_id: uuid.UUID, path: str) -> str:
    """The storage key of `path` under the track's package; refuses traversal (400) and
    anything that is not a playlist, segment or key (404)."""
    key = check_key(f"hls/{track_id}/{path.lstrip('/')}")
    if not key.endswith((".m3u8", ".ts", ".bin")):
        raise NotFoundError("no such media file")
    return key


def _with_token(uri: str, token: str) -> str:
    if not uri or uri.startswith(("data:", "skd:")):
        return uri
    separator = "&" if "?" in uri else "?"
    return f"{uri}{separator}token={token}"


def rewrite_playlist(text: str, token: str) -> str:
    """Append `token` to every URI of an HLS playlist (segments, variants, keys, maps)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            lines.append(line)
        elif stripped.startswith("#"):
            lines.append(_URI_ATTR.sub(lambda m: f'URI="{_with_token(m.group(1), token)}"', line))
        else:
            lines.append(_with_token(stripped, token))
    return "\n".join(lines) + "\n"
