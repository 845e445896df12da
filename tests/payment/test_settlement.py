"""How a payment is settled: no row lock, no open transaction and no pooled connection held across the provider
call; a lease says who finishes a pending payment, and a retry takes it over only once the lease has run out."""

import asyncio
import uuid
from collections.abc import Mapping

import psycopg
from prometheus_client import REGISTRY

from shop_payment.state import PaymentState
from shopkit import state_of
from tests.conftest import open_shop, register_and_login
from tests.payment.test_concurrency import count
from tests.payment.test_payments import SKU, assert_problem, pay, payment_body

SLOW_PROVIDER_MS = 1500


def payment_sessions(database_url: str) -> list[tuple[str, str]]:
    """(application_name, state) of every other session connected to the payment database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name, state FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [(str(name), str(state)) for name, state in rows]


async def test_no_lock_and_no_transaction_is_held_while_the_provider_works(database_urls: Mapping[str, str]) -> None:
    async with open_shop(database_urls, provider_latency_ms=SLOW_PROVIDER_MS) as shop:
        auth = await register_and_login(shop.users)
        checkout = asyncio.create_task(pay(shop, auth, payment_body(quantity=1)))
        while count(shop, "payment", "SELECT count(*) FROM payments WHERE status = 'pending'") == 0:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # inside the provider's latency now

        with psycopg.connect(database_urls["payment"], autocommit=True) as conn:
            conn.execute("SET lock_timeout = '100ms'")
            locked = conn.execute("SELECT status FROM payments FOR UPDATE NOWAIT").fetchall()  # raises if locked
        assert locked == [("pending",)]
        assert [s for s in payment_sessions(database_urls["payment"]) if s[1].startswith("idle in transaction")] == []
        assert not checkout.done()

        response = await checkout
        assert response.status_code == 201
        assert response.json()["status"] == "captured"
        assert "resilient-shop-provider" in {name for name, _ in payment_sessions(database_urls["payment"])}


async def test_a_burst_settles_through_a_pool_of_two_connections(database_urls: Mapping[str, str]) -> None:
    """Holding a connection across the provider call, 24 checkouts would wait in turn for 2 connections."""
    async with open_shop(database_urls, provider_latency_ms=100, db_pool_size=2) as shop:
        customers = [await register_and_login(shop.users) for _ in range(4)]
        responses = await asyncio.gather(*(pay(shop, customers[i % 4], payment_body(quantity=1)) for i in range(24)))

        assert [r.status_code for r in responses] == [201] * 24
        assert count(shop, "payment", "SELECT count(*) FROM payments WHERE status = 'captured'") == 24
        assert count(shop, "payment", "SELECT count(*) FROM provider_charges") == 24


def _recovered_by_retry() -> float:
    return REGISTRY.get_sample_value("shop_payments_recovered_total", {"by": "retry"}) or 0.0


async def test_a_retry_waits_for_a_live_lease_and_takes_over_an_expired_one(database_urls: Mapping[str, str]) -> None:
    settings = {"provider_latency_ms": 3000, "pending_lease_seconds": 1.5, "pending_wait_seconds": 0.3}
    async with open_shop(database_urls, **settings) as shop:
        payments = state_of(shop.apps["payment"]).own(PaymentState).payments
        payments.sweep_once = _never  # type: ignore[method-assign]  # only the retry may finish it here
        auth = await register_and_login(shop.users)
        key, body = f"checkout-{uuid.uuid4()}", payment_body(quantity=2)
        stock_before = (await shop.catalog.get(f"/products/{SKU}")).json()["stock"]
        owner = asyncio.create_task(pay(shop, auth, body, key=key))
        while count(shop, "payment", "SELECT count(*) FROM payments") == 0:
            await asyncio.sleep(0.02)
        owner.cancel()  # the owner dies inside the provider call: the row stays pending and leased

        waited = await pay(shop, auth, body, key=key)
        problem = assert_problem(waited, 503)
        assert problem["type"].endswith("/payment-pending")
        assert waited.headers["retry-after"] == "1"

        await asyncio.sleep(1.6)  # the lease runs out
        payments.provider.latency_seconds = 0
        recovered = _recovered_by_retry()
        finished = await pay(shop, auth, body, key=key)

        assert finished.status_code == 201, finished.text
        assert finished.json()["status"] == "captured"
        assert _recovered_by_retry() == recovered + 1
        assert count(shop, "payment", "SELECT count(*) FROM payments") == 1
        assert count(shop, "payment", "SELECT count(*) FROM provider_charges") == 1
        assert (await shop.catalog.get(f"/products/{SKU}")).json()["stock"] == stock_before - 2


async def _never() -> bool:
    return False
