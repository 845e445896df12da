"""Catalog's internal endpoints and who may call them: reservations are payment's, the inventory and restocking
the operator's (directly, or passed on by the storefront); anyone else is refused and nothing changes."""

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from shop_catalog.main import create_app
from shop_catalog.settings import CatalogSettings
from tests.conftest import AS_OPERATOR, AS_PAYMENT, AS_STOREFRONT, Shop, client_for, register_and_login, running

SKU = "CH-MESH-06"
HOLD = {"items": [{"sku": SKU, "quantity": 3}]}


async def inventory(catalog: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await catalog.get("/inventory", headers=AS_OPERATOR)
    assert response.status_code == 200, response.text
    return {row["sku"]: row for row in response.json()}


async def attempts(shop: Shop, headers: Mapping[str, str]) -> dict[str, int]:
    """The status of every internal operation of catalog for a caller presenting `headers` (and nothing else)."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    held = await shop.catalog.post("/reservations", json=HOLD, headers={**key, **AS_PAYMENT})
    assert held.status_code == 201
    reservation = held.json()["id"]
    async with client_for(shop.apps["catalog"], "catalog") as catalog:
        answers = await _each_operation(catalog, reservation, key, headers)
    for response in answers.values():
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    await shop.catalog.post(f"/reservations/{reservation}/release")
    return {operation: response.status_code for operation, response in answers.items()}


async def _each_operation(
    catalog: httpx.AsyncClient, reservation: str, key: Mapping[str, str], headers: Mapping[str, str]
) -> dict[str, httpx.Response]:
    return {
        "inventory": await catalog.get("/inventory", headers=headers),
        "restock": await catalog.post("/restock", json={"at_least": 500, "skus": [SKU]}, headers=headers),
        "hold": await catalog.post("/reservations", json=HOLD, headers={**key, **headers}),
        "read": await catalog.get(f"/reservations/{reservation}", headers=headers),
        "commit": await catalog.post(f"/reservations/{reservation}/commit", headers=headers),
        "release": await catalog.post(f"/reservations/{reservation}/release", headers=headers),
    }


REFUSED = dict.fromkeys(("inventory", "restock", "hold", "read", "commit", "release"), 401)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-credential-of-the-shop"},
        {"Authorization": AS_OPERATOR["Authorization"].replace("Bearer ", "Basic ")},
        {"X-Chaos-Token": "anything"},
    ],
    ids=["none", "unknown", "not bearer", "another header"],
)
async def test_without_a_credential_of_the_shop_everything_internal_is_401_and_nothing_changes(
    shop: Shop, headers: dict[str, str]
) -> None:
    before = await inventory(shop.catalog)
    assert await attempts(shop, headers) == REFUSED
    assert await inventory(shop.catalog) == before


async def test_a_customers_token_is_not_a_credential_of_the_shop(shop: Shop) -> None:
    customer = await register_and_login(shop.users)
    before = await inventory(shop.catalog)
    assert await attempts(shop, customer) == REFUSED
    assert await inventory(shop.catalog) == before


async def test_each_credential_allows_its_own_operations_only(shop: Shop) -> None:
    operator_only = {"inventory": 200, "restock": 200, "hold": 403, "read": 403, "commit": 403, "release": 403}
    assert await attempts(shop, AS_OPERATOR) == operator_only
    assert await attempts(shop, AS_STOREFRONT) == operator_only
    payment_only = {"inventory": 403, "restock": 403, "hold": 201, "read": 200, "commit": 200, "release": 409}
    assert await attempts(shop, AS_PAYMENT) == payment_only


async def test_restock_raises_stock_to_at_least_n_and_never_lowers_it(shop: Shop) -> None:
    before = await inventory(shop.catalog)
    low = min(before, key=lambda sku: before[sku]["stock"])
    level = before[low]["stock"] + 1
    with capture_logs() as logs:
        response = await shop.catalog.post("/restock", json={"at_least": level}, headers=AS_OPERATOR)

    assert response.status_code == 200
    after = {row["sku"]: row for row in response.json()["inventory"]}
    assert after == await inventory(shop.catalog)
    for sku, row in before.items():
        assert after[sku]["stock"] == max(row["stock"], level)
        assert (after[sku]["held"], after[sku]["sold"]) == (row["held"], row["sold"])
    assert response.json()["raised"] == sorted(sku for sku, row in before.items() if row["stock"] < level)
    assert low in response.json()["raised"]
    audit = [entry for entry in logs if entry["event"] == "stock_restocked"]
    assert [(entry["caller"], entry["at_least"]) for entry in audit] == [("operator", level)]


async def test_restock_of_listed_products_only_and_an_unknown_sku_changes_nothing(shop: Shop) -> None:
    before = await inventory(shop.catalog)
    listed = await shop.catalog.post("/restock", json={"at_least": 10_000, "skus": [SKU]}, headers=AS_OPERATOR)
    assert listed.json()["raised"] == [SKU]
    after = await inventory(shop.catalog)
    assert after[SKU]["stock"] == 10_000
    assert {sku: row for sku, row in after.items() if sku != SKU} == {s: r for s, r in before.items() if s != SKU}

    unknown = await shop.catalog.post(
        "/restock", json={"at_least": 20_000, "skus": [SKU, "NO-SUCH-SKU"]}, headers=AS_OPERATOR
    )
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "NO-SUCH-SKU" in unknown.json()["detail"]
    assert await inventory(shop.catalog) == after


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"at_least": -1},
        {"at_least": 2**70},
        {"at_least": "10"},
        {"at_least": 10, "skus": []},
        {"at_least": 10, "skus": ["lower-case"]},
        {"at_least": 10, "extra": True},
    ],
)
async def test_a_bad_restock_is_422_and_changes_nothing(shop: Shop, body: dict[str, Any]) -> None:
    before = await inventory(shop.catalog)
    response = await shop.catalog.post("/restock", json=body, headers=AS_OPERATOR)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert await inventory(shop.catalog) == before


@pytest.fixture
async def rotating_catalog(database_urls: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A catalog in the middle of a rotation of the operator's credential: the new one presented, the old kept."""
    settings = CatalogSettings(
        database_url=database_urls["catalog"], operator_credential="new-operator-credential,old-operator-credential"
    )
    async with running(create_app(settings)) as app, client_for(app, "catalog") as client:
        yield client


async def test_during_a_rotation_both_values_are_accepted_and_no_other(rotating_catalog: httpx.AsyncClient) -> None:
    for value, status in [
        ("new-operator-credential", 200),
        ("old-operator-credential", 200),
        ("new-operator-credential,old-operator-credential", 401),
        (AS_OPERATOR["Authorization"].removeprefix("Bearer "), 401),  # the environment's, replaced by the setting
    ]:
        response = await rotating_catalog.get("/inventory", headers={"Authorization": f"Bearer {value}"})
        assert response.status_code == status, value
