"""Decoded listener bitmaps kept between dashboard requests (lufy/analytics/listeners.py).

A bitmap row is named by its tuple version in PostgreSQL, `ctid:xmin`: the physical slot and the
transaction that wrote that version. A projection batch that changes a row writes a new version
(a new xmin), a rebuild's swap writes every row anew, and a read replica shows the primary's
tuples as they are, so a version never names two contents. A read tells PostgreSQL which
versions of the blocks it wants it already holds (`known`), gets NULL instead of their bytes,
and takes them from here: a dashboard shown again moves only the rows that changed since.

Bounded by the bytes of the serialized bitmaps (least recently used first out); per process.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

from pyroaring import BitMap

__all__ = ["BitmapCache", "Place"]

# Where a row lives: (scope, dim, level, block start).
Place = tuple[str, str, str, int]


class BitmapCache:
    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[BitMap, int, Place]] = OrderedDict()
        # place -> version -> (owner, artist): the versions a read of a place may reuse.
        self._places: dict[Place, dict[str, tuple[uuid.UUID, uuid.UUID | None]]] = defaultdict(dict)
        self._bytes = 0

    def known(
        self,
        places: Sequence[Place],
        owners: Sequence[uuid.UUID] | None,
        artist: uuid.UUID | None,
    ) -> dict[str, BitMap]:
        """The cached bitmaps of these places (of `owners`, or of `artist`'s rows), by version:
        held by the caller, so an eviction meanwhile cannot lose them."""
        wanted = set(owners) if owners is not None else None
        out: dict[str, BitMap] = {}
        for place in places:
            for version, (owner, of_artist) in self._places.get(place, {}).items():
                if wanted is not None and owner not in wanted:
                    continue
                if wanted is None and artist is not None and of_artist != artist:
                    continue
                item = self._items.get(version)
                if item is not None:
                    self._items.move_to_end(version)
                    out[version] = item[0]
        return out

    def add(
        self,
        version: str,
        place: Place,
        owner: uuid.UUID,
        artist: uuid.UUID | None,
        data: bytes,
    ) -> BitMap:
        bitmap = BitMap.deserialize(data)
        if version not in self._items and len(data) <= self.max_bytes:
            self._items[version] = (bitmap, len(data), place)
            self._places[place][version] = (owner, artist)
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                self._evict()
        return bitmap

    def _evict(self) -> None:
        version, (_, size, place) = self._items.popitem(last=False)
        self._bytes -= size
        versions = self._places.get(place)
        if versions is not None:
            versions.pop(version, None)
            if not versions:
                del self._places[place]
