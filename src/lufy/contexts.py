"""The packages that plug into Lufy, listed once, as data (docs/extending.md).

Each entry names a package under `lufy` and says which of the conventional modules it has; the
code that picks them up (the event codec, projection discovery, the worker, the web app, the
command line) reads this tuple and imports `lufy.<name>.<module>` itself. This module is core:
it imports nothing of the packages it lists, so the event store may read it.

Order matters and is the order everything is picked up in: event types are registered,
projections run and jobs modules are imported in this order, and the HTTP edges' routes (so the
OpenAPI document) and middleware follow it (`lufy.web.app` places its own edges among them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CONTEXTS", "Context", "Module", "modules"]

# The conventional modules a package may have (`Context.has`).
Module = Literal["events", "projections", "reactors", "jobs"]


@dataclass(frozen=True, slots=True)
class Context:
    """A package `lufy.<name>` and the conventional modules it has (docs/extending.md)."""

    name: str
    # Which of the conventional modules it has: `events` (EVENTS and optionally UPCASTERS, for
    # the event codec), `projections` (PROJECTIONS) and `reactors` (REACTORS), run by the
    # projector, and `jobs` (its dramatiq actors, imported by `lufy worker`).
    has: tuple[Module, ...] = ()
    # Its HTTP edges, modules under the package exporting ROUTES and optionally MIDDLEWARE.
    api: tuple[str, ...] = ()
    # Top-level `lufy` commands: name -> "module:attribute" of a click command under the package.
    cli: Mapping[str, str] = field(default_factory=dict)
    # Commands added to another package's group: group -> ("module:attribute", ...).
    cli_extensions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def module(self, name: str) -> str:
        """The dotted name of one of its modules (`module("events")` -> `lufy.<name>.events`),
        or of a command (`module("cli:users")` -> `lufy.<name>.cli:users`)."""
        return f"lufy.{self.name}.{name}"


CONTEXTS: tuple[Context, ...] = (
    # Operator and maintenance events (projection rebuilds and skips, privacy's sealing, key
    # rotation and retention); a runtime, not a context.
    Context("operations", has=("events",)),
    Context(
        "accounts",
        has=("events", "projections", "reactors", "jobs"),
        api=("api",),
        cli={"users": "cli:users"},
    ),
    Context("catalog", has=("events", "projections", "reactors", "jobs"), api=("api",)),
    # The upload and delivery edge (`/media/...`); a runtime, not a context.
    Context("media", api=("api",)),
    Context(
        "analytics",
        has=("events", "projections", "jobs"),
        api=("api", "dashboard_api"),
        cli={"analytics": "cli:analytics"},
        cli_extensions={"events": ("cli:events_import", "cli:events_export")},
    ),
    Context(
        "payments",
        has=("events", "projections"),
        api=("api",),
        cli={"payments": "cli:payments", "royalties": "cli:royalties"},
    ),
    # Erasure and export: its routes are among /api/auth (`accounts.api`), its commands among
    # `lufy users` (`accounts.cli`); it has no events or read models of its own.
    Context("privacy"),
)


def modules(kind: Module) -> list[str]:
    """The dotted names of the `kind` modules of every listed package that has one, in order."""
    return [c.module(kind) for c in CONTEXTS if kind in c.has]
