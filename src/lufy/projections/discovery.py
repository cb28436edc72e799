"""Find what the contexts export: PROJECTIONS and REACTORS (docs/extending.md).

Their `jobs` modules are found by the worker (`lufy.jobs.worker.import_job_modules`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lufy.eventstore.codec import CONTEXTS
from lufy.projections.base import Projection

__all__ = ["all_projections", "async_projections", "inline_projections"]


def _optional(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this context has no such module" is normal; a broken import inside it is not.
        if exc.name is not None and module_name.startswith(exc.name):
            return None
        raise


def all_projections() -> list[Projection]:
    """Every projection and reactor of every context, in CONTEXTS order; names are unique."""
    found: list[Projection] = []
    for context in CONTEXTS:
        for module_name, attr in (
            (f"lufy.{context}.projections", "PROJECTIONS"),
            (f"lufy.{context}.reactors", "REACTORS"),
        ):
            module = _optional(module_name)
            if module is not None:
                found.extend(getattr(module, attr, ()))
    names = [p.name for p in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"projection name used twice: {duplicates[0]}")
    return found


def async_projections() -> list[Projection]:
    """What the projector runs: async projections and reactors."""
    return [p for p in all_projections() if not p.inline]


def inline_projections() -> list[Projection]:
    return [p for p in all_projections() if p.inline]
