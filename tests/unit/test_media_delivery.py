"""Playlist rewriting and media paths for local delivery."""

from __future__ import annotations

import uuid

import pytest

from lufy.errors import NotFoundError
from lufy.media.delivery import media_key, rewrite_playlist
from lufy.media.storage import InvalidKeyError

VARIANT = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-KEY:METHOD=AES-128,URI="../key.bin",IV=0x1f2dd9ac527b71ad87f5833dee50fced
#EXTINF:6.016000,
seg_00000.ts
#EXTINF:2.0,
seg_00001.ts
#EXT-X-ENDLIST
"""


def test_every_segment_and_key_uri_carries_the_token() -> None:
    out = rewrite_playlist(VARIANT, "TOK")
    assert 'URI="../key.bin?token=TOK"' in out
    assert "\nseg_00000.ts?token=TOK\n" in out
    assert "\nseg_00001.ts?token=TOK\n" in out
    uris = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert all(u.endswith("?token=TOK") for u in uris)
    assert "#EXT-X-ENDLIST" in out


def test_master_playlist_variants_carry_the_token() -> None:
    master = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS="mp4a.40.2"\n128k/index.m3u8\n'
    out = rewrite_playlist(master, "T")
    assert "128k/index.m3u8?token=T" in out
    assert 'CODECS="mp4a.40.2"' in out


@pytest.mark.parametrize("path", ["../secret.ts", "128k/../../x.ts", "..", "a//b.ts", "%2e%2e/x"])
def test_path_traversal_is_refused(path: str) -> None:
    with pytest.raises(InvalidKeyError):
        media_key(uuid.uuid4(), path)


def test_only_playlists_segments_and_keys_are_served() -> None:
    track = uuid.uuid4()
    assert media_key(track, "128k/seg_00000.ts") == f"hls/{track}/128k/seg_00000.ts"
    assert media_key(track, "/master.m3u8") == f"hls/{track}/master.m3u8"
    with pytest.raises(NotFoundError):
        media_key(track, "source.mp3")
