"""The one-off backfill of `master-free.m3u8` for packages transcoded before it existed."""

from __future__ import annotations

import uuid

from lufy.media.backfill import write_missing_free_masters
from lufy.media.storage import MemoryStorage

MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS="mp4a.40.2"
64k/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=281600,CODECS="mp4a.40.2"
128k/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=563200,CODECS="mp4a.40.2"
256k/index.m3u8

"""


def test_packages_without_a_free_master_get_one_and_others_are_left_alone() -> None:
    storage = MemoryStorage()
    old, new, partial = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    storage.put_bytes(f"hls/{old}/master.m3u8", MASTER.encode())
    storage.put_bytes(f"hls/{old}/256k/index.m3u8", b"#EXTM3U\n")
    storage.put_bytes(f"hls/{new}/master.m3u8", MASTER.encode())
    storage.put_bytes(f"hls/{new}/master-free.m3u8", b"kept as it is\n")
    storage.put_bytes(f"hls/{partial}/64k/seg_00000.ts", b"x")

    assert write_missing_free_masters(storage) == [f"hls/{old}/master-free.m3u8"]
    free = storage.get_bytes(f"hls/{old}/master-free.m3u8").decode()
    assert "64k/index.m3u8" in free
    assert "128k/index.m3u8" in free
    assert "256k" not in free
    assert free.count("#EXT-X-STREAM-INF") == 2
    assert storage.get_bytes(f"hls/{new}/master-free.m3u8") == b"kept as it is\n"
    assert storage.stat(f"hls/{partial}/master-free.m3u8") is None
    # Idempotent.
    assert write_missing_free_masters(storage) == []
