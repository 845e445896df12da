"""Exactly-once under concurrency: real row locks in a real PostgreSQL, many requests in flight at once."""

import asyncio
import uuid
from collections.abc import Mapping

import psycopg
import pytest

from tests.conftest import AS_OPERATOR, Shop, open_shop, register_and_login
from tests.payment.test_payments import SKU, pay, payment_body

pytestmark = pytest.mark.usefixtures("database_urls")


def set_stock(shop: Shop, sku: str, units: int) -> None:
    with psycopg.connect(shop.database_urls["catalog"]) as conn:
        conn.execute("UPDATE products SET stock = %s WHERE sku = %s", (units, sku))


def count(shop: Shop, database: str, query: str) -> int:
    with psycopg.connect(shop.database_urls[database]) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


async def test_twenty_customers_racing_for_the_last_five_units(database_urls: Mapping[str, str]) -> None:
    async with open_shop(database_urls, provider_latency_ms=20) as shop:
        set_stock(shop, SKU, 5)
        customers = [await register_and_login(shop.users) for _ in range(20)]

        responses = await asyncio.gather(*(pay(shop, auth, payment_body(quantity=1)) for auth in customers))

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] * 5 + [409] * 15
        product = (await shop.catalog.get(f"/products/{SKU}")).json()
        assert product["stock"] == 0
        inventory = {row["sku"]: row for row in (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json()}
        assert inventory[SKU] == {"sku": SKU, "stock": 0, "held": 0, "sold": 5}
        assert count(shop, "payment", "SELECT count(*) FROM payments WHERE status = 'captured'") == 5
        assert count(shop, "payment", "SELECT count(*) FROM payments WHERE status = 'pending'") == 0
        assert count(shop, "catalog", "SELECT min(stock) FROM products") >= 0


async def test_ten_concurrent_requests_with_one_key_make_one_payment(database_urls: Mapping[str, str]) -> None:
    async with open_shop(database_urls, provider_latency_ms=50) as shop:
        auth = await register_and_login(shop.users)
        before = (await shop.catalog.get(f"/products/{SKU}")).json()["stock"]
        key = f"checkout-{uuid.uuid4()}"

        responses = await asyncio.gather(*(pay(shop, auth, payment_body(quantity=3), key=key) for _ in range(10)))

        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 1
        assert count(shop, "payment", "SELECT count(*) FROM payments") == 1
        assert count(shop, "payment", "SELECT count(*) FROM provider_charges") == 1
        assert count(shop, "catalog", "SELECT count(*) FROM reservations") == 1
        after = (await shop.catalog.get(f"/products/{SKU}")).json()["stock"]
        assert after == before - 3


async def test_one_key_raced_with_two_different_bodies_pays_for_one_of_them(database_urls: Mapping[str, str]) -> None:
    async with open_shop(database_urls, provider_latency_ms=20) as shop:
        auth = await register_and_login(shop.users)
        bodies = [payment_body(quantity=1), payment_body(quantity=2)] * 4
        responses = await asyncio.gather(*(pay(shop, auth, body, key="same-key") for body in bodies))

        winners = [r for r in responses if r.status_code == 201]
        assert winners
        assert {r.status_code for r in responses} <= {201, 409}
        assert len({r.json()["id"] for r in winners}) == 1
        assert count(shop, "payment", "SELECT count(*) FROM payments") == 1
        held_or_sold = count(
            shop,
            "catalog",
            "SELECT coalesce(sum(i.quantity), 0) FROM reservation_items i"
            " JOIN reservations r ON r.id = i.reservation_id WHERE r.status IN ('held', 'committed')",
        )
        assert held_or_sold == winners[0].json()["items"][0]["quantity"]
