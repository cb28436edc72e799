"""Find what the contexts export: PROJECTIONS and REACTORS (docs/extending.md).

Which packages have them is declared in `lufy.contexts`; their `jobs` modules are imported by
the worker (`lufy.jobs.worker.import_job_modules`).
"""

from __future__ import annotations

import importlib

from lufy.contexts import CONTEXTS
from lufy.projections.base import Projection

__all__ = ["all_projections", "async_projections", "inline_projections"]


def all_projections() -> list[Projection]:
    """Every projection and reactor of every context, in `lufy.contexts` order (a context's
    projections, then its reactors); names are unique."""
    found: list[Projection] = []
    for context in CONTEXTS:
        if "projections" in context.has:
            found.extend(importlib.import_module(context.module("projections")).PROJECTIONS)
        if "reactors" in context.has:
            found.extend(importlib.import_module(context.module("reactors")).REACTORS)
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
