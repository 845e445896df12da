"""The payment service: idempotent payments, persisted and recovered after a crash (`shop-payment serve|migrate`)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta

import httpx
import structlog
from fastapi import FastAPI

import shopkit
from shop_payment.auth import JwksVerifier
from shop_payment.catalog import CatalogClient
from shop_payment.provider import SimulatedProvider
from shop_payment.routers import payments
from shop_payment.service import Payments
from shop_payment.settings import PaymentSettings

MIGRATIONS = "shop_payment:migrations"

log = structlog.get_logger(__name__)


async def sweep_pending_payments(service: Payments, interval: float) -> None:
    while True:
        try:
            while await service.sweep_once():
                pass
        except Exception as exc:  # catalog or the database may be briefly away; the next round tries again
            log.warning("payment_sweep_failed", error_type=type(exc).__name__)
        await asyncio.sleep(interval)


def create_app(
    settings: PaymentSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    settings = settings or PaymentSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.verifier = JwksVerifier(
            app.state.http["users"],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            cache_seconds=settings.jwks_cache_seconds,
        )
        service = Payments(
            app.state.sessionmaker,
            CatalogClient(app.state.http["catalog"]),
            SimulatedProvider(app.state.sessionmaker, latency_seconds=settings.provider_latency_ms / 1000),
            lease=timedelta(seconds=settings.pending_lease_seconds),
            lock_timeout_seconds=settings.lock_timeout_seconds,
        )
        app.state.payments = service
        sweeper = asyncio.create_task(sweep_pending_payments(service, settings.sweep_interval_seconds))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    return shopkit.create_app(
        settings,
        title="payment",
        routers=[payments.router],
        lifespan=lifespan,
        migrations=MIGRATIONS,
        upstreams={"catalog": settings.catalog_url, "users": settings.users_url},
        transports=transports,
    )


def serve() -> None:
    shopkit.run_service("shop-payment", PaymentSettings, create_app, migrations=MIGRATIONS)
