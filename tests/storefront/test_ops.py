"""The operator's door at the storefront: `/ops/` asks for the operator's credential and passes the request to
catalog with the storefront's own, so the operator's never travels further."""

import httpx
import pytest

from shop_storefront.main import create_app
from shop_storefront.settings import StorefrontSettings
from tests.conftest import AS_OPERATOR, AS_PAYMENT, AS_STOREFRONT, Shop, client_for, register_and_login, running

SKU = "CH-MESH-06"


async def operations(storefront: httpx.AsyncClient, headers: dict[str, str]) -> list[httpx.Response]:
    return [
        await storefront.get("/ops/inventory", headers=headers),
        await storefront.post("/ops/restock", json={"at_least": 1000, "skus": [SKU]}, headers=headers),
    ]


@pytest.mark.parametrize(
    "identity",
    ["none", "customer", "payment", "storefront", "unknown"],
)
async def test_ops_refuses_anyone_but_the_operator_and_reaches_no_service(shop: Shop, identity: str) -> None:
    headers = {
        "none": {},
        "customer": await register_and_login(shop.users),
        "payment": AS_PAYMENT,
        "storefront": AS_STOREFRONT,
        "unknown": {"Authorization": "Bearer 0123456789abcdef0123456789abcdef"},
    }[identity]
    before = (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json()
    for response in await operations(shop.storefront, headers):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
    assert shop.wires["catalog"].requests == []
    assert (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json() == before


async def test_the_operator_reads_the_inventory_and_restocks_with_the_storefronts_identity(shop: Shop) -> None:
    inventory, restocked = await operations(shop.storefront, AS_OPERATOR)

    assert inventory.status_code == 200
    assert restocked.status_code == 200, restocked.text
    assert restocked.json()["raised"] == [SKU]
    direct = (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json()
    assert restocked.json()["inventory"] == direct
    assert next(row for row in direct if row["sku"] == SKU)["stock"] == 1000
    assert [row["sku"] for row in inventory.json()] == [row["sku"] for row in direct]
    sent = shop.wires["catalog"].requests
    assert [request.url.path for request in sent] == ["/inventory", "/restock"]
    assert all(request.headers["authorization"] == AS_STOREFRONT["Authorization"] for request in sent)


async def test_ops_is_not_in_the_public_api_reference(shop: Shop) -> None:
    document = (await shop.storefront.get("/openapi.json")).json()
    assert document["paths"]
    assert not [path for path in document["paths"] if not path.startswith("/api/")]
    assert not [path for path in document["paths"] if path.split("/")[2] in {"inventory", "restock", "reservations"}]


async def test_a_storefront_without_its_own_credential_passes_nothing_on(shop: Shop) -> None:
    """Catalog refuses a storefront that has no credential of its own, whatever the operator presented."""
    settings = StorefrontSettings(credential=None)
    async with running(create_app(settings, transports=shop.wires)) as app, client_for(app, "storefront") as storefront:
        refused = await storefront.get("/ops/inventory", headers=AS_OPERATOR)
    assert refused.status_code == 401
    assert "authorization" not in shop.wires["catalog"].requests[-1].headers
