"""The cyclic garbage collector's young threshold while a reader catches up.

A catching-up reader decodes a page at a time (one msgspec call, codec.decode_page) and its
caller holds the page while it applies it. The objects of a page that the collector tracks (every
`uuid.UUID`, and a payload Struct that holds one or a container) are all alive whenever a young
collection runs in the middle of that, so with CPython's default threshold (a young collection
every 700 tracked allocations, net of deallocations) every page is scanned, promoted to the older
generations and, every few pages, makes the collector scan the whole heap: measured at 2-6 µs per
event, more than decoding it (docs/benchmarks.md, issue 18). None of them needs the collector:
they form no reference cycles and are freed by reference counting when the page is dropped, which
also takes them off the young count.

So while at least one reader of the process is catching up (Subscription's read-ahead), the young
threshold is at least `YOUNG`: a page and what its consumer keeps stay well below it, and the
collector still runs, only after that many net allocations (garbage cycles wait longer: bounded
by the threshold). The threshold is put back when the last catch-up ends, unless something else
changed it meanwhile.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["YOUNG", "hold", "release"]

# A read-ahead's page is 5000 events (Subscription.read_ahead_events) with ~4 tracked objects
# each in the benchmark (more with list or dict payloads), and two pages can be alive at once.
YOUNG = 100_000

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None  # the threshold before the first hold, when raised


def hold() -> None:
    """A catch-up starts: raise the young threshold to YOUNG if it is lower."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            young, middle, old = gc.get_threshold()
            _saved = None
            if 0 < young < YOUNG:
                _saved = (young, middle, old)
                gc.set_threshold(YOUNG, middle, old)
        _holders += 1


def release() -> None:
    """A catch-up ended (one `release` per `hold`): the last one restores the threshold."""
    global _holders, _saved
    with _lock:
        _holders -= 1
        if _holders > 0 or _saved is None:
            return
        young, middle, old = _saved
        _saved = None
        if gc.get_threshold() == (YOUNG, middle, old):
            gc.set_threshold(young, middle, old)
