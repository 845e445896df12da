"""Payment verifies users' tokens offline: the JWKS is fetched once and cached, so users can go down."""

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx

from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from shop_payment.main import create_app as create_payment
from shop_payment.settings import PaymentSettings
from shop_users.main import create_app as create_users
from shop_users.settings import UsersSettings
from tests.conftest import FaultInjector, client_for, register_and_login, running
from tests.payment.test_payments import assert_problem, payment_body


async def test_tokens_are_verified_from_the_cached_jwks_while_users_is_down(
    database_urls: Mapping[str, str],
) -> None:
    catalog = create_catalog(CatalogSettings(database_url=database_urls["catalog"]))
    users = create_users(UsersSettings(database_url=database_urls["users"]))
    to_users = FaultInjector(httpx.ASGITransport(app=users))
    payment = create_payment(
        PaymentSettings(database_url=database_urls["payment"], provider_latency_ms=0),
        transports={"catalog": httpx.ASGITransport(app=catalog), "users": to_users},
    )
    async with (
        running(catalog),
        running(users),
        running(payment),
        client_for(users, "users") as users_client,
        client_for(payment, "payment") as client,
    ):
        auth = await register_and_login(users_client)
        assert (await client.get("/payments", headers=auth)).status_code == 200
        fetched = len(to_users.requests)
        to_users.faults = [httpx.ConnectError("users is down")] * 10  # as when all its pods are gone

        for key in ("while-down-1", "while-down-2"):
            paid = await client.post("/payments", json=payment_body(), headers={**auth, "Idempotency-Key": key})
            assert paid.status_code == 201
        assert len(to_users.requests) == fetched  # no JWKS request at all while the keys are cached

        forged = auth["Authorization"][:-4] + "AAAA"
        assert_problem(await client.get("/payments", headers={"Authorization": forged}), 401)


@asynccontextmanager
async def payment_with_users_wire(
    database_urls: Mapping[str, str],
) -> AsyncIterator[tuple[FaultInjector, httpx.AsyncClient, dict[str, str]]]:
    """A cold payment whose calls to users pass through a FaultInjector, and a logged-in customer's header."""
    users = create_users(UsersSettings(database_url=database_urls["users"]))
    to_users = FaultInjector(httpx.ASGITransport(app=users))
    payment = create_payment(PaymentSettings(database_url=database_urls["payment"]), transports={"users": to_users})
    async with (
        running(users),
        running(payment),
        client_for(users, "users") as users_client,
        client_for(payment, "payment") as client,
    ):
        auth = await register_and_login(users_client)
        to_users.requests.clear()
        yield to_users, client, auth


async def test_no_cached_keys_and_users_down_is_a_503_not_a_401(database_urls: Mapping[str, str]) -> None:
    async with payment_with_users_wire(database_urls) as (to_users, client, auth):
        to_users.faults = [httpx.ConnectError("users is down")] * 10  # as when all its pods are gone
        response = assert_problem(await client.get("/payments", headers=auth), 503)
        assert response["type"].endswith("/dependency-unavailable")


async def test_a_cold_process_hit_by_a_burst_fetches_the_jwks_once(database_urls: Mapping[str, str]) -> None:
    async with payment_with_users_wire(database_urls) as (to_users, client, auth):
        answers = await asyncio.gather(*(client.get("/payments", headers=auth) for _ in range(64)))

    assert [a.status_code for a in answers] == [200] * 64
    assert [r.url.path for r in to_users.requests] == ["/.well-known/jwks.json"]
