"""`lufy.contexts` lists the packages that plug in, and says truly which modules each has."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import click
import pytest

import lufy
from lufy.cli import _EXTENSIONS, _LAZY
from lufy.contexts import CONTEXTS, Context, modules

SRC = Path(lufy.__file__).parent
KINDS = ("events", "projections", "reactors", "jobs")


def test_each_package_is_listed_once() -> None:
    names = [c.name for c in CONTEXTS]
    assert len(names) == len(set(names))
    assert all((SRC / name / "__init__.py").is_file() for name in names)


@pytest.mark.parametrize("context", CONTEXTS, ids=lambda c: c.name)
def test_has_says_which_conventional_modules_a_package_has(context: Context) -> None:
    for kind in KINDS:
        present = importlib.util.find_spec(context.module(kind)) is not None
        assert present == (kind in context.has), context.module(kind)


def test_no_package_has_a_conventional_module_that_no_entry_declares() -> None:
    declared = {name for kind in KINDS for name in modules(kind)}
    found = {
        f"lufy.{path.parent.name}.{path.stem}"
        for kind in KINDS
        for path in SRC.glob(f"*/{kind}.py")
        # A runtime's own module of the same name (`lufy.projections.*`, `lufy.jobs.*`) is
        # not a context's.
        if path.parent.name not in ("projections", "jobs")
    }
    assert found - declared == set()


def test_declared_modules_export_what_their_readers_take() -> None:
    exports = {"events": "EVENTS", "projections": "PROJECTIONS", "reactors": "REACTORS"}
    for kind, attribute in exports.items():
        for name in modules(kind):
            assert getattr(importlib.import_module(name), attribute), name
    for context in CONTEXTS:
        for name in context.api:
            assert hasattr(importlib.import_module(context.module(name)), "ROUTES")


def test_the_order_is_the_order_event_types_and_jobs_are_picked_up_in() -> None:
    assert modules("events")[:2] == ["lufy.operations.events", "lufy.accounts.events"]
    assert modules("jobs") == ["lufy.accounts.jobs", "lufy.catalog.jobs", "lufy.analytics.jobs"]


def test_every_context_command_is_a_click_command_of_the_cli() -> None:
    for context in CONTEXTS:
        for name, target in context.cli.items():
            assert _LAZY[name] == context.module(target)
        extensions = [t for targets in context.cli_extensions.values() for t in targets]
        targets = [*context.cli.values(), *extensions]
        for target in targets:
            module_name, attribute = context.module(target).split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
    context_commands = [name for c in CONTEXTS for name in c.cli]
    assert len(context_commands) == len(set(context_commands))
    assert _EXTENSIONS == {
        "events": ["lufy.analytics.cli:events_import", "lufy.analytics.cli:events_export"]
    }
