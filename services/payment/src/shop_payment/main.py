"""The payment service: idempotent payments, persisted and recovered after a crash (`shop-payment serve|migrate`)."""

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta

import httpx
from fastapi import FastAPI

import shopkit
from shop_payment.auth import JwksVerifier
from shop_payment.catalog import CatalogClient
from shop_payment.provider import SimulatedProvider
from shop_payment.routers import payments
from shop_payment.service import Payments
from shop_payment.settings import PaymentSettings
from shop_payment.state import PaymentState
from shopkit.credentials import presented

MIGRATIONS = "shop_payment:migrations"


def create_app(
    settings: PaymentSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    settings = settings or PaymentSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = shopkit.state_of(app)
        verifier = JwksVerifier(
            state.upstreams["users"],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            cache_seconds=settings.jwks_cache_seconds,
        )
        assert settings.database_url is not None
        # The provider is a remote system with its own connections: it never borrows from the payments' pool.
        provider_engine = shopkit.create_engine(
            settings.database_url.get_secret_value(),
            pool_size=settings.provider_pool_size,
            application_name="resilient-shop-provider",
        )
        service = Payments(
            state.database.sessionmaker,
            CatalogClient(state.upstreams["catalog"], presented(settings.credential)),
            SimulatedProvider(
                shopkit.sessionmaker(provider_engine), latency_seconds=settings.provider_latency_ms / 1000
            ),
            lease=timedelta(seconds=settings.pending_lease_seconds),
            pending_wait_seconds=settings.pending_wait_seconds,
        )
        state.own_state = PaymentState(verifier, service)

        async def finish_abandoned_payments() -> None:
            while await service.sweep_once():
                pass

        try:
            async with shopkit.periodically(
                finish_abandoned_payments, every=settings.sweep_interval_seconds, name="payment_sweep"
            ):
                yield
        finally:
            await provider_engine.dispose()

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
