"""The drill's invariants, checked at the end against the shop through the storefront: the payments
through the public API, as a customer could, and the inventory through the operator's door (`shop_load.core.ops`).

1. `answered_payments_stored`: every payment a customer was answered for (201 captured, 402 declined) exists,
   once, with that status: `GET /api/payments/{id}` with the customer's token.
2. `one_payment_per_key`: no idempotency key has two payments. Each answered key is sent again with the same body
   and must give back the same payment id and status; each customer's payment list (`GET /api/payments`) must
   hold exactly the payments of their keys, no more. Checkouts whose customer gave up are first finished the way
   a returning customer would, by sending their key again; a key still without a final answer fails the check.
3. `stock_conserved`: `stock + held + sold` of every product equals its value before the drill
   (`GET /ops/inventory`, with the operator's credential); only a restock changes that sum.

Held stock. A reservation is held between a payment's first step and its end; one whose payment never got
recorded (the process died in between) is held until it expires (catalog's `CATALOG_RESERVATION_TTL_SECONDS`,
5 minutes by default). So at the end the drill waits (`settle`) for held units to come back to where they were;
units still held after that pass only while every reservation the drill made is younger than the TTL (the drill
ran for less than it), because they cannot have been due yet. Past the TTL, held units above the start mean a
reservation that never expired, and the check fails.

The evaluation is pure (`evaluate`, the checks in `shop_load.invariants.checks`); `verify` fetches what it
needs. The ledger (customers, their keys and bodies, what they were answered, the inventory at the start) is
written next to the report, so `shop-drill --check <ledger>` can check again later, e.g. after changing a row
behind the API on purpose. The operator's credential is not in it: the checks are given it (`verify`).
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter

from shop_contracts import CUSTOMER_RETRYABLE_STATUSES
from shop_load.core.customers import Customer
from shop_load.core.ops import Operator
from shop_load.core.records import Checkout, InvariantResult
from shop_load.core.shopping import json_body
from shop_load.invariants import checks


@dataclass
class Ledger:
    base_url: str
    started_at: str
    """When the drill started (ISO 8601, UTC): no reservation of its customers is older."""
    reservation_ttl_seconds: float
    customers: list[Customer] = field(default_factory=list)
    checkouts: list[Checkout] = field(default_factory=list)
    initial_inventory: list[dict[str, Any]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_bytes(_LEDGER.dump_json(self, indent=1) + b"\n")

    @classmethod
    def load(cls, path: Path) -> "Ledger":
        return _LEDGER.validate_json(path.read_bytes())


_LEDGER = TypeAdapter(Ledger)
"""The ledger as JSON, its customers and checkouts validated when read back."""


@dataclass
class Observed:
    """What the API said at the end."""

    fetched: dict[str, checks.Answer] = field(default_factory=dict)
    """Answered key → GET /api/payments/{id}."""
    replays: dict[str, checks.Answer] = field(default_factory=dict)
    """Key → its request sent again (answered keys, and the keys of customers who gave up)."""
    listed: dict[int, list[str]] = field(default_factory=dict)
    """Customer index → ids of GET /api/payments."""
    final_inventory: list[dict[str, Any]] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    """Since the drill started, when the inventory was read."""


def evaluate(ledger: Ledger, observed: Observed) -> list[InvariantResult]:
    return [
        checks.check_answered_payments(ledger.checkouts, observed.fetched),
        checks.check_one_payment_per_key(ledger.checkouts, observed.replays, observed.listed),
        checks.check_stock(
            ledger.initial_inventory,
            observed.final_inventory,
            elapsed_seconds=observed.elapsed_seconds,
            reservation_ttl_seconds=ledger.reservation_ttl_seconds,
        ),
    ]


# Fetching


async def _json(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> checks.Answer:
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.HTTPError:
        return None, None
    return response.status_code, json_body(response)


async def _replay(
    client: httpx.AsyncClient, customer: Customer, checkout: Checkout, deadline: float, limit: asyncio.Semaphore
) -> checks.Answer:
    """The checkout's request again, same key and body, until it has a final answer or the deadline."""
    headers = {**customer.auth, "Idempotency-Key": checkout.key}
    async with limit:
        while True:
            status, body = await _json(client, "POST", "/api/payments", json=checkout.body, headers=headers)
            if (status is not None and status not in CUSTOMER_RETRYABLE_STATUSES) or time.monotonic() > deadline:
                return status, body
            await asyncio.sleep(0.5)


async def _listed(client: httpx.AsyncClient, customer: Customer) -> list[str]:
    ids: list[str] = []
    while True:
        status, body = await _json(client, "GET", f"/api/payments?limit=100&offset={len(ids)}", headers=customer.auth)
        if status != 200 or not isinstance(body, dict):
            raise httpx.HTTPError(f"GET /api/payments answered {status}")
        ids += [str(item["id"]) for item in body["items"]]
        if not body["items"] or len(ids) >= body["total"]:
            return ids


async def _settle_held(
    client: httpx.AsyncClient, operator: Operator, initial: Sequence[Mapping[str, Any]], deadline: float
) -> None:
    held_before = {row["sku"]: row["held"] for row in initial}
    while time.monotonic() < deadline:
        if all(row["held"] <= held_before.get(row["sku"], 0) for row in await operator.inventory(client)):
            return
        await asyncio.sleep(0.5)


async def observe(client: httpx.AsyncClient, ledger: Ledger, operator: Operator, *, settle_seconds: float) -> Observed:
    limit, deadline = asyncio.Semaphore(16), time.monotonic() + settle_seconds
    unanswered = [c for c in ledger.checkouts if c.outcome in {"failed", "pending"}]
    answered = [c for c in ledger.checkouts if c.outcome in checks.ANSWERED]

    async def replay(checkout: Checkout, until: float) -> checks.Answer:
        return await _replay(client, ledger.customers[checkout.customer], checkout, until, limit)

    async def fetch(checkout: Checkout) -> checks.Answer:
        path, customer = f"/api/payments/{checkout.payment_id}", ledger.customers[checkout.customer]
        async with limit:
            return await _json(client, "GET", path, headers=customer.auth)

    finished = await asyncio.gather(*(replay(c, deadline) for c in unanswered))
    await _settle_held(client, operator, ledger.initial_inventory, deadline)
    fetched = await asyncio.gather(*(fetch(c) for c in answered))
    replayed = await asyncio.gather(*(replay(c, time.monotonic() + 10) for c in answered))
    customers = sorted({c.customer for c in ledger.checkouts})
    lists = await asyncio.gather(*(_listed(client, ledger.customers[i]) for i in customers))
    return Observed(
        fetched={c.key: answer for c, answer in zip(answered, fetched, strict=True)},
        replays={c.key: answer for c, answer in zip(unanswered + answered, finished + replayed, strict=True)},
        listed=dict(zip(customers, lists, strict=True)),
        final_inventory=await operator.inventory(client),
    )


async def verify(ledger: Ledger, operator: Operator, *, settle_seconds: float = 20.0) -> list[InvariantResult]:
    """Checks every invariant against the shop at `ledger.base_url`, reading its inventory as `operator`. A shop
    that cannot be asked fails them."""
    try:
        async with httpx.AsyncClient(base_url=ledger.base_url, timeout=10.0) as client:
            observed = await observe(client, ledger, operator, settle_seconds=settle_seconds)
    except httpx.HTTPError as exc:
        reason = f"could not be checked: {exc}"
        return [InvariantResult(name, text, False, reason, [reason]) for name, text in checks.DESCRIPTIONS.items()]
    observed.elapsed_seconds = (datetime.now(UTC) - datetime.fromisoformat(ledger.started_at)).total_seconds()
    return evaluate(ledger, observed)
