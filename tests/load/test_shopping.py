"""What a customer does: weights, baskets, answers; the locustfile itself is imported in a subprocess (Locust
monkey-patches the standard library with gevent on import, which must not happen inside pytest)."""

import json
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shop_load.core.shopping import (
    APPROVED_CARD,
    DECLINED_CARD,
    TASK_WEIGHTS,
    card_for,
    checkout_outcome,
    payment_of,
    pick_basket,
    retry_after_seconds,
)

ROOT = Path(__file__).parents[2]
PRODUCTS = [
    {"sku": "KB-ERGO-01", "stock": 40},
    {"sku": "MS-VERT-02", "stock": 0},
    {"sku": "HD-NC-04", "stock": 2},
]


def test_browsing_is_far_more_common_than_paying() -> None:
    browsing = TASK_WEIGHTS["browse"] + TASK_WEIGHTS["search"] + TASK_WEIGHTS["view"]
    assert browsing >= 10 * TASK_WEIGHTS["checkout"]
    assert all(weight > 0 for weight in TASK_WEIGHTS.values())


def test_the_locustfile_imports_with_those_weights() -> None:
    script = (
        "import json, sys; sys.path.insert(0, 'load'); import locustfile;"
        "print(json.dumps({t.__name__: getattr(t, 'locust_task_weight', None) for t in locustfile.Shopper.tasks}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    # Locust lists a task once per unit of weight
    tasks = json.loads(result.stdout.strip().splitlines()[-1])
    assert tasks == dict(TASK_WEIGHTS)


def test_baskets_only_hold_products_with_stock() -> None:
    rng = random.Random(7)
    for _ in range(200):
        basket = pick_basket(PRODUCTS, rng)
        assert 1 <= len(basket) <= 2
        assert {line["sku"] for line in basket} <= {"KB-ERGO-01", "HD-NC-04"}
        assert len({line["sku"] for line in basket}) == len(basket)
        assert all(line["quantity"] == 1 for line in basket if line["sku"] == "HD-NC-04")
    assert pick_basket([{"sku": "X", "stock": 0}], rng) == []


def test_declined_cards_come_at_the_asked_share() -> None:
    rng = random.Random(3)
    cards = [card_for(rng, 0.1) for _ in range(2000)]
    assert 150 < cards.count(DECLINED_CARD) < 250
    assert set(cards) == {APPROVED_CARD, DECLINED_CARD}


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (201, {"id": "p"}, "captured"),
        (402, {"payment": {"id": "p"}}, "declined"),
        (409, {"type": "https://resilient-shop.dev/problems/insufficient-stock"}, "out_of_stock"),
        (409, {"type": "https://resilient-shop.dev/problems/idempotency-key-reused"}, "rejected"),
        (503, {"type": "https://resilient-shop.dev/problems/payment-pending"}, "retry"),
        (502, None, "retry"),
        (504, None, "retry"),
        (None, None, "retry"),
        (422, {}, "rejected"),
    ],
)
def test_checkout_outcomes(status: int | None, body: object, outcome: str) -> None:
    assert checkout_outcome(status, body) == outcome


def test_the_payment_of_an_answer() -> None:
    assert payment_of(201, {"id": "p"}) == {"id": "p"}
    assert payment_of(402, {"payment": {"id": "p"}}) == {"id": "p"}
    assert payment_of(409, {"id": "p"}) is None


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("1") == 1.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds("Thu, 26 Nov 2026 12:00:03 GMT", now=now) == 3.0
    assert retry_after_seconds("Thu, 26 Nov 2026 11:59:00 GMT", now=now) == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("nan") is None
