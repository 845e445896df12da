"""The payment API against real catalog and users apps and a real PostgreSQL."""

import uuid
from typing import Any

import httpx
import psycopg

from shopkit import PROBLEM_JSON
from tests.conftest import AS_OPERATOR, Shop, register_and_login

APPROVED = "4242424242424242"
DECLINED = "4000000000000002"
SKU = "KB-ERGO-01"


def payment_body(quantity: int = 2, sku: str = SKU, card: str = APPROVED) -> dict[str, Any]:
    return {"items": [{"sku": sku, "quantity": quantity}], "card_number": card}


async def pay(shop: Shop, auth: dict[str, str], body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {**auth, "Idempotency-Key": key or uuid.uuid4().hex}
    return await shop.payment.post("/payments", json=body, headers=headers)


async def stock(shop: Shop, sku: str = SKU) -> int:
    response = await shop.catalog.get(f"/products/{sku}")
    value: int = response.json()["stock"]
    return value


def payment_rows(shop: Shop) -> list[tuple[Any, ...]]:
    with psycopg.connect(shop.database_urls["payment"]) as conn:
        return conn.execute("SELECT id, status, idempotency_key FROM payments ORDER BY created_at").fetchall()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


async def test_approved_card_captures_at_the_catalog_price_and_sells_the_stock(shop: Shop) -> None:
    auth = await register_and_login(shop.users)
    price = (await shop.catalog.get(f"/products/{SKU}")).json()["price_cents"]
    before = await stock(shop)

    response = await pay(shop, auth, payment_body(quantity=2))

    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "captured"
    assert payment["amount_cents"] == 2 * price
    assert payment["currency"] == "EUR"
    assert payment["items"] == [{"sku": SKU, "quantity": 2, "unit_price_cents": price}]
    assert payment["card_last4"] == "4242"
    assert await stock(shop) == before - 2
    inventory = {row["sku"]: row for row in (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json()}
    assert inventory[SKU]["sold"] == 2
    assert inventory[SKU]["held"] == 0


async def test_replaying_a_key_returns_the_same_payment_and_charges_once(shop: Shop) -> None:
    auth = await register_and_login(shop.users)
    before = await stock(shop)
    first = await pay(shop, auth, payment_body(), key="order-1")
    replay = await pay(shop, auth, payment_body(), key="order-1")

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert await stock(shop) == before - 2
    assert len(payment_rows(shop)) == 1


async def test_a_key_reused_with_another_body_is_a_conflict(shop: Shop) -> None:
    auth = await register_and_login(shop.users)
    assert (await pay(shop, auth, payment_body(quantity=2), key="order-2")).status_code == 201
    before = await stock(shop)

    body = assert_problem(await pay(shop, auth, payment_body(quantity=3), key="order-2"), 409)

    assert body["type"].endswith("/idempotency-key-reused")
    assert await stock(shop) == before
    assert len(payment_rows(shop)) == 1


async def test_the_same_key_from_two_users_gives_two_payments(shop: Shop) -> None:
    alice, bob = await register_and_login(shop.users), await register_and_login(shop.users)
    first = await pay(shop, alice, payment_body(), key="cart-1")
    second = await pay(shop, bob, payment_body(), key="cart-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_declined_card_is_stored_declined_and_releases_the_stock(shop: Shop) -> None:
    auth = await register_and_login(shop.users)
    before = await stock(shop)

    body = assert_problem(await pay(shop, auth, payment_body(card=DECLINED), key="declined-1"), 402)

    assert body["payment"]["status"] == "declined"
    assert body["payment"]["decline_reason"] == "card_declined"
    assert await stock(shop) == before
    stored = await shop.payment.get(f"/payments/{body['payment']['id']}", headers=auth)
    assert stored.json()["status"] == "declined"
    replay = assert_problem(await pay(shop, auth, payment_body(card=DECLINED), key="declined-1"), 402)
    assert replay["payment"]["id"] == body["payment"]["id"]
    inventory = {row["sku"]: row for row in (await shop.catalog.get("/inventory", headers=AS_OPERATOR)).json()}
    assert inventory[SKU]["held"] == inventory[SKU]["sold"] == 0


async def test_luhn_invalid_card_is_rejected_before_anything_happens(shop: Shop) -> None:
    auth = await register_and_login(shop.users)
    before = await stock(shop)
    body = assert_problem(await pay(shop, auth, payment_body(card="4242424242424241")), 422)
    assert any("Luhn" in error["msg"] for error in body["errors"])
    assert await stock(shop) == before
    assert payment_rows(shop) == []


async def test_insufficient_stock_is_a_conflict_that_changes_nothing(shop: Shop) -> None:
    auth = await register_and_login(shop.users)
    before = await stock(shop, "UPS-1K-24")
    body = payment_body(quantity=before + 1, sku="UPS-1K-24")
    problem = assert_problem(await pay(shop, auth, body), 409)
    assert problem["type"].endswith("/insufficient-stock")
    assert await stock(shop, "UPS-1K-24") == before
    assert payment_rows(shop) == []


async def test_payments_are_private_to_their_owner(shop: Shop) -> None:
    owner, stranger = await register_and_login(shop.users), await register_and_login(shop.users)
    payment = (await pay(shop, owner, payment_body())).json()

    assert (await shop.payment.get(f"/payments/{payment['id']}", headers=owner)).status_code == 200
    assert_problem(await shop.payment.get(f"/payments/{payment['id']}", headers=stranger), 404)
    assert_problem(await shop.payment.get(f"/payments/{uuid.uuid4()}", headers=owner), 404)
    assert (await shop.payment.get("/payments", headers=stranger)).json() == {"items": [], "total": 0}


async def test_listing_shows_the_callers_payments_newest_first(shop: Shop) -> None:
    auth = await register_and_login(shop.users)
    ids = [(await pay(shop, auth, payment_body(quantity=1))).json()["id"] for _ in range(3)]
    page = (await shop.payment.get("/payments", headers=auth, params={"limit": 2})).json()
    assert page["total"] == 3
    assert [p["id"] for p in page["items"]] == ids[::-1][:2]


async def test_authentication_is_required(shop: Shop) -> None:
    assert_problem(await shop.payment.post("/payments", json=payment_body(), headers={"Idempotency-Key": "k"}), 401)
    garbage = {"Authorization": "Bearer not-a-jwt", "Idempotency-Key": "k"}
    assert_problem(await shop.payment.post("/payments", json=payment_body(), headers=garbage), 401)
    assert_problem(await shop.payment.get("/payments"), 401)
    assert payment_rows(shop) == []
