"""The product list cache against a real PostgreSQL: every stock change reaches every catalog instance through
the products_changed notification, and without a listening connection reads go to the database."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shop_catalog.main import create_app
from shop_catalog.settings import CatalogSettings
from shop_catalog.state import CatalogState
from shopkit import state_of
from tests.conftest import AS_OPERATOR, AS_PAYMENT, client_for, running

SKU = "KB-ERGO-01"  # the first product by sku: on the first page of every list
NOTIFY_BOUND = 2.0
"""Seconds within which a committed change must show in every instance's list (it takes milliseconds)."""
NOTHING_LISTENS = "postgresql://catalog:catalog@127.0.0.1:9/catalog"


@asynccontextmanager
async def catalog_instance(url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A running catalog whose product cache is listening (so a test starts from the steady state)."""
    app = create_app(CatalogSettings(database_url=url, sweep_interval_seconds=3600, **settings))
    async with running(app), client_for(app, "catalog", AS_PAYMENT) as client:
        client.app = app  # type: ignore[attr-defined]
        if settings.get("cache_enabled", True):
            await eventually(lambda: listening(app))
        yield client


def listening(app: FastAPI) -> Awaitable[bool]:
    async def check() -> bool:
        catalog = state_of(app).own(CatalogState)
        return bool(catalog.product_listener and catalog.product_listener.connected and catalog.product_cache.enabled)

    return check()


async def eventually(condition: Callable[[], Awaitable[bool]], bound: float = NOTIFY_BOUND) -> float:
    """Polls `condition` until it holds; returns how long that took, fails after `bound` seconds."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < bound, "condition not met in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def hits() -> float:
    return REGISTRY.get_sample_value("shop_response_cache_requests_total", {"outcome": "hit"}) or 0.0


async def listed_stock(catalog: httpx.AsyncClient, sku: str = SKU) -> int:
    response = await catalog.get("/products", params={"limit": 20})
    assert response.status_code == 200
    return int(next(item["stock"] for item in response.json()["items"] if item["sku"] == sku))


async def reserve(catalog: httpx.AsyncClient, quantity: int, sku: str = SKU) -> None:
    body = {"items": [{"sku": sku, "quantity": quantity}]}
    response = await catalog.post("/reservations", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text


async def set_stock_directly(url: str, stock: int, sku: str = SKU) -> None:
    """A change made outside this catalog (another replica, an operator in psql)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("UPDATE products SET stock = %s WHERE sku = %s", (stock, sku))


@pytest.fixture
async def catalog(database_urls: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with catalog_instance(database_urls["catalog"]) as client:
        yield client


async def test_the_list_is_served_from_the_cache_and_says_how_long_others_may_keep_it(
    catalog: httpx.AsyncClient,
) -> None:
    first = await catalog.get("/products", params={"limit": 20})
    before = hits()
    second = await catalog.get("/products", params={"limit": 20})

    assert hits() == before + 1
    assert second.content == first.content
    assert second.headers["cache-control"] == first.headers["cache-control"] == "public, max-age=1"
    assert second.headers["content-type"] == "application/json"
    for uncached in (f"/products/{SKU}", "/inventory"):
        response = await catalog.get(uncached, headers=AS_OPERATOR)
        assert response.status_code == 200
        assert "public" not in response.headers.get("cache-control", "")
        await catalog.get(uncached, headers=AS_OPERATOR)
    assert hits() == before + 1


async def test_a_reservation_shows_in_the_next_list_read_of_every_instance(database_urls: Mapping[str, str]) -> None:
    url = database_urls["catalog"]
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(catalog_instance(url))
        two = await stack.enter_async_context(catalog_instance(url))
        stock = await listed_stock(one)
        assert await listed_stock(two) == stock
        before = hits()
        assert await listed_stock(one) == await listed_stock(two) == stock
        assert hits() == before + 2  # both answered from their caches

        await reserve(one, 3)

        async def shows_it(instance: httpx.AsyncClient) -> bool:
            return await listed_stock(instance) == stock - 3

        waited = [await eventually(lambda: shows_it(one)), await eventually(lambda: shows_it(two))]
        print(f"the change showed after {waited[0] * 1000:.1f} ms here, {waited[1] * 1000:.1f} ms on the other")
        before = hits()
        assert await listed_stock(two) == stock - 3
        assert hits() == before + 1  # cached again, at the new version


async def test_a_change_made_outside_the_catalog_is_seen_too(
    catalog: httpx.AsyncClient, database_urls: Mapping[str, str]
) -> None:
    await listed_stock(catalog)
    await set_stock_directly(database_urls["catalog"], 7)

    async def shows_it() -> bool:
        return await listed_stock(catalog) == 7

    await eventually(shows_it)


async def test_without_its_listening_connection_the_catalog_reads_the_database(
    catalog: httpx.AsyncClient, database_urls: Mapping[str, str]
) -> None:
    app: FastAPI = catalog.app  # type: ignore[attr-defined]
    listener = state_of(app).own(CatalogState).product_listener
    assert listener is not None
    await listed_stock(catalog)
    listener.url = NOTHING_LISTENS  # its next connection attempts fail
    async with await psycopg.AsyncConnection.connect(database_urls["catalog"], autocommit=True) as connection:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'resilient-shop-listener' AND datname = current_database()"
        )

    async def suspended() -> bool:
        return not state_of(app).own(CatalogState).product_cache.enabled

    await eventually(suspended)
    for stock in (11, 12):
        await set_stock_directly(database_urls["catalog"], stock)  # notified, but nobody here hears it
        before = hits()
        assert await listed_stock(catalog) == stock
        assert await listed_stock(catalog) == stock
        assert hits() == before

    await set_stock_directly(database_urls["catalog"], 13)  # while down: only the reconnection can tell
    listener.url = database_urls["catalog"]
    await eventually(lambda: listening(app), bound=10)  # the backoff is at most 5 s
    assert await listed_stock(catalog) == 13
    before = hits()
    assert await listed_stock(catalog) == 13
    assert hits() == before + 1


async def test_without_the_trigger_the_cache_stays_off(database_urls: Mapping[str, str]) -> None:
    """A database not yet migrated to 0003 would never notify: the listener refuses to turn the cache on."""
    url = database_urls["catalog"]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("DROP TRIGGER products_changed ON products")
    app = create_app(CatalogSettings(database_url=url, sweep_interval_seconds=3600))
    async with running(app), client_for(app, "catalog") as catalog:
        await asyncio.sleep(0.5)
        assert not state_of(app).own(CatalogState).product_cache.enabled
        before = hits()
        await listed_stock(catalog)
        await set_stock_directly(url, 5)
        assert await listed_stock(catalog) == 5
        assert hits() == before


async def test_the_cache_can_be_turned_off(database_urls: Mapping[str, str]) -> None:
    async with catalog_instance(database_urls["catalog"], cache_enabled=False) as catalog:
        before = hits()
        await listed_stock(catalog)
        await listed_stock(catalog)
        assert hits() == before
        assert state_of(catalog.app).own(CatalogState).product_listener is None  # type: ignore[attr-defined]


async def test_the_max_age_for_caches_in_front_is_a_setting(database_urls: Mapping[str, str]) -> None:
    for seconds, header in ((0, "no-cache"), (30, "public, max-age=30")):
        async with catalog_instance(database_urls["catalog"], products_max_age_seconds=seconds) as catalog:
            assert (await catalog.get("/products")).headers["cache-control"] == header
