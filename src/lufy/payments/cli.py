"""`lufy royalties statement ...` and `lufy payments resync ...`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

__all__ = ["payments", "royalties"]

T = TypeVar("T")


def _run(work: Callable[[Any], Awaitable[T]]) -> T:
    from lufy.bootstrap import run_with_container  # cheap CLI start: every service, ~330 ms

    return run_with_container(work)


@click.group()
def royalties() -> None:
    """Royalty statements, computed from the log."""


@royalties.command("statement")
@click.argument("month")
@click.option(
    "--model",
    type=click.Choice(["pro-rata", "user-centric"]),
    default="pro-rata",
    show_default=True,
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
def statement(month: str, model: str, fmt: str) -> None:
    """The month's (YYYY-MM, UTC) royalty statement per artist, in integer minor units."""
    # cheap CLI start: ~25 ms
    from lufy.payments.royalties import month_statements, parse_month, statement_rows

    try:
        first = parse_month(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="MONTH") from None

    async def work(container: Any) -> Any:
        share = container.settings.ROYALTY_ARTIST_SHARE
        return share, await month_statements(container.db, first, model, share)  # type: ignore[arg-type]

    share, statements = _run(work)
    if fmt == "json":
        document = {
            "month": first.strftime("%Y-%m"),
            "model": model,
            "artist_share": str(share),
            "statements": [
                {
                    "currency": s.currency,
                    "net_revenue_minor": s.net_revenue_minor,
                    "pool_minor": s.pool_minor,
                    "unallocated_minor": s.unallocated_minor,
                    "artists": [
                        {
                            "artist_id": str(a.artist_id),
                            "streams": float(a.streams),
                            "amount_minor": a.amount_minor,
                        }
                        for a in s.artists
                    ],
                }
                for s in statements
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return
    out = io.StringIO()
    fields = ["month", "model", "currency", "artist_id", "streams", "amount_minor"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(statement_rows(first, statements))
    click.echo(out.getvalue(), nl=False)


@click.group()
def payments() -> None:
    """Stripe payments."""


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint="--since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@payments.command("resync")
@click.option("--since", "since_text", metavar="DATE", help="only events created since then")
def resync(since_text: str | None) -> None:
    """Append the Stripe events that webhooks missed (idempotent; Stripe keeps 30 days)."""

    since = _since(since_text)

    async def work(container: Any) -> Any:
        return await container.payments.resync(since)

    report = _run(work)
    click.echo(
        f"listed {report.listed} Stripe events: {report.appended} appended, "
        f"{report.duplicates} already in the log, {report.ignored} of types Lufy ignores",
        err=True,
    )
