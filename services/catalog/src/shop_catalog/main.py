"""The catalog service: products and stock reservations (`shop-catalog serve|migrate`)."""

import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx
from fastapi import FastAPI
from starlette.middleware import Middleware

import shopkit
from shop_catalog import freshness, service
from shop_catalog.routers import inventory, products, reservations
from shop_catalog.settings import CatalogSettings
from shop_catalog.state import CatalogState

MIGRATIONS = "shop_catalog:migrations"


def create_app(
    settings: CatalogSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    settings = settings or CatalogSettings()
    cache = shopkit.ResponseCache(max_age=settings.cache_max_age_seconds, enabled=False)
    cached = settings.cache_enabled and settings.cache_max_age_seconds > 0 and settings.database_url is not None
    catalog = CatalogState(settings, cache)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        maker = shopkit.state_of(app).database.sessionmaker

        async def expire_reservations() -> None:
            async with maker() as session, session.begin():
                await service.expire_due(session)

        async with contextlib.AsyncExitStack() as stack:
            if cached:
                assert settings.database_url is not None
                catalog.product_listener = freshness.Listener(settings.database_url.get_secret_value(), cache)
                await stack.enter_async_context(freshness.invalidated_by_notifications(catalog.product_listener))
            await stack.enter_async_context(
                shopkit.periodically(
                    expire_reservations, every=settings.sweep_interval_seconds, name="reservation_sweep"
                )
            )
            yield

    app = shopkit.create_app(
        settings,
        title="catalog",
        routers=[products.router, inventory.router, reservations.router],
        lifespan=lifespan,
        migrations=MIGRATIONS,
        transports=transports,
        middleware=[Middleware(shopkit.ResponseCacheMiddleware, cache=cache, paths={"/products"})] if cached else [],
    )
    shopkit.state_of(app).own_state = catalog
    return app


def serve() -> None:
    shopkit.run_service("shop-catalog", CatalogSettings, create_app, migrations=MIGRATIONS)
