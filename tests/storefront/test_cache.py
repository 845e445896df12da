"""The gateway's product list cache, in front of the real catalog: kept as long as catalog's max-age says, never
asking catalog on a hit, and bypassed by a client that asks for a fresh answer (the web shop after paying)."""

import asyncio
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx

import shop_storefront
from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from tests.conftest import FaultInjector, Shop, register_and_login, running
from tests.storefront.conftest import storefront_client

FRESH = {"Cache-Control": "no-cache"}
SKU = "KB-ERGO-01"


def stock_of(response: httpx.Response, sku: str = SKU) -> int:
    assert response.status_code == 200, response.text
    return int(next(item["stock"] for item in response.json()["items"] if item["sku"] == sku))


async def test_a_list_is_kept_for_catalogs_max_age_without_asking_catalog(
    storefront: httpx.AsyncClient, catalog_wire: FaultInjector
) -> None:
    first = await storefront.get("/api/products", params={"limit": 20})
    hits = [await storefront.get("/api/products", params={"limit": 20}) for _ in range(5)]

    assert len(catalog_wire.requests) == 1
    assert first.headers["cache-control"] == "public, max-age=1"
    for hit in hits:
        assert hit.content == first.content
        assert hit.headers["content-type"] == "application/json"
        assert hit.headers["cache-control"] == "public, max-age=1"
        assert hit.headers["age"] == "0"

    await asyncio.sleep(1.05)
    await storefront.get("/api/products", params={"limit": 20})
    assert len(catalog_wire.requests) == 2


async def test_no_cache_goes_to_catalog_and_sees_a_reservation_at_once(
    storefront: httpx.AsyncClient, catalog: httpx.AsyncClient, catalog_wire: FaultInjector
) -> None:
    before = stock_of(await storefront.get("/api/products"))
    body = {"items": [{"sku": SKU, "quantity": 2}]}
    reserved = await catalog.post("/reservations", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert reserved.status_code == 201

    assert stock_of(await storefront.get("/api/products")) == before  # within max-age: the kept answer
    started = time.monotonic()
    while stock_of(fresh := await storefront.get("/api/products", headers=FRESH)) != before - 2:
        assert time.monotonic() - started < 2, "catalog's notification did not arrive"  # milliseconds in practice
        await asyncio.sleep(0.005)
    assert "age" not in fresh.headers
    assert catalog_wire.requests[-1].headers["cache-control"] == "no-cache"  # catalog's own cache is bypassed too
    requests = len(catalog_wire.requests)
    assert stock_of(await storefront.get("/api/products")) == before - 2  # the fresh answer was kept
    assert len(catalog_wire.requests) == requests


async def test_only_product_lists_that_catalog_answered_200_are_kept(
    storefront: httpx.AsyncClient, catalog_wire: FaultInjector
) -> None:
    for path in ("/api/products?limit=0", f"/api/products/{SKU}", "/api/products/NO-SUCH-SKU"):
        await storefront.get(path)
        await storefront.get(path)
    assert len(catalog_wire.requests) == 6


async def test_the_bound_setting_caps_catalogs_max_age_and_zero_turns_it_off(
    database_urls: Mapping[str, str],
) -> None:
    catalog = create_catalog(CatalogSettings(database_url=database_urls["catalog"], products_max_age_seconds=60))
    async with running(catalog):
        wire = FaultInjector(httpx.ASGITransport(app=catalog))
        async with storefront_client({"catalog": wire}, cache_max_age_seconds=0.2) as storefront:
            await storefront.get("/api/products")
            assert (await storefront.get("/api/products")).headers["cache-control"] == "public, max-age=60"
            assert len(wire.requests) == 1
            await asyncio.sleep(0.25)
            await storefront.get("/api/products")
            assert len(wire.requests) == 2

        wire.requests = []
        async with storefront_client({"catalog": wire}, cache_max_age_seconds=0) as storefront:
            await storefront.get("/api/products")
            await storefront.get("/api/products")
            assert len(wire.requests) == 2


def test_the_web_shop_reloads_the_list_past_every_cache_after_paying() -> None:
    page = (Path(shop_storefront.__file__).parent / "static" / "index.html").read_text()
    fresh = page[page.index("  if (fresh) {") :].splitlines()[1:3]
    assert [line.strip() for line in fresh] == [
        'init.cache = "no-store";',
        'init.headers["Cache-Control"] = "no-cache";',
    ]
    after_paying = page[page.index("  } finally {\n    renderCart();") :].splitlines()
    assert after_paying[2].strip().startswith('loadProducts("", {fresh: true});')


async def test_the_stock_a_payment_took_shows_in_the_web_shops_next_fresh_list(shop: Shop) -> None:
    """What the page does: list (now cached), pay, list again with no-cache."""
    auth = await register_and_login(shop.users)
    before = stock_of(await shop.storefront.get("/api/products", params={"limit": 100}))
    body = {"items": [{"sku": SKU, "quantity": 3}], "card_number": "4242424242424242"}
    paid = await shop.storefront.post("/api/payments", json=body, headers={**auth, "Idempotency-Key": uuid.uuid4().hex})
    assert paid.status_code == 201, paid.text

    assert stock_of(await shop.storefront.get("/api/products", params={"limit": 100})) == before  # cached, max 1 s
    started = time.monotonic()
    while stock_of(await shop.storefront.get("/api/products", params={"limit": 100}, headers=FRESH)) != before - 3:
        assert time.monotonic() - started < 2, "the payment's stock change did not reach the list"
        await asyncio.sleep(0.005)
