"""A customer's whole walk, through the storefront gateway exactly as a customer calls it."""

import uuid

from tests.conftest import Shop
from tests.payment.test_payments import APPROVED, DECLINED, assert_problem


async def test_a_customer_shops_through_the_storefront(shop: Shop) -> None:
    api = shop.storefront
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    registered = await api.post("/api/users", json={"email": email, "password": "hopper-1906", "name": "Grace"})
    assert registered.status_code == 201
    token = (await api.post("/api/tokens", json={"email": email.upper(), "password": "hopper-1906"})).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await api.get("/api/users/me", headers=auth)).json()["email"] == email

    products = (await api.get("/api/products")).json()
    assert products["total"] >= 20
    product = products["items"][0]
    sku, price, stock = product["sku"], product["price_cents"], product["stock"]
    body = {"items": [{"sku": sku, "quantity": 2}], "card_number": APPROVED}
    key = {"Idempotency-Key": f"checkout-{uuid.uuid4()}"}

    paid = await api.post("/api/payments", json=body, headers={**auth, **key})
    assert paid.status_code == 201
    assert paid.json()["status"] == "captured"
    assert paid.json()["amount_cents"] == 2 * price
    assert (await api.get(f"/api/products/{sku}")).json()["stock"] == stock - 2

    replay = await api.post("/api/payments", json=body, headers={**auth, **key})
    assert replay.status_code == 201
    assert replay.json()["id"] == paid.json()["id"]

    other_body = {"items": [{"sku": sku, "quantity": 1}], "card_number": APPROVED}
    assert_problem(await api.post("/api/payments", json=other_body, headers={**auth, **key}), 409)

    declined = {"items": [{"sku": sku, "quantity": 1}], "card_number": DECLINED}
    assert_problem(await api.post("/api/payments", json=declined, headers={**auth, "Idempotency-Key": "d-1"}), 402)
    assert (await api.get(f"/api/products/{sku}")).json()["stock"] == stock - 2

    luhn = {"items": [{"sku": sku, "quantity": 1}], "card_number": "4242424242424243"}
    assert_problem(await api.post("/api/payments", json=luhn, headers={**auth, "Idempotency-Key": "l-1"}), 422)

    stranger_email = f"eve-{uuid.uuid4().hex[:8]}@example.com"
    await api.post("/api/users", json={"email": stranger_email, "password": "eavesdrop-1", "name": "Eve"})
    stranger_token = (await api.post("/api/tokens", json={"email": stranger_email, "password": "eavesdrop-1"})).json()
    stranger = {"Authorization": f"Bearer {stranger_token['access_token']}"}
    assert_problem(await api.get(f"/api/payments/{paid.json()['id']}", headers=stranger), 404)

    assert_problem(await api.post("/api/payments", json=body, headers=key), 401)
    assert (await api.get(f"/api/products/{sku}")).json()["stock"] == stock - 2
