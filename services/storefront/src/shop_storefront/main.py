"""The storefront: the public gateway under /api and the web shop (`shop-storefront serve`)."""

import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx
from fastapi import FastAPI
from starlette.middleware import Middleware

import shopkit
from shop_storefront import proxy
from shop_storefront.openapi import PublicApi
from shop_storefront.recovery import sources
from shop_storefront.recovery.watch import Watch
from shop_storefront.routers import api, docs, ops, recovery, shop
from shop_storefront.settings import StorefrontSettings
from shop_storefront.state import StorefrontState
from shopkit.credentials import Callers
from shopkit.http import replica_urls

CACHED_PATHS = frozenset({"/api/products"})
"""The product list: kept as long as catalog says it may be (`Cache-Control: max-age`), so a hit never calls it."""


def create_app(
    settings: StorefrontSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    """No database: readiness only asks whether this process can serve, whatever the state of the backends."""
    settings = settings or StorefrontSettings()
    upstreams = {"catalog": settings.catalog_url, "users": settings.users_url, "payment": settings.payment_url}
    cache = shopkit.ResponseCache(max_age=settings.cache_max_age_seconds, follow_max_age=True)
    caching = [Middleware(shopkit.ResponseCacheMiddleware, cache=cache, paths=CACHED_PATHS)]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = shopkit.state_of(app)
        proxy.instrument(state.upstreams)
        async with _recovery_watch(settings, upstreams) as watch:
            state.own_state = StorefrontState(
                settings,
                PublicApi(state.upstreams, version=app.version),
                Callers({"operator": settings.operator_credential}),
                watch,
            )
            yield

    return shopkit.create_app(
        settings,
        title="storefront",
        routers=[docs.router, api.router, ops.router, recovery.router, shop.router],
        lifespan=lifespan,
        upstreams=upstreams,
        transports=transports,
        middleware=caching if settings.cache_max_age_seconds > 0 else [],
        api_docs=False,
    )


def _in_cluster_api() -> str | None:
    """The API server the kubelet names to every pod (`KUBERNETES_SERVICE_HOST`); None outside a cluster."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


@contextlib.asynccontextmanager
async def _recovery_watch(settings: StorefrontSettings, upstreams: Mapping[str, str]) -> AsyncIterator[Watch]:
    """The recovery page's watch, with a session for the replicas' own endpoints (aiohttp's own API: a look's
    scrapes cost the storefront less than through httpx) and a client for the Kubernetes API (trusting the
    cluster's CA when it is mounted). Neither is used until the page is opened."""
    ca = settings.recovery_account_dir / "ca.crt"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca.exists() else True
    urls = {name: replica_urls(value) for name, value in upstreams.items()}
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=32), cookie_jar=aiohttp.DummyCookieJar()
        ) as replicas,
        httpx.AsyncClient(trust_env=False, timeout=2.0, verify=verify) as api,
    ):
        source = sources.choose(
            run_state=settings.recovery_run_state,
            kubernetes_api=settings.recovery_kubernetes_api or _in_cluster_api(),
            account_dir=settings.recovery_account_dir,
            urls={"storefront": [f"http://127.0.0.1:{settings.port}"], **urls},
            client=api,
        )
        yield Watch(source, replicas)


def serve() -> None:
    shopkit.run_service("shop-storefront", StorefrontSettings, create_app)
