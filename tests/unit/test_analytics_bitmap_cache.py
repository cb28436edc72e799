"""The dashboard's cache of decoded listener bitmaps: by tuple version, bounded, filtered."""

from __future__ import annotations

import uuid

from pyroaring import BitMap

from lufy.analytics.bitmap_cache import BitmapCache

A, B = uuid.uuid4(), uuid.uuid4()
PLACE = ("a", "", "d", 86400)
BLOCK = {("d", 86400)}


def data(*ids: int) -> bytes:
    return bytes(BitMap(ids).serialize())


def test_a_version_read_once_is_offered_again_for_its_place_and_owner() -> None:
    cache = BitmapCache()
    assert cache.add("(0,1):10", PLACE, A, A, data(1, 2, 3)) == BitMap([1, 2, 3])
    assert cache.known("a", "", BLOCK, [A], A) == {"(0,1):10": BitMap([1, 2, 3])}
    assert cache.known("a", "", BLOCK, [B], None) == {}
    assert cache.known("a", "", {("d", 0)}, [A], A) == {}
    assert cache.known("a", "country", BLOCK, [A], A) == {}
    assert cache.known("t", "", BLOCK, [A], A) == {}
    # Reading every owner of an artist offers only that artist's rows.
    assert cache.known("a", "", BLOCK, None, A) == {"(0,1):10": BitMap([1, 2, 3])}
    assert cache.known("a", "", BLOCK, None, B) == {}


def test_many_blocks_asked_or_many_held_find_the_same_versions() -> None:
    cache = BitmapCache()
    for n in range(50):
        cache.add(f"v{n}", ("a", "", "q", 900 * n), A, A, data(n))
    few = {("q", 900 * n) for n in (3, 7)}
    many = {("q", 900 * n) for n in range(1000) if n % 2}
    assert set(cache.known("a", "", few, [A], A)) == {"v3", "v7"}
    assert set(cache.known("a", "", many, [A], A)) == {f"v{n}" for n in range(50) if n % 2}
    assert set(cache.known("a", "", many, None, None)) == {f"v{n}" for n in range(50) if n % 2}


def test_the_least_recently_used_versions_leave_first_when_the_bytes_run_out() -> None:
    one, two, three = data(*range(100)), data(*range(200)), data(*range(300))
    cache = BitmapCache(max_bytes=len(two) + len(three))
    cache.add("v1", PLACE, A, A, one)
    cache.add("v2", PLACE, A, A, two)
    cache.add("v3", PLACE, A, A, three)
    assert set(cache.known("a", "", BLOCK, [A], A)) == {"v2", "v3"}


def test_an_answer_given_again_includes_versions_added_since() -> None:
    cache = BitmapCache()
    cache.add("v1", PLACE, A, A, data(1))
    assert set(cache.known("a", "", BLOCK, [A], A)) == {"v1"}
    cache.add("v2", PLACE, A, A, data(2))
    assert set(cache.known("a", "", BLOCK, [A], A)) == {"v1", "v2"}
    assert set(cache.known("a", "", BLOCK, None, None)) == {"v1", "v2"}
    cache.add("v3", PLACE, B, B, data(3))
    assert set(cache.known("a", "", BLOCK, None, None)) == {"v1", "v2", "v3"}


def test_an_eviction_leaves_the_answers_given_again() -> None:
    one, two = data(*range(100)), data(*range(200))
    cache = BitmapCache(max_bytes=len(two) + len(one))
    cache.add("v1", PLACE, A, A, one)
    cache.add("v2", PLACE, A, A, two)
    assert set(cache.known("a", "", BLOCK, [A], A)) == {"v1", "v2"}
    cache.add("v3", PLACE, A, A, two)  # evicts v1
    assert set(cache.known("a", "", BLOCK, [A], A)) == {"v2", "v3"}


def test_counts_of_unions_are_kept_by_versions() -> None:
    cache = BitmapCache()
    assert cache.count_of(("v1", "v2")) is None
    cache.keep_count(("v1", "v2"), 7.0)
    assert cache.count_of(("v1", "v2")) == 7.0
    assert cache.count_of(("v1", "v3")) is None


def test_an_answer_of_known_is_written_as_one_array_literal_once() -> None:
    cache = BitmapCache()
    cache.add("1:(0,1):10", PLACE, A, A, data(1))
    cache.add("1:(0,2):10", PLACE, A, A, data(2))
    answer = cache.known("a", "", BLOCK, [A], A)
    text = cache.known_text(answer)
    assert text == '{"1:(0,1):10","1:(0,2):10"}'
    assert cache.known_text(answer) is text
    assert cache.known_text({}) == "{}"
    # A group's rows as the reads' text key the count like a tuple of versions.
    cache.keep_count("1:(0,1):10 q 0 1 1:(0,2):10 q 900 1", 2.0)
    assert cache.count_of("1:(0,1):10 q 0 1 1:(0,2):10 q 900 1") == 2.0
