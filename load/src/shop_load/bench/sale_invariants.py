"""A burst's invariants: the drill's (`shop_load.invariants`) on the burst's payments, read from payment's
database by their key prefix and checked through the storefront (the public API, and the inventory as the
operator), plus the provider's books from the database (`check_charges`).
"""

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg

from shop_load import invariants
from shop_load.bench.shop import Shop
from shop_load.core.customers import Customer
from shop_load.core.records import Checkout, InvariantResult, judged
from shop_load.invariants.checks import ANSWERED

VERIFY_SETTLE_SECONDS = 10.0
"""How long the invariants finish pending payments (a lease is 5 s) and wait for held stock to come back."""
RESERVATION_TTL_SECONDS = 300.0
"""catalog's default hold (CATALOG_RESERVATION_TTL_SECONDS)."""

CHARGES_DESCRIPTION = "the provider charged every captured payment once with its amount, and nothing else"


def _payments(database_url: str, prefix: str) -> list[tuple[str, str, str, str]]:
    """(payment id, user id, key, status) of every payment whose key starts with `prefix`."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id::text, user_id::text, idempotency_key, status FROM payments WHERE idempotency_key LIKE %s",
            (prefix + "-%",),
        ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def check_charges(database_url: str, prefix: str) -> tuple[InvariantResult, dict[str, int]]:
    """From payment's database: each captured payment of the burst has one approved charge of its amount; no
    approved charge belongs to a payment that is not captured. With the burst's payments by status."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT p.id::text, p.status, p.amount_cents, c.outcome, c.amount_cents"
            " FROM payments p LEFT JOIN provider_charges c ON c.payment_id = p.id"
            " WHERE p.idempotency_key LIKE %s",
            (prefix + "-%",),
        ).fetchall()
    problems = []
    for payment_id, status, amount, outcome, charged in rows:
        if status == "captured" and (outcome != "approved" or charged != amount):
            problems.append(f"captured payment {payment_id} ({amount} cents) has charge {outcome} {charged}")
        elif status != "captured" and outcome == "approved":
            problems.append(f"payment {payment_id} is {status} but the provider charged {charged} cents")
    statuses = dict(Counter(status for _, status in {(row[0], row[1]) for row in rows}))
    held = f"{statuses.get('captured', 0)} captured payments, one approved charge each"
    return judged("provider_charges_match", CHARGES_DESCRIPTION, problems, held), statuses


def verify(
    shop: Shop,
    prefix: str,
    customers: Sequence[Customer],
    bodies: Sequence[Mapping[str, Any]],
    initial: list[dict[str, Any]],
    started_at: datetime,
) -> tuple[list[InvariantResult], dict[str, int]]:
    """The drill's invariants on the burst's payments (found in the database by key), then the provider's books."""
    index_of, checkouts = {customer.user_id: i for i, customer in enumerate(customers)}, []
    for payment_id, user_id, key, status in _payments(shop.database_url, prefix):
        body = dict(bodies[int(key.rsplit("-b", 1)[1])])  # wrk's keys end in -b<the body's line>
        outcome, answer = status if status in ANSWERED else "pending", ANSWERED.get(status)
        checkouts.append(Checkout(key, index_of[user_id], body, 0.0, outcome, status=answer, payment_id=payment_id))
    began = started_at.isoformat()
    ledger = invariants.Ledger(shop.storefront, began, RESERVATION_TTL_SECONDS, list(customers), checkouts, initial)
    assert shop.operator is not None  # a burst is checked only with the operator (`sale.burst`)
    results = asyncio.run(invariants.verify(ledger, shop.operator, settle_seconds=VERIFY_SETTLE_SECONDS))
    charges, statuses = check_charges(shop.database_url, prefix)
    return [*results, charges], statuses
