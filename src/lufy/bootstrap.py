"""The one composition root: builds Lufy's services from settings.

The web app, the workers, the CLI and the tests all call `bootstrap()`; every parameter defaults
to the real adapter, and tests pass fakes or per-test URLs by keyword.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from lufy.db import Database
from lufy.eventstore import EventStore, Notifier
from lufy.settings import Settings, get_settings

__all__ = ["Container", "bootstrap"]


@dataclass
class Container:
    """Everything a process needs. Contexts add their services as attributes in `bootstrap`."""

    settings: Settings
    db: Database
    store: EventStore
    redis: aioredis.Redis
    services: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> None:
        await self.db.open()
        if self.store.notifier is not None:
            await self.store.notifier.start()

    async def stop(self) -> None:
        if self.store.notifier is not None:
            await self.store.notifier.stop()
        await self.db.close()
        await self.redis.aclose()
        # Services holding connections of their own (the rate limiter's Redis) expose aclose().
        for service in list(self.services.values()):
            aclose = getattr(service, "aclose", None)
            if aclose is not None:
                await aclose()


def bootstrap(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    store: EventStore | None = None,
    redis_client: aioredis.Redis | None = None,
    pool_size: int = 10,
) -> Container:
    settings = settings or get_settings()
    container = Container(
        settings=settings,
        db=db
        or Database(
            settings.DATABASE_URL,
            max_size=pool_size,
            prepare=settings.DATABASE_PREPARED_STATEMENTS,
        ),
        # The notifier wakes log readers after commits from a connection of its own.
        store=store or EventStore(notifier=Notifier(settings.DATABASE_URL)),
        redis=redis_client
        or aioredis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0
        ),
    )
    _add_accounts(container)
    _add_entitlements(container)
    return container


def _add_accounts(container: Container) -> None:
    # Imported here: accounts imports web modules that import this one.
    from lufy.accounts.service import AccountService

    container.services["accounts"] = AccountService(
        db=container.db, store=container.store, settings=container.settings
    )


def _add_entitlements(container: Container) -> None:
    """With Stripe configured, a stream token's tier follows the listener's entitlements
    (free: 64 and 128 kbit/s; premium: 256 as well); without, everyone keeps every rendition."""
    settings = container.settings
    if settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET:
        from lufy.payments.entitlements import resolver

        container.services["catalog.tier_resolver"] = resolver(settings.PAYMENTS_GRACE_DAYS)
