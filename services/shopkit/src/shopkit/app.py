"""The app factory every service is built with."""

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import httpx
import structlog
from fastapi import APIRouter, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware

from shopkit.admission import AdmissionMiddleware
from shopkit.chaos import ChaosState, chaos_router
from shopkit.db import autocommit_engine, create_engine, sessionmaker
from shopkit.http import create_client
from shopkit.inputs import TextOnlyUrlMiddleware
from shopkit.limits import BodyLimitMiddleware
from shopkit.logging import RequestContextMiddleware
from shopkit.metrics import install_metrics
from shopkit.migrations import current_revision, head_revision
from shopkit.openapi import install_openapi
from shopkit.probes import (
    CloseWhenUnreadyMiddleware,
    ProbeState,
    ReadinessCheck,
    cgroup_memory_limit,
    memory_budget,
    probes_router,
)
from shopkit.problems import install_problem_handlers
from shopkit.settings import ServiceSettings
from shopkit.state import Database, ServiceState, Upstreams, store_state

ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

log = structlog.get_logger(__name__)


def database_check(engine: AsyncEngine, expected_revision: str | None) -> ReadinessCheck:
    """Readiness of the database as this process sees it. `engine` should be the probe's own (one connection):
    a probe waiting behind the requests' pool would call a busy service unready, and on Kubernetes take every
    busy replica out of the Service at once."""

    async def check() -> str | None:
        try:
            async with asyncio.timeout(1.0), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                revision = await current_revision(connection)
        except Exception as exc:
            return f"database unavailable ({type(exc).__name__})"
        if revision != expected_revision:
            return f"migrations not applied (database at {revision}, code at {expected_revision})"
        return None

    return check


def create_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter],
    lifespan: ServiceLifespan | None = None,
    migrations: str | None = None,
    upstreams: Mapping[str, str] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    middleware: Sequence[Middleware] = (),
    api_docs: bool = True,
) -> FastAPI:
    """Builds a service. Nothing connects here; the lifespan opens the engine and the HTTP clients.

    `migrations` names the service's Alembic scripts (`"shop_catalog:migrations"`): readiness then requires the
    database to be at their head. `upstreams` maps a name to a base URL; the lifespan opens one client per name
    in the state's `upstreams` (`transports` lets tests route a name to an in-process app). `middleware` runs innermost,
    inside the metrics, request logging and body limit, so what it answers is still counted and logged.
    `api_docs=False` leaves `/openapi.json` and `/docs` to the service (the storefront publishes the whole shop's).
    """
    limit = settings.memory_budget_bytes or cgroup_memory_limit()
    probes = ProbeState(
        memory_budget=memory_budget(settings.memory_budget_bytes, settings.memory_budget_fraction, limit),
        memory_limit=limit,
    )
    state = ServiceState(settings, probes, chaos=ChaosState(probes) if settings.chaos_enabled else None)

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if settings.database_url is not None:
                url = settings.database_url.get_secret_value()
                engine = create_engine(url, pool_size=settings.db_pool_size)
                stack.push_async_callback(engine.dispose)
                probe_engine = create_engine(url, pool_size=1, application_name="resilient-shop-probe", pre_ping=True)
                stack.push_async_callback(probe_engine.dispose)
                maker = sessionmaker(engine)
                state.database = Database(engine, maker, autocommit_engine(engine))
                expected = head_revision(migrations) if migrations else None
                probes.readiness_checks[:] = [database_check(probe_engine, expected)]
            if state.chaos is not None:
                stack.callback(state.chaos.clear)
            clients: dict[str, httpx.AsyncClient] = {}
            for name, base_url in (upstreams or {}).items():
                transport = (transports or {}).get(name)
                client = create_client(
                    base_url,
                    timeout=settings.http_timeout_seconds,
                    transport=transport,
                    max_connections=settings.upstream_max_connections,
                )
                clients[name] = await stack.enter_async_context(client)
            state.upstreams = Upstreams(clients)
            if lifespan is not None:
                await stack.enter_async_context(lifespan(app))
            # What start-up made (modules, routes, pools) lives as long as the process: frozen out of the collector's
            # way, a full collection under load scans only what requests allocate.
            gc.freeze()
            log.info("service_started", service=title, memory_budget=probes.memory_budget)
            yield
            log.info("service_stopping", service=title)

    app = FastAPI(
        title=title,
        lifespan=app_lifespan,
        openapi_url="/openapi.json" if api_docs else None,
        docs_url="/docs" if api_docs else None,
        redoc_url=None,
    )
    store_state(app, state)
    install_problem_handlers(app)
    install_openapi(app)
    for extra in reversed(middleware):
        app.add_middleware(extra.cls, *extra.args, **extra.kwargs)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        AdmissionMiddleware, max_in_flight=settings.max_in_flight, timeout_seconds=settings.request_timeout_seconds
    )
    app.add_middleware(TextOnlyUrlMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(CloseWhenUnreadyMiddleware, probes=probes)
    install_metrics(app, probes)
    app.include_router(probes_router(probes))
    if state.chaos is not None:
        assert settings.chaos_token is not None  # the settings refuse chaos without a token
        app.include_router(chaos_router(state.chaos, settings.chaos_token))
        log.warning("chaos_enabled", service=title)
    for router in routers:
        app.include_router(router)
    return app
