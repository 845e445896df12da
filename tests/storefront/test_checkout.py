"""The web shop's checkout, end to end through the storefront, with all four services in-process."""

import uuid

from tests.conftest import Shop


async def test_checkout_through_the_storefront_charges_once_per_key(shop: Shop) -> None:
    storefront = shop.storefront
    account = {"email": "grace@example.com", "password": "correct horse battery", "name": "Grace"}
    assert (await storefront.post("/api/users", json=account)).status_code == 201
    token = await storefront.post("/api/tokens", json={"email": account["email"], "password": account["password"]})
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    product = (await storefront.get("/api/products")).json()["items"][0]
    body = {"items": [{"sku": product["sku"], "quantity": 2}], "card_number": "4242424242424242"}
    headers = {**auth, "Idempotency-Key": str(uuid.uuid4())}

    first = await storefront.post("/api/payments", json=body, headers=headers)
    retried = await storefront.post("/api/payments", json=body, headers=headers)

    assert first.status_code == 201, first.text
    assert first.json()["status"] == "captured"
    assert first.json()["amount_cents"] == 2 * product["price_cents"]
    assert retried.json()["id"] == first.json()["id"]
    listed = await storefront.get("/api/payments", headers=auth)
    assert [p["id"] for p in listed.json()["items"]] == [first.json()["id"]]
    mine = await storefront.get(f"/api/payments/{first.json()['id']}", headers=auth)
    assert mine.json()["status"] == "captured"

    declined = await storefront.post(
        "/api/payments",
        json={**body, "card_number": "4000000000000002"},
        headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert declined.status_code == 402
    assert declined.headers["content-type"] == "application/problem+json"
