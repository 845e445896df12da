"""The catalog service: products and stock reservations (`shop-catalog serve|migrate`)."""

import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import shopkit
from shop_catalog import service
from shop_catalog.routers import products, reservations
from shop_catalog.settings import CatalogSettings

MIGRATIONS = "shop_catalog:migrations"


def create_app(
    settings: CatalogSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    settings = settings or CatalogSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker

        async def expire_reservations() -> None:
            async with maker() as session, session.begin():
                await service.expire_due(session)

        async with shopkit.periodically(
            expire_reservations, every=settings.sweep_interval_seconds, name="reservation_sweep"
        ):
            yield

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
