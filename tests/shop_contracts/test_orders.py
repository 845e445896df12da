"""The order lines catalog and payment both take: one schema, so the same lines are refused alike, for the same
reason, by either service."""

import uuid
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from shop_contracts import SKU_MAX_LENGTH, LineItem, LineItems
from tests.conftest import Shop, register_and_login
from tests.payment.test_payments import APPROVED, assert_problem

LINES = TypeAdapter(LineItems)

REFUSED: dict[str, list[Any]] = {
    "a sku on two lines": [{"sku": "KB-ERGO-01", "quantity": 1}, {"sku": "KB-ERGO-01", "quantity": 2}],
    "no line": [],
    "51 lines": [{"sku": f"SKU-{n}", "quantity": 1} for n in range(51)],
    "a lower-case sku": [{"sku": "kb-ergo-01", "quantity": 1}],
    "a sku too long": [{"sku": "A" * (SKU_MAX_LENGTH + 1), "quantity": 1}],
    "a quantity of 0": [{"sku": "KB-ERGO-01", "quantity": 0}],
    "a quantity of 101": [{"sku": "KB-ERGO-01", "quantity": 101}],
    "a quantity as a string": [{"sku": "KB-ERGO-01", "quantity": "1"}],
    "a field too many": [{"sku": "KB-ERGO-01", "quantity": 1, "price_cents": 1}],
}


def test_a_sku_on_two_lines_is_refused_whatever_the_quantities() -> None:
    with pytest.raises(ValidationError) as refused:
        LINES.validate_python(
            [{"sku": "A-1", "quantity": 1}, {"sku": "B-2", "quantity": 1}, {"sku": "A-1", "quantity": 1}]
        )
    (error,) = refused.value.errors()
    assert (error["loc"], error["msg"]) == ((), "Value error, each sku may appear in one line only")


def test_lines_keep_their_order() -> None:
    lines = [{"sku": "B-2", "quantity": 3}, {"sku": "A-1", "quantity": 100}]
    assert LINES.validate_python(lines) == [LineItem(sku="B-2", quantity=3), LineItem(sku="A-1", quantity=100)]


async def refusals(shop: Shop, items: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The 422 problems of catalog's `POST /reservations` and payment's `POST /payments` for these lines."""
    auth = await register_and_login(shop.users)
    reservation = await shop.catalog.post(
        "/reservations", json={"items": items}, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    payment = await shop.payment.post(
        "/payments",
        json={"items": items, "card_number": APPROVED},
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
    )
    return assert_problem(reservation, 422), assert_problem(payment, 422)


@pytest.mark.parametrize("items", REFUSED.values(), ids=REFUSED.keys())
async def test_catalog_and_payment_refuse_the_same_lines_with_the_same_errors(shop: Shop, items: list[Any]) -> None:
    refused_by_catalog, refused_by_payment = await refusals(shop, items)
    assert refused_by_catalog["errors"] == refused_by_payment["errors"]
    assert refused_by_catalog["errors"]
    assert all(error["loc"][:2] == ["body", "items"] for error in refused_by_catalog["errors"])


async def test_both_name_the_one_line_per_sku_rule(shop: Shop) -> None:
    refused_by_catalog, refused_by_payment = await refusals(shop, REFUSED["a sku on two lines"])
    expected = [
        {"loc": ["body", "items"], "msg": "Value error, each sku may appear in one line only", "type": "value_error"}
    ]
    assert refused_by_catalog["errors"] == expected
    assert refused_by_payment["errors"] == expected


async def test_a_product_is_looked_up_by_any_sku_sized_string(shop: Shop) -> None:
    """The path takes what a line would refuse (lower case): a SKU that names no product is a 404, not a 422."""
    assert_problem(await shop.catalog.get("/products/kb-ergo-01"), 404)
    assert_problem(await shop.catalog.get("/products/" + "A" * SKU_MAX_LENGTH), 404)
    assert_problem(await shop.catalog.get("/products/" + "A" * (SKU_MAX_LENGTH + 1)), 422)
