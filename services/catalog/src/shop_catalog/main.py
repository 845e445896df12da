"""The catalog service: products and stock reservations (`shop-catalog serve|migrate`)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import shopkit
from shop_catalog import service
from shop_catalog.routers import products, reservations
from shop_catalog.settings import CatalogSettings

MIGRATIONS = "shop_catalog:migrations"

log = structlog.get_logger(__name__)


async def sweep_expired_reservations(maker: async_sessionmaker[AsyncSession], interval: float) -> None:
    while True:
        try:
            async with maker() as session, session.begin():
                await service.expire_due(session)
        except Exception as exc:  # the database may be briefly away; the next round tries again
            log.warning("reservation_sweep_failed", error_type=type(exc).__name__)
        await asyncio.sleep(interval)


def create_app(
    settings: CatalogSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    settings = settings or CatalogSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(
            sweep_expired_reservations(app.state.sessionmaker, settings.sweep_interval_seconds)
        )
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    return shopkit.create_app(
        settings,
        title="catalog",
        routers=[products.router, reservations.router],
        lifespan=lifespan,
        migrations=MIGRATIONS,
        transports=transports,
    )


def serve() -> None:
    shopkit.run_service("shop-catalog", CatalogSettings, create_app, migrations=MIGRATIONS)
