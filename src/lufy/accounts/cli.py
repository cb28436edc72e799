"""`lufy users`: operator commands for accounts (CONTRACT.md section 2)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from lufy.accounts.schemas import User
from lufy.privacy.erasure import forget as forget_person
from lufy.privacy.export import export_person

__all__ = ["users"]


@click.group("users")
def users() -> None:
    """Accounts: create users (the first admin, operators)."""


@users.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["listener", "artist", "admin"]),
    required=True,
    help="the account's role",
)
@click.option("--name", "display_name", default=None, help="display name (default: from EMAIL)")
def create(email: str, role: str, display_name: str | None) -> None:
    """Create a verified user; the password is read from stdin (prompted on a terminal)."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("no password on stdin")
    user = asyncio.run(_create(email, password, role, display_name))
    click.echo(f"created {user.role} {user.email}", err=True)
    click.echo(str(user.id))


async def _create(email: str, password: str, role: str, display_name: str | None) -> User:
    from lufy.bootstrap import bootstrap  # cheap CLI start: every service, ~330 ms

    container = bootstrap(pool_size=2)
    await container.start()
    try:
        return await container.accounts.register(
            email=email,
            password=password,
            role=role,
            display_name=display_name,
            verified=True,
            via="cli",
        )
    finally:
        await container.stop()


@users.command("forget")
@click.argument("who", metavar="EMAIL|ID")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def forget(who: str, yes: bool) -> None:
    """Erase a person: personal data crypto-shredded, sessions revoked, an artist's tracks and
    media deleted (idempotent: run it again to finish an interrupted erasure)."""
    if not yes and not click.confirm(f"Erase {who} for good?", default=False):
        raise click.ClickException("not erased (confirm, or pass --yes)")
    report = asyncio.run(_forget(who))
    state = "erased" if report.erased_now else "already erased"
    click.echo(f"{state} {report.user_id}; tracks deleted: {report.tracks_deleted}", err=True)
    click.echo(str(report.user_id))


async def _forget(who: str) -> Any:
    from lufy.bootstrap import bootstrap  # cheap CLI start: every service, ~330 ms

    container = bootstrap(pool_size=2)
    await container.start()
    try:
        user = await container.accounts.find_user(who)
        return await forget_person(container, user.id, via="cli")
    finally:
        await container.stop()


@users.command("export")
@click.argument("who", metavar="EMAIL|ID")
def export(who: str) -> None:
    """Print everything Lufy holds about a person as JSON."""
    sys.stdout.buffer.write(asyncio.run(_export(who)) + b"\n")


async def _export(who: str) -> bytes:
    from lufy.bootstrap import bootstrap  # cheap CLI start: every service, ~330 ms

    container = bootstrap(pool_size=2)
    await container.start()
    try:
        user = await container.accounts.find_user(who)
        return await export_person(container, user.id)
    finally:
        await container.stop()
