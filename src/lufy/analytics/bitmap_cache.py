"""Decoded listener bitmaps kept between dashboard requests (lufy/analytics/listeners.py).

A bitmap row is named by its tuple version in PostgreSQL, `file:ctid:xmin`: the table's file
(`pg_relation_filenode`, new after VACUUM FULL, CLUSTER or a swap of tables), the physical slot
and the transaction that wrote that version. A projection batch that changes a row writes a new
version (a new xmin), a rebuild's swap brings other tables, and a read replica shows the
primary's tuples as they are, so a version never names two contents. A read tells PostgreSQL
which versions of the blocks it wants it already holds (`known`), gets NULL instead of their
bytes, and takes them from here: a dashboard shown again moves only the rows that changed since.

Bounded by the bytes of the serialized bitmaps (least recently used first out); per process.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Collection, Hashable, Sequence

from pyroaring import BitMap

__all__ = ["BitmapCache", "Place"]

# Where a row lives: (scope, dim, level, block start).
Place = tuple[str, str, str, int]
# The rows of one scope, dimension and artist (None: the platform's rows), by block.
_Group = tuple[str, str, uuid.UUID | None]
_Block = tuple[str, int]
# How many answers of `known` and counts of unions are kept.
_ANSWERS = 256
_COUNTS = 50_000  # about 20 MB at most (tuples of 4-12 versions)


class BitmapCache:
    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[BitMap, int, _Group, _Block]] = OrderedDict()
        # group -> block -> version -> owner: the versions a read of a block may reuse.
        self._groups: dict[_Group, dict[_Block, dict[str, uuid.UUID]]] = defaultdict(dict)
        self._bytes = 0
        # Per group, a number changed by every version added or evicted; `known` answers
        # again from its last answer while the numbers of its groups are the same.
        self._generations: dict[_Group, int] = defaultdict(int)
        self._answers: OrderedDict[tuple[object, ...], tuple[object, dict[str, BitMap]]] = (
            OrderedDict()
        )
        # Distinct listeners of unions of rows, by their versions (`count_of`).
        self._counts: OrderedDict[Hashable, float] = OrderedDict()
        # The last answers of `known` as the reads' array literal, by answer (`known_text`).
        self._texts: OrderedDict[int, tuple[dict[str, BitMap], str]] = OrderedDict()

    def known(
        self,
        scope: str,
        dim: str,
        blocks: Collection[_Block],
        owners: Sequence[uuid.UUID] | None,
        artist: uuid.UUID | None,
    ) -> dict[str, BitMap]:
        """The cached bitmaps of these blocks of a scope and dimension (of `owners`, or of
        `artist`'s rows), by version: held by the caller, so an eviction meanwhile cannot lose
        them. The cost follows the smaller of the blocks asked for and the blocks held."""
        asked = (scope, dim, frozenset(blocks), tuple(owners or ()), owners is None, artist)
        stamp = self._stamp(scope, dim, artist)
        answer = self._answers.get(asked)
        if answer is not None and answer[0] == stamp:
            self._answers.move_to_end(asked)
            return answer[1]
        if artist is not None:
            groups = [self._groups.get((scope, dim, artist), {})]
        else:
            groups = [g for (s, d, _), g in self._groups.items() if s == scope and d == dim]
        out = self._known(groups, blocks, None if owners is None else set(owners))
        self._answers[asked] = (stamp, out)
        if len(self._answers) > _ANSWERS:
            self._answers.popitem(last=False)
        return out

    def _stamp(self, scope: str, dim: str, artist: uuid.UUID | None) -> object:
        if artist is not None:
            return self._generations[(scope, dim, artist)]
        return sum(n for (s, d, _), n in self._generations.items() if s == scope and d == dim)

    def _known(
        self,
        groups: list[dict[_Block, dict[str, uuid.UUID]]],
        blocks: Collection[_Block],
        wanted: set[uuid.UUID] | None,
    ) -> dict[str, BitMap]:
        out: dict[str, BitMap] = {}
        for held in groups:
            if len(held) <= len(blocks):
                found = [versions for block, versions in held.items() if block in blocks]
            else:
                found = [held[block] for block in blocks if block in held]
            for versions in found:
                for version, owner in versions.items():
                    if wanted is not None and owner not in wanted:
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
            scope, dim, level, epoch = place
            group, block = (scope, dim, artist), (level, epoch)
            self._items[version] = (bitmap, len(data), group, block)
            self._groups[group].setdefault(block, {})[version] = owner
            self._generations[group] += 1
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                self._evict()
        return bitmap

    def _evict(self) -> None:
        version, (_, size, group, block) = self._items.popitem(last=False)
        self._bytes -= size
        self._generations[group] += 1
        held = self._groups.get(group)
        versions = held.get(block) if held is not None else None
        if held is not None and versions is not None:
            versions.pop(version, None)
            if not versions:
                del held[block]
            if not held:
                del self._groups[group]

    def known_text(self, answer: dict[str, BitMap]) -> str:
        """An answer of `known` as an array literal of its versions (built once per answer:
        `known` gives the same answer again while its groups are unchanged)."""
        found = self._texts.get(id(answer))
        if found is not None and found[0] is answer:
            return found[1]
        text = "{" + ",".join(f'"{v}"' for v in answer) + "}"
        # The answer is held with its text, so its id names no other dict meanwhile.
        self._texts[id(answer)] = (answer, text)
        if len(self._texts) > _ANSWERS:
            self._texts.popitem(last=False)
        return text

    def count_of(self, versions: Hashable) -> float | None:
        """The distinct listeners of the union of these row versions (a tuple of them, or the
        reads' space-separated text of them), when kept."""
        return self._counts.get(versions)

    def keep_count(self, versions: Hashable, count: float) -> None:
        self._counts[versions] = count
        if len(self._counts) > _COUNTS:
            self._counts.popitem(last=False)
