"""`lufy users`: operator commands for accounts (CONTRACT.md section 2)."""

from __future__ import annotations

import asyncio
import sys

import click

from lufy.accounts.schemas import User

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
    from lufy.accounts.service import accounts_service
    from lufy.bootstrap import bootstrap

    container = bootstrap(pool_size=2)
    await container.start()
    try:
        return await accounts_service(container).register(
            email=email,
            password=password,
            role=role,
            display_name=display_name,
            verified=True,
            via="cli",
        )
    finally:
        await container.stop()
