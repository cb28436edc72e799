"""State that an upper layer keeps per container (the rate limiter, the readiness probe, the
metrics scrape cache): the container, built below the web layer, cannot name their types, so
each is attached to it here instead, weakly, and goes with it."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Attached"]

T = TypeVar("T")


class Attached(Generic[T]):
    """One `T` per container, made by `make(container)` on first use."""

    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._values: weakref.WeakKeyDictionary[Any, T] = weakref.WeakKeyDictionary()

    def of(self, container: Any) -> T:
        value = self._values.get(container)
        if value is None:
            value = self._values[container] = self._make(container)
        return value

    def set(self, container: Any, value: T) -> None:
        self._values[container] = value
