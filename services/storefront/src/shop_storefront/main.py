"""The storefront: the public gateway under /api and the web shop (`shop-storefront serve`)."""

import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx
from fastapi import FastAPI

import shopkit
from shop_storefront import proxy
from shop_storefront.routers import api, shop
from shop_storefront.settings import StorefrontSettings


def create_app(
    settings: StorefrontSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    """No database: readiness only asks whether this process can serve, whatever the state of the backends."""
    settings = settings or StorefrontSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        proxy.instrument(app.state.http)
        yield

    return shopkit.create_app(
        settings,
        title="storefront",
        routers=[api.router, shop.router],
        lifespan=lifespan,
        upstreams={"catalog": settings.catalog_url, "users": settings.users_url, "payment": settings.payment_url},
        transports=transports,
    )


def serve() -> None:
    shopkit.run_service("shop-storefront", StorefrontSettings, create_app)
