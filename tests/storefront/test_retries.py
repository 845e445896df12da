"""Failures between the storefront and its services: what is retried, what is not, and what the client sees."""

import asyncio
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from tests.conftest import Fault, FaultInjector, Shop, register_and_login
from tests.payment.test_payments import APPROVED, SKU
from tests.storefront.conftest import storefront_client
from tests.storefront.test_gateway import sold

PROBLEM_BASE = "https://resilient-shop.dev/problems/"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


async def test_a_get_is_retried_and_succeeds(storefront: httpx.AsyncClient, catalog_wire: FaultInjector) -> None:
    faults: list[Fault] = [
        connect_error(),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("connection reset by peer"),  # the pod was OOM-killed, or closed a kept-alive connection
        httpx.WriteError("broken pipe"),
        502,
        503,
    ]
    for fault in faults:
        catalog_wire.faults, catalog_wire.requests = [fault], []
        retries = _sample("shop_gateway_retries_total", upstream="catalog")

        response = await storefront.get("/api/products", headers={"Cache-Control": "no-cache"})  # past the cache

        assert response.status_code == 200, fault
        assert response.json()["total"] >= 20
        assert len(catalog_wire.requests) == 2
        assert _sample("shop_gateway_retries_total", upstream="catalog") == retries + 1


async def test_a_post_with_an_idempotency_key_is_retried_and_done_once(shop: Shop) -> None:
    """A checkout whose first two tries never got an answer (refused, then shed) is paid once, on the third."""
    customer = await register_and_login(shop.users)
    wire = shop.wires["payment"]
    wire.faults = [connect_error(), 503]
    body = {"items": [{"sku": SKU, "quantity": 3}], "card_number": APPROVED}

    response = await shop.storefront.post(
        "/api/payments", json=body, headers={"Idempotency-Key": "checkout-1", **customer}
    )

    assert response.status_code == 201
    assert len(wire.requests) == 3
    mine = (await shop.storefront.get("/api/payments", headers=customer)).json()
    assert [payment["id"] for payment in mine["items"]] == [response.json()["id"]]
    assert await sold(shop) == 3


async def test_a_post_without_a_key_is_not_retried(shop: Shop) -> None:
    """A registration carries no Idempotency-Key: a failed try is answered as it failed, never sent again."""
    email = f"retry-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": "correct horse battery", "name": "Ada"}
    wire = shop.wires["users"]
    faults: list[tuple[Fault, int]] = [(connect_error(), 502), (503, 503)]
    for fault, status in faults:
        wire.faults, wire.requests = [fault], []

        response = await shop.storefront.post("/api/users", json=body)

        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        assert len(wire.requests) == 1
    assert (await shop.storefront.post("/api/users", json=body)).status_code == 201  # none of the tries registered


async def test_retry_attempts_of_one_turns_retries_off(catalog_wire: FaultInjector) -> None:
    catalog_wire.faults = [connect_error()]
    async with storefront_client({"catalog": catalog_wire}, retry_attempts=1) as storefront:
        response = await storefront.get("/api/products")

    assert response.status_code == 502
    assert len(catalog_wire.requests) == 1


async def test_an_upstream_that_stays_down_is_a_502_problem(
    storefront: httpx.AsyncClient, catalog_wire: FaultInjector
) -> None:
    catalog_wire.faults = [connect_error() for _ in range(3)]
    unavailable = _sample("shop_gateway_requests_total", upstream="catalog", outcome="unavailable")

    response = await storefront.get("/api/products")

    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + "upstream-unavailable"
    assert "catalog" in problem["detail"]
    assert len(catalog_wire.requests) == 3
    assert _sample("shop_gateway_requests_total", upstream="catalog", outcome="unavailable") == unavailable + 1


async def test_an_upstream_timeout_is_a_504_problem_and_not_retried(
    storefront: httpx.AsyncClient, catalog_wire: FaultInjector
) -> None:
    catalog_wire.faults = [httpx.ReadTimeout("read timed out")]

    response = await storefront.get("/api/products")

    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM_BASE + "upstream-timeout"
    assert len(catalog_wire.requests) == 1


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/payments", {}),
        ("POST", "/api/payments", {"Idempotency-Key": "pay-1"}),
        ("POST", "/api/payments", {}),
    ],
)
async def test_an_unreachable_payment_service_is_a_quick_502_that_leaks_no_address(
    method: str, path: str, headers: dict[str, str], offline_storefront: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    response = await offline_storefront.request(
        method, path, json={"items": [{"sku": "X", "quantity": 1}]}, headers=headers
    )

    assert time.monotonic() - started < 2
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + "upstream-unavailable"
    assert problem["detail"] == "The payment service cannot be reached; try again shortly."
    assert "127.0.0.1" not in response.text
    assert "Traceback" not in response.text


async def test_a_full_bulkhead_to_a_service_is_a_quick_503_with_retry_after() -> None:
    release = asyncio.Event()
    catalog = FastAPI()

    @catalog.get("/products")
    async def products() -> dict[str, object]:
        await release.wait()
        return {"items": [], "total": 0}

    transports = {"catalog": httpx.ASGITransport(app=catalog)}
    async with storefront_client(transports, upstream_max_connections=1) as storefront:
        fresh = {"Cache-Control": "no-cache"}
        waiting = asyncio.create_task(storefront.get("/api/products", headers=fresh))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        busy = await storefront.get("/api/products", headers=fresh)
        took = time.monotonic() - started
        release.set()
        assert (await waiting).status_code == 200

    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["type"] == PROBLEM_BASE + "upstream-busy"
    assert took < 2
