"""The storefront: the public gateway under /api and the web shop (`shop-storefront serve`)."""

import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx
from fastapi import FastAPI
from starlette.middleware import Middleware

import shopkit
from shop_storefront import proxy
from shop_storefront.openapi import PublicApi
from shop_storefront.routers import api, docs, ops, shop
from shop_storefront.settings import StorefrontSettings
from shop_storefront.state import StorefrontState
from shopkit.credentials import Callers

CACHED_PATHS = frozenset({"/api/products"})
"""The product list: kept as long as catalog says it may be (`Cache-Control: max-age`), so a hit never calls it."""


def create_app(
    settings: StorefrontSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    """No database: readiness only asks whether this process can serve, whatever the state of the backends."""
    settings = settings or StorefrontSettings()
    cache = shopkit.ResponseCache(max_age=settings.cache_max_age_seconds, follow_max_age=True)
    caching = [Middleware(shopkit.ResponseCacheMiddleware, cache=cache, paths=CACHED_PATHS)]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = shopkit.state_of(app)
        proxy.instrument(state.upstreams)
        state.own_state = StorefrontState(
            settings,
            PublicApi(state.upstreams, version=app.version),
            Callers({"operator": settings.operator_credential}),
        )
        yield

    return shopkit.create_app(
        settings,
        title="storefront",
        routers=[docs.router, api.router, ops.router, shop.router],
        lifespan=lifespan,
        upstreams={"catalog": settings.catalog_url, "users": settings.users_url, "payment": settings.payment_url},
        transports=transports,
        middleware=caching if settings.cache_max_age_seconds > 0 else [],
        api_docs=False,
    )


def serve() -> None:
    shopkit.run_service("shop-storefront", StorefrontSettings, create_app)
