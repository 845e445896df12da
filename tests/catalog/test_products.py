from collections.abc import AsyncIterator

import httpx
import pytest

from shop_catalog.main import create_app
from shop_catalog.settings import CatalogSettings
from tests.conftest import client_for, running


@pytest.fixture
async def catalog(database_urls: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CatalogSettings(database_url=database_urls["catalog"]))
    async with running(app), client_for(app, "catalog") as client:
        yield client


async def test_seeded_catalog_lists_at_least_twenty_products(catalog: httpx.AsyncClient) -> None:
    response = await catalog.get("/products", params={"limit": 100})
    assert response.status_code == 200
    body = response.json()
    assert body["total"] >= 20
    assert len(body["items"]) == body["total"]
    first = body["items"][0]
    assert set(first) == {"sku", "name", "description", "price_cents", "currency", "stock"}
    assert all(p["price_cents"] > 0 and p["currency"] == "EUR" and p["stock"] > 0 for p in body["items"])
