"""The gateway's public surface is exactly the public API: every other operation of every service, including the
ones a new router may add tomorrow, is 404 through `/api`, and the internal ones cannot be used from outside."""

import re
import uuid
from collections.abc import Callable, Iterator, Sequence

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.routing import BaseRoute, Route

from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from shop_payment.main import create_app as create_payment
from shop_payment.settings import PaymentSettings
from shop_storefront.main import create_app as create_storefront
from shop_storefront.proxy import resolve
from shop_storefront.settings import StorefrontSettings
from shop_users.main import create_app as create_users
from shop_users.settings import UsersSettings
from tests.conftest import AS_OPERATOR, Shop, register_and_login

PUBLIC = {
    ("catalog", "GET", "/products"),
    ("catalog", "GET", "/products/{sku}"),
    ("users", "POST", "/users"),
    ("users", "GET", "/users/me"),
    ("users", "POST", "/tokens"),
    ("users", "GET", "/.well-known/jwks.json"),
    ("payment", "POST", "/payments"),
    ("payment", "GET", "/payments"),
    ("payment", "GET", "/payments/{payment_id}"),
}
"""The public API, written out: an operation added to a service is internal until it is added here."""

CHAOS_TOKEN = SecretStr("a-chaos-token-for-the-walk")
FACTORIES: dict[str, Callable[[], FastAPI]] = {
    "catalog": lambda: create_catalog(CatalogSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN)),
    "users": lambda: create_users(UsersSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN)),
    "payment": lambda: create_payment(PaymentSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN)),
    "storefront": lambda: create_storefront(StorefrontSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN)),
}
"""Every service with every router mounted, chaos included (the walk needs no database: nothing is started)."""


def served(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI keeps each as the router it includes)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from served(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif isinstance(route, Route):
            yield from ((method, prefix + route.path) for method in sorted((route.methods or set()) - {"HEAD"}))


def operations(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every operation in the app's OpenAPI document, and of every route it serves besides
    (probes, metrics, chaos: hidden from the document, but served)."""
    for path, item in app.openapi()["paths"].items():
        for method in item:
            yield method.upper(), path
    yield from served(app.routes)


def concrete(path: str) -> str:
    """A path template with each parameter filled in, as a caller would send it."""
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def every_operation() -> list[tuple[str, str, str]]:
    found = {(service, *operation) for service, factory in FACTORIES.items() for operation in operations(factory())}
    return sorted(found)


def test_the_walk_sees_every_kind_of_operation() -> None:
    """A typo in PUBLIC, or a walk that missed hidden routes, would let the walk below pass without checking."""
    walked = set(every_operation())
    assert walked >= PUBLIC
    for hidden in [
        ("catalog", "POST", "/chaos/leak"),
        ("payment", "GET", "/healthz"),
        ("users", "GET", "/ready"),
        ("catalog", "POST", "/restock"),
        ("storefront", "GET", "/ops/inventory"),
        ("storefront", "GET", "/recovery/state"),
        ("storefront", "POST", "/ops/chaos/{replica}/{action}"),
    ]:
        assert hidden in walked


@pytest.mark.parametrize(("service", "method", "path"), every_operation())
async def test_each_operation_outside_the_public_api_is_404_through_the_gateway(
    service: str, method: str, path: str, offline_storefront: httpx.AsyncClient
) -> None:
    target = resolve(concrete(path).lstrip("/"))
    if (service, method, path) in PUBLIC:
        assert target is not None
        assert target.upstream == service
        return
    assert target is None, f"{method} {path} of {service} is routed to {target}"
    response = await offline_storefront.request(method, "/api" + concrete(path))
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/api-route-not-found")


async def test_no_one_takes_stock_through_the_gateway(shop: Shop) -> None:
    """The issue's curl sequence: hold three units, then commit them, with no token and with a customer's."""
    before = (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json()
    customer = await register_and_login(shop.users)
    body = {"items": [{"sku": "CH-MESH-06", "quantity": 3}]}
    for headers in ({}, customer):
        held = await shop.storefront.post("/api/reservations", json=body, headers={"Idempotency-Key": "k", **headers})
        assert held.status_code == 404
        assert held.headers["content-type"] == "application/problem+json"
        committed = await shop.storefront.post(f"/api/reservations/{uuid.uuid4()}/commit", headers=headers)
        assert committed.status_code == 404
        for path in ("/api/inventory", "/api/restock", "/api/reservations"):
            assert (await shop.storefront.get(path, headers=headers)).status_code == 404
    assert shop.wires["catalog"].requests == []  # none of it reached catalog
    assert (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json() == before
