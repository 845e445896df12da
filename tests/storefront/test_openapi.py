"""The storefront publishes the whole shop's API: the services' operations under /api, in one document."""

from typing import Any

import httpx
import pytest

from shop_catalog.main import create_app as create_catalog
from shop_payment.main import create_app as create_payment
from shop_storefront.openapi import merge
from shop_users.main import create_app as create_users
from tests.storefront.conftest import storefront_client

PUBLIC_OPERATIONS = {
    ("get", "/api/products"),
    ("get", "/api/products/{sku}"),
    ("post", "/api/users"),
    ("post", "/api/tokens"),
    ("get", "/api/users/me"),
    ("post", "/api/payments"),
    ("get", "/api/payments/{payment_id}"),
    ("get", "/api/payments"),
}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture
async def document() -> dict[str, Any]:
    """What the storefront answers at /openapi.json, in front of the services' apps (their documents need no
    database: only the routes)."""
    apps = {"catalog": create_catalog(), "users": create_users(), "payment": create_payment()}
    transports = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}
    async with storefront_client(transports, payment_url="http://payment") as client:
        response = await client.get("/openapi.json")
        assert response.status_code == 200, response.text
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "/openapi.json" in docs.text
        body: dict[str, Any] = response.json()
        return body


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): op for path, item in document["paths"].items() for method, op in item.items()}


async def test_every_public_operation_is_listed_under_api(document: dict[str, Any]) -> None:
    listed = operations(document)
    assert listed.keys() >= PUBLIC_OPERATIONS
    assert all(path.startswith("/api/") for _, path in listed)
    assert not [path for _, path in listed if "{path}" in path], "the gateway's own catch-all is not an operation"
    assert not [path for _, path in listed if any(p in path for p in ("/ready", "/healthz", "/metrics", "/chaos"))]


async def test_operations_carry_their_schemas_security_and_problems(document: dict[str, Any]) -> None:
    listed = operations(document)
    create = listed[("post", "/api/payments")]
    assert create["security"] == [{"HTTPBearer": []}]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {p["name"] for p in create["parameters"] if p["in"] == "header"} == {"Idempotency-Key"}
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]
    for status in ("401", "402", "409", "413", "422", "503"):
        assert create["responses"][status]["content"] == {"application/problem+json": {"schema": PROBLEM}}, status
    assert listed[("get", "/api/products/{sku}")]["responses"]["404"]["content"]["application/problem+json"]
    assert {"type", "title", "status"} <= set(document["components"]["schemas"]["Problem"]["required"])
    assert _refs(document) <= {"#/components/schemas/" + name for name in document["components"]["schemas"]}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        return {v for k, v in node.items() if k == "$ref"} | {r for v in node.values() for r in _refs(v)}
    if isinstance(node, list):
        return {r for v in node for r in _refs(v)}
    return set()


def test_a_schema_two_services_define_differently_keeps_both() -> None:
    def doc(path: str, fields: list[str]) -> dict[str, Any]:
        ref = {"$ref": "#/components/schemas/Item"}
        return {
            "paths": {path: {"get": {"responses": {"200": {"content": {"application/json": {"schema": ref}}}}}}},
            "components": {"schemas": {"Item": {"properties": {f: {} for f in fields}}}},
        }

    merged = merge({"catalog": doc("/products", ["sku"]), "payment": doc("/payments", ["id"])}, version="1")
    schemas = merged["components"]["schemas"]
    assert schemas["Item"] == {"properties": {"sku": {}}}
    assert schemas["PaymentItem"] == {"properties": {"id": {}}}
    payments = merged["paths"]["/api/payments"]["get"]["responses"]["200"]["content"]["application/json"]
    assert payments["schema"] == {"$ref": "#/components/schemas/PaymentItem"}


async def test_a_service_that_cannot_say_its_api_is_a_problem() -> None:
    async with storefront_client() as client:  # every service down
        response = await client.get("/openapi.json")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
