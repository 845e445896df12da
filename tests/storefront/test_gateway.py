"""Routing under /api: each prefix reaches its service, with the query, body and headers that matter."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from shop_storefront.proxy import resolve
from tests.conftest import AS_OPERATOR, FaultInjector, Shop, register_and_login
from tests.payment.test_payments import APPROVED, SKU
from tests.storefront.conftest import storefront_client

PROBLEM_BASE = "https://resilient-shop.dev/problems/"


async def sold(shop: Shop, sku: str = SKU) -> int:
    rows = (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json()
    return int(next(row["sold"] for row in rows if row["sku"] == sku))


@pytest.mark.parametrize(
    ("path", "upstream", "upstream_path"),
    [
        ("products", "catalog", "/products"),
        ("products/", "catalog", "/products"),
        ("products/LAMP-01", "catalog", "/products/LAMP-01"),
        ("products/a b%c", "catalog", "/products/a%20b%25c"),
        ("users", "users", "/users"),
        ("users/me", "users", "/users/me"),
        ("tokens", "users", "/tokens"),
        (".well-known/jwks.json", "users", "/.well-known/jwks.json"),
        ("payments", "payment", "/payments"),
        ("payments/42", "payment", "/payments/42"),
    ],
)
def test_resolve_routes_by_first_segment(path: str, upstream: str, upstream_path: str) -> None:
    target = resolve(path)
    assert target is not None
    assert (target.upstream, target.path) == (upstream, upstream_path)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "chaos",
        "chaos/leak",
        "healthz",
        "ready",
        "metrics",
        "docs",
        "Products",
        "productsx",
        "payments/../chaos",
        "reservations",
        "reservations/1234/commit",
        "inventory",
        "restock",
    ],
)
def test_resolve_refuses_everything_else(path: str) -> None:
    assert resolve(path) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/"),
        ("GET", "/api/nothing-here"),
        ("GET", "/api/chaos"),
        ("POST", "/api/chaos/leak"),
        ("DELETE", "/api/chaos"),
        ("GET", "/api/healthz"),
        ("GET", "/api/ready"),
        ("GET", "/api/metrics"),
        ("POST", "/api/products/%2E%2E/chaos/crash"),
        ("POST", "/api/payments/..%2Fchaos%2Fleak"),
    ],
)
async def test_unrouted_paths_are_404_problems_and_reach_no_service(
    method: str, path: str, offline_storefront: httpx.AsyncClient
) -> None:
    response = await offline_storefront.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert response.json()["type"] == PROBLEM_BASE + "api-route-not-found"


async def test_products_through_storefront_equal_catalogs(
    storefront: httpx.AsyncClient, catalog: httpx.AsyncClient
) -> None:
    direct = await catalog.get("/products", params={"limit": 100})
    proxied = await storefront.get("/api/products", params={"limit": 100})
    assert proxied.status_code == 200
    assert proxied.headers["content-type"] == "application/json"
    assert proxied.json() == direct.json()

    sku = direct.json()["items"][0]["sku"]
    one = await storefront.get(f"/api/products/{sku}")
    assert one.status_code == 200
    assert one.json() == direct.json()["items"][0]


async def test_query_string_is_forwarded(
    storefront: httpx.AsyncClient, catalog: httpx.AsyncClient, catalog_wire: FaultInjector
) -> None:
    query = {"limit": "2", "offset": "3"}
    proxied = await storefront.get("/api/products", params=query)
    assert proxied.json() == (await catalog.get("/products", params=query)).json()
    assert len(proxied.json()["items"]) == 2
    assert catalog_wire.requests[-1].url.query == b"limit=2&offset=3"

    searched = await storefront.get("/api/products?q=%C3%A9+x%23")
    assert searched.status_code == 200
    assert catalog_wire.requests[-1].url.query == b"q=%C3%A9+x%23"


async def test_upstream_errors_pass_through(storefront: httpx.AsyncClient) -> None:
    missing = await storefront.get("/api/products/NO-SUCH-SKU")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == PROBLEM_BASE + "product-not-found"

    invalid = await storefront.get("/api/products", params={"limit": 0})
    assert invalid.status_code == 422
    assert invalid.json()["type"] == PROBLEM_BASE + "validation"


async def test_a_malformed_body_is_the_services_400(shop: Shop) -> None:
    customer = await register_and_login(shop.users)
    malformed = await shop.storefront.post(
        "/api/payments",
        content=b"{",
        headers={"content-type": "application/json", "idempotency-key": "k", **customer},
    )
    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == "application/problem+json"
    assert len(shop.wires["payment"].requests) == 1


async def test_idempotency_key_is_forwarded_and_one_payment_is_made(shop: Shop) -> None:
    customer = await register_and_login(shop.users)
    key = str(uuid.uuid4())
    body = {"items": [{"sku": SKU, "quantity": 2}], "card_number": APPROVED}
    before = await sold(shop)
    first = await shop.storefront.post("/api/payments", json=body, headers={"Idempotency-Key": key, **customer})
    second = await shop.storefront.post("/api/payments", json=body, headers={"Idempotency-Key": key, **customer})

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    assert [r.headers["idempotency-key"] for r in shop.wires["payment"].requests] == [key, key]
    assert await sold(shop) == before + 2


async def test_a_header_that_is_not_ascii_is_never_a_500(shop: Shop) -> None:
    """Found by schemathesis: a Latin-1 Idempotency-Key made the gateway fail (a 500). Passed on as bytes, it is the
    upstream's to refuse here, in process; over real HTTP the gateway's client refuses to send it, and the gateway
    answers 400 (tests/shopkit/test_transport.py)."""
    customer = await register_and_login(shop.users)
    body = {"items": [{"sku": SKU, "quantity": 1}], "card_number": APPROVED}
    before = await sold(shop)
    response = await shop.storefront.post(
        "/api/payments",
        json=body,
        headers=[
            (b"Idempotency-Key", "cl\xe9".encode("latin-1")),
            *[(k.encode(), v.encode()) for k, v in customer.items()],
        ],
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    sent = [(name.lower(), value) for name, value in shop.wires["payment"].requests[-1].headers.raw]
    assert (b"idempotency-key", b"cl\xe9") in sent
    assert await sold(shop) == before


async def test_a_header_the_gateways_client_refuses_to_send_is_a_400_problem(
    storefront: httpx.AsyncClient, catalog_wire: FaultInjector
) -> None:
    catalog_wire.faults.append(httpx.LocalProtocolError("Illegal header value"))
    response = await storefront.get("/api/products", headers={"Cache-Control": "no-cache"})
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-header")


async def test_only_the_headers_that_matter_are_forwarded(
    storefront: httpx.AsyncClient, catalog_wire: FaultInjector
) -> None:
    response = await storefront.get(
        "/api/products",
        headers={
            "Authorization": "Bearer abc",
            "Accept": "application/json",
            "X-Request-ID": "req-123",
            "Cookie": "session=secret",
            "X-Forwarded-For": "10.0.0.1",
        },
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"
    sent = catalog_wire.requests[-1].headers
    assert sent["authorization"] == "Bearer abc"
    assert sent["accept"] == "application/json"
    assert sent["x-request-id"] == "req-123"
    assert "cookie" not in sent
    assert "x-forwarded-for" not in sent


async def test_oversized_bodies_are_refused_before_any_upstream(offline_storefront: httpx.AsyncClient) -> None:
    too_big = b"x" * (65 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 8192):
            yield too_big[start : start + 8192]

    headers = {"content-type": "application/json", "idempotency-key": "k"}
    declared = await offline_storefront.post("/api/payments", content=too_big, headers=headers)
    streamed = await offline_storefront.post("/api/payments", content=chunks(), headers=headers)

    # Refused before payment is called (it is down: that would be a 502). A declared Content-Length over the
    # limit is answered by Starlette's body-limit middleware itself, in plain text.
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"


async def test_register_log_in_and_read_me_through_storefront(users_app: FastAPI, users_wire: FaultInjector) -> None:
    async with storefront_client({"users": users_wire}) as storefront:
        account = {"email": "ada@example.com", "password": "correct horse", "name": "Ada"}
        created = await storefront.post("/api/users", json=account)
        assert created.status_code == 201
        assert created.json()["email"] == "ada@example.com"
        again = await storefront.post("/api/users", json=account)
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"

        token = await storefront.post("/api/tokens", json={"email": account["email"], "password": "correct horse"})
        assert token.status_code == 200
        assert token.json()["token_type"] == "bearer"

        anonymous = await storefront.get("/api/users/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].lower().startswith("bearer")
        me = await storefront.get("/api/users/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert me.status_code == 200
        assert me.json()["id"] == created.json()["id"]

        jwks = await storefront.get("/api/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert jwks.json()["keys"]

        wrong = await storefront.post("/api/tokens", json={"email": account["email"], "password": "wrong password"})
        assert wrong.status_code == 401
