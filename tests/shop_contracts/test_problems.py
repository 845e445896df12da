"""Each problem type of the contracts is what its producer really sends, and what its readers act on."""

import uuid
from collections.abc import Mapping

import httpx
import psycopg

from shop_catalog import exceptions as catalog_errors
from shop_contracts import PROBLEM_BASE, ProblemType
from shop_load.core.shopping import checkout_outcome, problem_slug
from shop_payment import exceptions as payment_errors
from shopkit import NotFoundError
from tests.conftest import Shop, register_and_login
from tests.payment.test_payments import APPROVED, assert_problem

SKU = "KB-ERGO-01"


async def _reserve(shop: Shop, items: list[dict[str, object]], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    return await shop.catalog.post("/reservations", json={"items": items}, headers=headers)


async def _pay(shop: Shop, auth: Mapping[str, str], sku: str, quantity: int, key: str | None = None) -> httpx.Response:
    body = {"items": [{"sku": sku, "quantity": quantity}], "card_number": APPROVED}
    return await shop.payment.post("/payments", json=body, headers={**auth, "Idempotency-Key": key or uuid.uuid4().hex})


def _set_stock(shop: Shop, sku: str, stock: int) -> None:
    with psycopg.connect(shop.database_urls["catalog"]) as conn:
        conn.execute("UPDATE products SET stock = %s WHERE sku = %s", (stock, sku))


def test_the_wire_values_are_the_slugs_the_services_always_sent() -> None:
    assert PROBLEM_BASE == "https://resilient-shop.dev/problems/"
    assert {problem.name: str(problem) for problem in ProblemType} == {
        "INSUFFICIENT_STOCK": "insufficient-stock",
        "UNKNOWN_SKU": "unknown-sku",
        "IDEMPOTENCY_KEY_REUSED": "idempotency-key-reused",
        "INVALID_RESERVATION_STATE": "invalid-reservation-state",
    }
    assert ProblemType.INSUFFICIENT_STOCK.uri == "https://resilient-shop.dev/problems/insufficient-stock"
    assert NotFoundError().type == PROBLEM_BASE + "not-found", "shopkit renders every type under the same base"


def test_each_service_raises_them_under_the_contracts_name() -> None:
    assert catalog_errors.InsufficientStock().type == payment_errors.InsufficientStock().type
    assert catalog_errors.UnknownSku().type == payment_errors.UnknownSku().type
    assert catalog_errors.IdempotencyKeyReused().type == payment_errors.IdempotencyKeyReused().type
    assert catalog_errors.InvalidReservationState().type == ProblemType.INVALID_RESERVATION_STATE.uri


async def test_insufficient_stock_from_catalog_is_passed_on_by_payment_and_read_by_the_customer(shop: Shop) -> None:
    _set_stock(shop, SKU, 1)
    reserved = assert_problem(await _reserve(shop, [{"sku": SKU, "quantity": 2}]), 409)
    assert reserved["type"] == ProblemType.INSUFFICIENT_STOCK.uri

    paid = await _pay(shop, await register_and_login(shop.users), SKU, 2)
    assert assert_problem(paid, 409)["type"] == ProblemType.INSUFFICIENT_STOCK.uri
    assert problem_slug(paid.json()) == ProblemType.INSUFFICIENT_STOCK
    assert checkout_outcome(paid.status_code, paid.json()) == "out_of_stock"


async def test_unknown_sku_from_catalog_is_passed_on_by_payment(shop: Shop) -> None:
    reserved = assert_problem(await _reserve(shop, [{"sku": "NO-SUCH-SKU", "quantity": 1}]), 422)
    assert reserved["type"] == ProblemType.UNKNOWN_SKU.uri

    paid = await _pay(shop, await register_and_login(shop.users), "NO-SUCH-SKU", 1)
    assert assert_problem(paid, 422)["type"] == ProblemType.UNKNOWN_SKU.uri


async def test_a_reused_key_is_named_alike_by_catalog_and_payment(shop: Shop) -> None:
    assert (await _reserve(shop, [{"sku": SKU, "quantity": 1}], key="contract-key")).status_code == 201
    reserved = assert_problem(await _reserve(shop, [{"sku": SKU, "quantity": 2}], key="contract-key"), 409)
    assert reserved["type"] == ProblemType.IDEMPOTENCY_KEY_REUSED.uri

    auth = await register_and_login(shop.users)
    assert (await _pay(shop, auth, SKU, 1, key="contract-key")).status_code == 201
    paid = assert_problem(await _pay(shop, auth, SKU, 2, key="contract-key"), 409)
    assert paid["type"] == ProblemType.IDEMPOTENCY_KEY_REUSED.uri


async def test_a_finished_reservation_answers_the_state_payment_reads_as_final(shop: Shop) -> None:
    reservation = (await _reserve(shop, [{"sku": SKU, "quantity": 1}])).json()["id"]
    assert (await shop.catalog.post(f"/reservations/{reservation}/commit")).status_code == 200
    released = assert_problem(await shop.catalog.post(f"/reservations/{reservation}/release"), 409)
    assert released["type"] == ProblemType.INVALID_RESERVATION_STATE.uri
