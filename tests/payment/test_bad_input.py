"""Every kind of bad input gets a 4xx problem+json and changes nothing."""

from typing import Any, cast

import pytest

from tests.conftest import Shop, register_and_login
from tests.payment.test_concurrency import count
from tests.payment.test_payments import APPROVED, SKU, assert_problem

LINE = {"sku": SKU, "quantity": 1}

BAD_BODIES: dict[str, Any] = {
    "missing items": {"card_number": APPROVED},
    "missing card": {"items": [LINE]},
    "items not a list": {"items": "KB-ERGO-01", "card_number": APPROVED},
    "no lines": {"items": [], "card_number": APPROVED},
    "51 lines": {"items": [{"sku": f"SKU-{i}", "quantity": 1} for i in range(51)], "card_number": APPROVED},
    "zero quantity": {"items": [{"sku": SKU, "quantity": 0}], "card_number": APPROVED},
    "negative quantity": {"items": [{"sku": SKU, "quantity": -3}], "card_number": APPROVED},
    "quantity over 100": {"items": [{"sku": SKU, "quantity": 101}], "card_number": APPROVED},
    "huge quantity": {"items": [{"sku": SKU, "quantity": 10**30}], "card_number": APPROVED},
    "quantity as string": {"items": [{"sku": SKU, "quantity": "2"}], "card_number": APPROVED},
    "fractional quantity": {"items": [{"sku": SKU, "quantity": 1.5}], "card_number": APPROVED},
    "duplicate sku lines": {"items": [LINE, LINE], "card_number": APPROVED},
    "unknown sku": {"items": [{"sku": "NO-SUCH-THING", "quantity": 1}], "card_number": APPROVED},
    "malformed sku": {"items": [{"sku": "'; DROP TABLE products; --", "quantity": 1}], "card_number": APPROVED},
    "card with letters": {"items": [LINE], "card_number": "4242abcd42424242"},
    "card as number": {"items": [LINE], "card_number": 4242424242424242},
    "card too short": {"items": [LINE], "card_number": "4242"},
    "luhn invalid": {"items": [LINE], "card_number": "4242424242424241"},
    "client-chosen price": {"items": [{**LINE, "unit_price_cents": 1}], "card_number": APPROVED},
    "unknown field": {"items": [LINE], "card_number": APPROVED, "amount_cents": 1},
    "body is a list": [LINE],
    "body is null": None,
}


def nothing_changed(shop: Shop) -> tuple[int, int, int]:
    return (
        count(shop, "payment", "SELECT count(*) FROM payments"),
        count(shop, "catalog", "SELECT count(*) FROM reservations"),
        count(shop, "catalog", "SELECT sum(stock) FROM products"),
    )


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_bad_bodies_are_rejected_without_side_effects(shop: Shop, body: Any) -> None:
    auth = await register_and_login(shop.users)
    before = nothing_changed(shop)
    response = await shop.payment.post("/payments", json=body, headers={**auth, "Idempotency-Key": "bad-1"})
    problem = assert_problem(response, 422)
    assert "Traceback" not in response.text
    assert "4242abcd" not in response.text  # the input is never echoed back
    assert "DROP TABLE" not in response.text
    assert problem["title"]
    assert nothing_changed(shop) == before


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({"Content-Type": "application/json"}, b'{"items": [', 400),
        ({"Content-Type": "application/json"}, b"\xff\xfe not utf-8", 400),
        ({"Content-Type": "application/json"}, b'{"items": [' + b" " * 200_000 + b"]}", 413),
    ],
    ids=["malformed json", "not utf-8", "oversized body"],
)
async def test_unparseable_bodies(shop: Shop, headers: dict[str, str], content: bytes, status: int) -> None:
    auth = await register_and_login(shop.users)
    before = nothing_changed(shop)
    response = await shop.payment.post(
        "/payments", content=content, headers={**auth, **headers, "Idempotency-Key": "bad-2"}
    )
    assert_problem(response, status)
    assert nothing_changed(shop) == before


@pytest.mark.parametrize(
    "key",
    [None, "", "x" * 256, "tab\tkey", "ключ".encode()],
    ids=["missing", "empty", "too long", "control char", "non-ascii"],
)
async def test_idempotency_key_is_required_and_printable(shop: Shop, key: str | bytes | None) -> None:
    auth = await register_and_login(shop.users)
    before = nothing_changed(shop)
    headers: dict[str, str | bytes] = dict(auth) if key is None else {**auth, "Idempotency-Key": key}
    body = {"items": [LINE], "card_number": APPROVED}
    response = await shop.payment.post("/payments", json=body, headers=cast(dict[str, str], headers))  # bytes too
    assert_problem(response, 422)
    assert nothing_changed(shop) == before


@pytest.mark.parametrize(
    "path", ["/payments/not-a-uuid", "/payments?limit=0", "/payments?limit=1000", "/payments?offset=-1"]
)
async def test_bad_query_and_path_values(shop: Shop, path: str) -> None:
    auth = await register_and_login(shop.users)
    assert_problem(await shop.payment.get(path, headers=auth), 422)
