"""Named SQL queries loaded once from `.sql` files (aiosql's `-- name:` convention).

Also locates the shipped data folders (`sql/`, `projections/`, `events/`): inside an installed
wheel they live under `lufy/_data/`; in a source checkout they are the repository's top level.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import LiteralString, cast

__all__ = ["Queries", "data_dir", "load_queries"]

_NAME_RE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def data_dir(name: str) -> Traversable:
    """The shipped folder `name` (one of `sql`, `projections`, `events`)."""
    packaged = resources.files("lufy").joinpath("_data", name)
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"lufy data folder {name!r} not found")


class Queries:
    """Attribute access to the named queries of one file."""

    def __init__(self, source: str, origin: str) -> None:
        self._queries: dict[str, LiteralString] = {}
        parts = _NAME_RE.split(source)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            text = body.strip().rstrip(";").strip()
            if name in self._queries:
                raise ValueError(f"{origin}: query {name!r} defined twice")
            # Queries come from files shipped with the package, never from user input.
            self._queries[name] = cast(LiteralString, text)

    def __getattr__(self, name: str) -> LiteralString:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(name) from None

    def names(self) -> list[str]:
        return list(self._queries)


@cache
def load_queries(package: str, filename: str = "queries.sql") -> Queries:
    """Queries from `filename` next to the modules of `package` (e.g. `lufy.eventstore`)."""
    source = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    return Queries(source, f"{package}/{filename}")
