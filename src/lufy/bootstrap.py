"""The one composition root: builds Lufy's services from settings.

The web app, the projector, the workers, the CLI and the tests all call `bootstrap()`, which
builds every service eagerly and hands back one typed `Container`. Every keyword parameter
defaults to the real adapter; tests pass fakes (a bucket, a tier resolver, a clock'd service)
or per-test URLs by keyword. Nothing is looked up or created later: a service that needs
another receives it here, in its constructor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis

from lufy.accounts.service import AccountService
from lufy.analytics.dashboard import Dashboard
from lufy.analytics.ingest import Ingestor
from lufy.catalog.grants import GrantConnections
from lufy.catalog.service import CatalogService, TierResolver
from lufy.db import Database
from lufy.eventstore import EventStore, Notifier
from lufy.media.storage import BlobStorage, storage_from_settings
from lufy.payments.entitlements import resolver
from lufy.payments.service import PaymentsService
from lufy.readdb import read_database
from lufy.settings import Settings, get_settings

__all__ = ["Container", "bootstrap", "run_with_container"]

T = TypeVar("T")


@dataclass(eq=False)
class Container:
    """Everything a process needs, built once by `bootstrap`.

    `read_db` is the primary itself unless a read replica is configured (`lufy.readdb`).
    """

    settings: Settings
    db: Database
    store: EventStore
    redis: aioredis.Redis
    read_db: Database
    storage: BlobStorage
    accounts: AccountService
    catalog: CatalogService
    payments: PaymentsService
    ingestor: Ingestor
    dashboard: Dashboard

    async def start(self) -> None:
        await self.db.open()
        if self.store.notifier is not None:
            await self.store.notifier.start()

    async def stop(self) -> None:
        if self.store.notifier is not None:
            await self.store.notifier.stop()
        await self.db.close()
        await self.redis.aclose()
        if self.read_db is not self.db:
            await self.read_db.close()
        await self.payments.aclose()
        if self.catalog.grants is not None:
            await self.catalog.grants.aclose()


def bootstrap(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    store: EventStore | None = None,
    redis_client: aioredis.Redis | None = None,
    storage: BlobStorage | None = None,
    tier_resolver: TierResolver | None = None,
    pool_size: int = 10,
) -> Container:
    settings = settings or get_settings()
    db = db or Database(
        settings.DATABASE_URL,
        max_size=pool_size,
        prepare=settings.DATABASE_PREPARED_STATEMENTS,
    )
    # The notifier wakes log readers after commits from a connection of its own.
    store = store or EventStore(notifier=Notifier(settings.DATABASE_URL))
    storage = storage or storage_from_settings(settings)
    # Dashboard reads may be served by the read replica.
    read_db = read_database(settings, db)
    return Container(
        settings=settings,
        db=db,
        store=store,
        redis=redis_client
        or aioredis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0
        ),
        read_db=read_db,
        storage=storage,
        accounts=AccountService(db=db, store=store, settings=settings),
        catalog=CatalogService(
            db=db,
            store=store,
            storage=storage,
            settings=settings,
            tier_resolver=tier_resolver or _tier_resolver(settings),
            grants=GrantConnections(db),
        ),
        payments=PaymentsService(db=db, store=store, settings=settings),
        ingestor=Ingestor(db, store, sample_rate=settings.ANALYTICS_SAMPLE_RATE),
        dashboard=Dashboard(read_db),
    )


def run_with_container(work: Callable[[Container], Awaitable[T]], *, pool_size: int = 2) -> T:
    """For a command: `work(container)` on a container built from the settings, with its
    primary pool open, on a fresh event loop; everything is closed after."""

    async def main() -> T:
        container = bootstrap(get_settings(), pool_size=pool_size)
        await container.db.open(wait=True)
        try:
            return await work(container)
        finally:
            await container.stop()

    return asyncio.run(main())


def _tier_resolver(settings: Settings) -> TierResolver | None:
    """With Stripe configured, a stream token's tier follows the listener's entitlements
    (free: 64 and 128 kbit/s; premium: 256 as well); without, everyone keeps every rendition
    (None: the catalog's default)."""
    if settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET:
        return resolver(settings.PAYMENTS_GRACE_DAYS)
    return None
