"""Reservations: idempotent holds, commit/release state changes, expiry, and stock never below zero."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from shop_catalog import service
from shop_catalog.main import create_app
from shop_catalog.settings import CatalogSettings
from shopkit import state_of
from tests.conftest import AS_OPERATOR, AS_PAYMENT, client_for, running
from tests.payment.test_payments import assert_problem

SKU = "MS-VERT-02"


@pytest.fixture
async def catalog(database_urls: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CatalogSettings(database_url=database_urls["catalog"], sweep_interval_seconds=3600))
    async with running(app), client_for(app, "catalog", AS_PAYMENT) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def reserve(catalog: httpx.AsyncClient, items: list[dict[str, Any]], key: str | None = None) -> httpx.Response:
    return await catalog.post(
        "/reservations", json={"items": items}, headers={"Idempotency-Key": key or uuid.uuid4().hex}
    )


async def inventory(catalog: httpx.AsyncClient, sku: str = SKU) -> dict[str, int]:
    rows = {row["sku"]: row for row in (await catalog.get("/inventory", headers=AS_OPERATOR)).json()}
    return {k: v for k, v in rows[sku].items() if k != "sku"}


async def test_a_reservation_holds_stock_at_the_current_price(catalog: httpx.AsyncClient) -> None:
    product = (await catalog.get(f"/products/{SKU}")).json()
    response = await reserve(catalog, [{"sku": SKU, "quantity": 3}])
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "held"
    assert body["items"] == [{"sku": SKU, "quantity": 3, "unit_price_cents": product["price_cents"], "currency": "EUR"}]
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=4) < expires - datetime.now(UTC) <= timedelta(minutes=5)
    assert await inventory(catalog) == {"stock": product["stock"] - 3, "held": 3, "sold": 0}


async def test_the_same_key_gives_the_same_reservation_and_holds_once(catalog: httpx.AsyncClient) -> None:
    before = await inventory(catalog)
    first = await reserve(catalog, [{"sku": SKU, "quantity": 2}], key="r-1")
    again = await reserve(catalog, [{"sku": SKU, "quantity": 2}], key="r-1")
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert (await inventory(catalog))["held"] == before["held"] + 2
    other = assert_problem(await reserve(catalog, [{"sku": SKU, "quantity": 1}], key="r-1"), 409)
    assert other["type"].endswith("/idempotency-key-reused")


async def test_commit_sells_and_release_returns_stock_both_idempotently(catalog: httpx.AsyncClient) -> None:
    before = await inventory(catalog)
    sold = (await reserve(catalog, [{"sku": SKU, "quantity": 2}])).json()["id"]
    returned = (await reserve(catalog, [{"sku": SKU, "quantity": 5}])).json()["id"]

    for _ in range(2):
        assert (await catalog.post(f"/reservations/{sold}/commit")).json()["status"] == "committed"
        assert (await catalog.post(f"/reservations/{returned}/release")).json()["status"] == "released"

    assert await inventory(catalog) == {"stock": before["stock"] - 2, "held": 0, "sold": 2}
    assert_problem(await catalog.post(f"/reservations/{sold}/release"), 409)
    assert_problem(await catalog.post(f"/reservations/{returned}/commit"), 409)
    assert_problem(await catalog.post(f"/reservations/{uuid.uuid4()}/commit"), 404)
    assert (await catalog.get(f"/reservations/{sold}")).json()["status"] == "committed"


async def test_expired_reservations_give_their_stock_back(catalog: httpx.AsyncClient) -> None:
    before = await inventory(catalog)
    held = (await reserve(catalog, [{"sku": SKU, "quantity": 4}])).json()
    app = catalog.app  # type: ignore[attr-defined]

    async with state_of(app).database.sessionmaker() as session, session.begin():
        assert await service.expire_due(session) == 0
    async with state_of(app).database.sessionmaker() as session, session.begin():
        assert await service.expire_due(session, now=datetime.now(UTC) + timedelta(minutes=6)) == 1

    assert await inventory(catalog) == before
    assert (await catalog.get(f"/reservations/{held['id']}")).json()["status"] == "expired"
    assert_problem(await catalog.post(f"/reservations/{held['id']}/commit"), 409)
    assert (await catalog.post(f"/reservations/{held['id']}/release")).json()["status"] == "expired"


async def test_the_sweeper_expires_reservations_in_the_background(database_urls: Mapping[str, str]) -> None:
    settings = CatalogSettings(
        database_url=database_urls["catalog"], reservation_ttl_seconds=1, sweep_interval_seconds=0.2
    )
    app = create_app(settings)
    async with running(app), client_for(app, "catalog", AS_PAYMENT) as catalog:
        before = await inventory(catalog)
        held = (await reserve(catalog, [{"sku": SKU, "quantity": 1}])).json()
        for _ in range(50):
            if (await catalog.get(f"/reservations/{held['id']}")).json()["status"] == "expired":
                break
            await asyncio.sleep(0.1)
        assert (await catalog.get(f"/reservations/{held['id']}")).json()["status"] == "expired"
        assert await inventory(catalog) == before


async def test_insufficient_stock_holds_nothing(catalog: httpx.AsyncClient) -> None:
    before = await inventory(catalog)
    body = assert_problem(
        await reserve(catalog, [{"sku": "HUB-7P-12", "quantity": 1}, {"sku": SKU, "quantity": before["stock"] + 1}]),
        409,
    )
    assert body["type"].endswith("/insufficient-stock")
    assert await inventory(catalog) == before
    assert (await inventory(catalog, "HUB-7P-12"))["held"] == 0


async def test_concurrent_reservations_never_oversell(
    catalog: httpx.AsyncClient, database_urls: Mapping[str, str]
) -> None:
    with psycopg.connect(database_urls["catalog"]) as conn:
        conn.execute("UPDATE products SET stock = 7 WHERE sku = %s", (SKU,))
    responses = await asyncio.gather(*(reserve(catalog, [{"sku": SKU, "quantity": 2}]) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 7
    assert await inventory(catalog) == {"stock": 1, "held": 6, "sold": 0}


async def test_concurrent_requests_with_one_key_hold_once(catalog: httpx.AsyncClient) -> None:
    before = await inventory(catalog)
    responses = await asyncio.gather(*(reserve(catalog, [{"sku": SKU, "quantity": 1}], key="same") for _ in range(10)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await inventory(catalog))["held"] == before["held"] + 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": []},
        {"items": [{"sku": SKU}]},
        {"items": [{"sku": SKU, "quantity": 0}]},
        {"items": [{"sku": SKU, "quantity": -1}]},
        {"items": [{"sku": SKU, "quantity": 10**20}]},
        {"items": [{"sku": SKU, "quantity": "1"}]},
        {"items": [{"sku": "NOPE-404", "quantity": 1}]},
        {"items": [{"sku": SKU, "quantity": 1}, {"sku": SKU, "quantity": 1}]},
        {"items": [{"sku": SKU, "quantity": 1}], "extra": True},
    ],
    ids=["empty", "no lines", "no quantity", "zero", "negative", "huge", "string", "unknown sku", "dup", "extra"],
)
async def test_bad_reservations_change_nothing(catalog: httpx.AsyncClient, body: dict[str, Any]) -> None:
    before = await inventory(catalog)
    response = await catalog.post("/reservations", json=body, headers={"Idempotency-Key": "bad"})
    assert_problem(response, 422)
    assert await inventory(catalog) == before
