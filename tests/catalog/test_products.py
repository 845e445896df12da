from collections.abc import AsyncIterator, Mapping

import httpx
import pytest

from shop_catalog.main import create_app
from shop_catalog.settings import CatalogSettings
from tests.conftest import client_for, running


@pytest.fixture
async def catalog(database_urls: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
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


async def test_products_page_and_search(catalog: httpx.AsyncClient) -> None:
    page = (await catalog.get("/products", params={"limit": 5, "offset": 5})).json()
    everything = (await catalog.get("/products", params={"limit": 100})).json()
    assert page["items"] == everything["items"][5:10]
    found = (await catalog.get("/products", params={"q": "keyboard"})).json()
    assert found["total"] >= 1
    assert all("keyboard" in (p["name"] + p["description"]).lower() for p in found["items"])
    assert (await catalog.get("/products", params={"q": "100%_"})).json()["total"] == 0


async def test_one_product_and_unknown_product(catalog: httpx.AsyncClient) -> None:
    product = (await catalog.get("/products/KB-ERGO-01")).json()
    assert product["name"] == "Split Ergonomic Keyboard"
    missing = await catalog.get("/products/NOPE")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=-1", "limit=abc", "q="])
async def test_bad_query_parameters_are_422(catalog: httpx.AsyncClient, query: str) -> None:
    response = await catalog.get(f"/products?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
