"""The young GC threshold a catching-up reader raises (eventstore/younggc.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from lufy.eventstore import younggc


@pytest.fixture(autouse=True)
def threshold() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield 700, 10, 10
    gc.set_threshold(*before)


def test_a_hold_raises_the_young_threshold_and_its_release_puts_it_back() -> None:
    younggc.hold()
    assert gc.get_threshold() == (younggc.YOUNG, 10, 10)
    younggc.release()
    assert gc.get_threshold() == (700, 10, 10)


def test_the_threshold_goes_back_only_when_the_last_hold_is_released() -> None:
    younggc.hold()
    younggc.hold()
    younggc.release()
    assert gc.get_threshold() == (younggc.YOUNG, 10, 10)
    younggc.release()
    assert gc.get_threshold() == (700, 10, 10)
    younggc.hold()  # and again, from the start
    assert gc.get_threshold() == (younggc.YOUNG, 10, 10)
    younggc.release()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_is_left_alone() -> None:
    gc.set_threshold(younggc.YOUNG * 2, 5, 5)
    younggc.hold()
    assert gc.get_threshold() == (younggc.YOUNG * 2, 5, 5)
    younggc.release()
    assert gc.get_threshold() == (younggc.YOUNG * 2, 5, 5)


def test_a_threshold_changed_by_someone_else_meanwhile_is_kept() -> None:
    younggc.hold()
    gc.set_threshold(1234, 10, 10)
    younggc.release()
    assert gc.get_threshold() == (1234, 10, 10)
