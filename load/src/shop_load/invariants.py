"""The drill's invariants (SPEC §8), checked at the end against the shop's public API, as a customer could.

1. `answered_payments_stored`: every payment a customer was answered for (201 captured, 402 declined) exists,
   once, with that status: `GET /api/payments/{id}` with the customer's token.
2. `one_payment_per_key`: no idempotency key has two payments. Each answered key is sent again with the same body
   and must give back the same payment id and status; each customer's payment list (`GET /api/payments`) must
   hold exactly the payments of their keys, no more. Checkouts whose customer gave up are first finished the way
   a returning customer would, by sending their key again; a key still without a final answer fails the check.
3. `stock_conserved`: `stock + held + sold` of every product equals its value before the drill
   (`GET /api/inventory`); only a restock changes that sum.

Held stock. A reservation is held between a payment's first step and its end; one whose payment never got
recorded (the process died in between) is held until it expires (catalog's `CATALOG_RESERVATION_TTL_SECONDS`,
5 minutes by default). So at the end the drill waits (`settle`) for held units to come back to where they were;
units still held after that pass only while every reservation the drill made is younger than the TTL (the drill
ran for less than it), because they cannot have been due yet. Past the TTL, held units above the start mean a
reservation that never expired, and the check fails.

The evaluation is pure (`evaluate`); `verify` fetches what it needs. The ledger (customers, their keys and bodies,
what they were answered, the inventory at the start) is written next to the report, so `shop-drill --check
<ledger>` can check again later, e.g. after changing a row behind the API on purpose.
"""

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from shop_load.customers import Customer
from shop_load.records import Checkout, InvariantResult
from shop_load.shopping import RETRYABLE_STATUSES, payment_of

ANSWERED = {"captured": 201, "declined": 402}
DESCRIPTIONS = {
    "answered_payments_stored": "every payment a customer was answered for exists exactly once with that status",
    "one_payment_per_key": "no idempotency key has two payments",
    "stock_conserved": "stock + held + sold = initial stock for every product",
}
MAX_PROBLEMS = 20
"""Problems listed per invariant; the count says how many there were in all."""


@dataclass
class Ledger:
    base_url: str
    started_at: str
    """When the drill started (ISO 8601, UTC): no reservation of its customers is older."""
    reservation_ttl_seconds: float
    customers: list[Customer] = field(default_factory=list)
    checkouts: list[Checkout] = field(default_factory=list)
    initial_inventory: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Ledger":
        return cls(
            base_url=data["base_url"],
            started_at=data["started_at"],
            reservation_ttl_seconds=float(data["reservation_ttl_seconds"]),
            customers=[Customer(**c) for c in data["customers"]],
            checkouts=[Checkout(**c) for c in data["checkouts"]],
            initial_inventory=list(data["initial_inventory"]),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Ledger":
        return cls.from_json(json.loads(path.read_text()))


Answer = tuple[int | None, Any]


@dataclass
class Observed:
    """What the API said at the end."""

    fetched: dict[str, Answer] = field(default_factory=dict)
    """Answered key → GET /api/payments/{id}."""
    replays: dict[str, Answer] = field(default_factory=dict)
    """Key → its request sent again (answered keys, and the keys of customers who gave up)."""
    listed: dict[int, list[str]] = field(default_factory=dict)
    """Customer index → ids of GET /api/payments."""
    final_inventory: list[dict[str, Any]] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    """Since the drill started, when the inventory was read."""


def _result(name: str, problems: list[str], ok_detail: str) -> InvariantResult:
    if not problems:
        return InvariantResult(name, DESCRIPTIONS[name], True, ok_detail)
    shown = problems[:MAX_PROBLEMS]
    return InvariantResult(name, DESCRIPTIONS[name], False, f"{len(problems)} violation(s): {problems[0]}", shown)


def check_answered_payments(checkouts: Sequence[Checkout], fetched: Mapping[str, Answer]) -> InvariantResult:
    problems = []
    answered = [c for c in checkouts if c.outcome in ANSWERED]
    for checkout in answered:
        status, body = fetched.get(checkout.key, (None, None))
        if status != 200 or not isinstance(body, Mapping):
            problems.append(f"payment {checkout.payment_id} (key {checkout.key}) answered {status} to its customer")
        elif str(body.get("id")) != checkout.payment_id:
            problems.append(f"payment {checkout.payment_id} came back as {body.get('id')}")
        elif body.get("status") != checkout.outcome:
            problems.append(
                f"payment {checkout.payment_id} (key {checkout.key}) was answered {checkout.outcome} "
                f"but is stored as {body.get('status')}"
            )
    return _result("answered_payments_stored", problems, f"{len(answered)} answered payments found as answered")


def check_one_payment_per_key(
    checkouts: Sequence[Checkout], replays: Mapping[str, Answer], listed: Mapping[int, Sequence[str]]
) -> InvariantResult:
    problems = []
    expected: dict[int, dict[str, str]] = {}  # customer → payment id → key
    for checkout in checkouts:
        if checkout.outcome in ANSWERED:
            status, body = replays.get(checkout.key, (None, None))
            payment = payment_of(status, body)
            if payment is None:
                problems.append(f"key {checkout.key} sent again answered {status}, not its payment")
                continue
            if str(payment.get("id")) != checkout.payment_id or status != ANSWERED[checkout.outcome]:
                problems.append(
                    f"key {checkout.key} sent again gave payment {payment.get('id')} ({status}), "
                    f"first {checkout.payment_id} ({checkout.status})"
                )
            ids: list[str | None] = [checkout.payment_id, str(payment.get("id"))]
        elif checkout.outcome in {"failed", "pending"}:  # the customer gave up: finished by sending the key again
            status, body = replays.get(checkout.key, (None, None))
            if status is None or status in RETRYABLE_STATUSES:
                problems.append(f"key {checkout.key} still has no final answer ({status})")
                continue
            payment = payment_of(status, body)
            ids = [str(payment.get("id"))] if payment else []
        else:
            continue
        for payment_id in ids:
            if payment_id is None:
                continue
            owner = expected.setdefault(checkout.customer, {})
            other = owner.setdefault(payment_id, checkout.key)
            if other != checkout.key:
                problems.append(f"payment {payment_id} is the answer to two keys: {other} and {checkout.key}")
    customers = {c.customer for c in checkouts}
    total = 0
    for customer in sorted(customers):
        listed_ids = list(listed.get(customer, []))
        total += len(listed_ids)
        if len(listed_ids) != len(set(listed_ids)):
            problems.append(f"customer {customer}'s payment list repeats a payment")
        for payment_id in sorted(set(listed_ids) - set(expected.get(customer, {}))):
            problems.append(f"customer {customer} has payment {payment_id} that none of their keys answers with")
    return _result(
        "one_payment_per_key",
        problems,
        f"{sum(len(v) for v in expected.values())} payments expected from the keys, {total} listed, one per key",
    )


def check_stock(
    initial: Sequence[Mapping[str, Any]],
    final: Sequence[Mapping[str, Any]],
    *,
    elapsed_seconds: float,
    reservation_ttl_seconds: float,
) -> InvariantResult:
    problems = []
    after = {row["sku"]: row for row in final}
    extra_held = 0
    for row in initial:
        now = after.get(row["sku"])
        if now is None:
            problems.append(f"{row['sku']} is gone from the inventory")
            continue
        before_total = row["stock"] + row["held"] + row["sold"]
        now_total = now["stock"] + now["held"] + now["sold"]
        if now_total != before_total:
            problems.append(
                f"{row['sku']}: stock {now['stock']} + held {now['held']} + sold {now['sold']} = {now_total}, "
                f"was {before_total}"
            )
        extra_held += max(0, now["held"] - row["held"])
    if extra_held and elapsed_seconds >= reservation_ttl_seconds:
        problems.append(
            f"{extra_held} units still held after a {elapsed_seconds:.0f} s run, longer than the "
            f"{reservation_ttl_seconds:.0f} s reservation TTL: a reservation did not expire"
        )
    detail = f"{len(initial)} products conserved"
    if extra_held:
        detail += (
            f"; {extra_held} units still held by reservations younger than the {reservation_ttl_seconds:.0f} s TTL"
        )
    return _result("stock_conserved", problems, detail)


def evaluate(ledger: Ledger, observed: Observed) -> list[InvariantResult]:
    return [
        check_answered_payments(ledger.checkouts, observed.fetched),
        check_one_payment_per_key(ledger.checkouts, observed.replays, observed.listed),
        check_stock(
            ledger.initial_inventory,
            observed.final_inventory,
            elapsed_seconds=observed.elapsed_seconds,
            reservation_ttl_seconds=ledger.reservation_ttl_seconds,
        ),
    ]


# Fetching


async def _json(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Answer:
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.HTTPError:
        return None, None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


async def inventory(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    status, body = await _json(client, "GET", "/api/inventory")
    if status != 200 or not isinstance(body, list):
        raise httpx.HTTPError(f"GET /api/inventory answered {status}")
    return body


async def _replay(
    client: httpx.AsyncClient, customer: Customer, checkout: Checkout, deadline: float, limit: asyncio.Semaphore
) -> Answer:
    """The checkout's request again, same key and body, until it has a final answer or the deadline."""
    headers = {**customer.auth, "Idempotency-Key": checkout.key}
    async with limit:
        while True:
            status, body = await _json(client, "POST", "/api/payments", json=checkout.body, headers=headers)
            if (status is not None and status not in RETRYABLE_STATUSES) or time.monotonic() > deadline:
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


async def _settle_held(client: httpx.AsyncClient, initial: Sequence[Mapping[str, Any]], deadline: float) -> None:
    held_before = {row["sku"]: row["held"] for row in initial}
    while time.monotonic() < deadline:
        rows = await inventory(client)
        if all(row["held"] <= held_before.get(row["sku"], 0) for row in rows):
            return
        await asyncio.sleep(0.5)


async def observe(client: httpx.AsyncClient, ledger: Ledger, *, settle_seconds: float) -> Observed:
    observed = Observed()
    limit = asyncio.Semaphore(16)
    deadline = time.monotonic() + settle_seconds
    unanswered = [c for c in ledger.checkouts if c.outcome in {"failed", "pending"}]
    answered = [c for c in ledger.checkouts if c.outcome in ANSWERED]
    finished = await asyncio.gather(
        *(_replay(client, ledger.customers[c.customer], c, deadline, limit) for c in unanswered)
    )
    observed.replays.update({c.key: answer for c, answer in zip(unanswered, finished, strict=True)})
    await _settle_held(client, ledger.initial_inventory, deadline)

    async def fetch(checkout: Checkout) -> Answer:
        async with limit:
            return await _json(
                client, "GET", f"/api/payments/{checkout.payment_id}", headers=ledger.customers[checkout.customer].auth
            )

    fetched = await asyncio.gather(*(fetch(c) for c in answered))
    observed.fetched = {c.key: answer for c, answer in zip(answered, fetched, strict=True)}
    replayed = await asyncio.gather(
        *(_replay(client, ledger.customers[c.customer], c, time.monotonic() + 10, limit) for c in answered)
    )
    observed.replays.update({c.key: answer for c, answer in zip(answered, replayed, strict=True)})
    customers = sorted({c.customer for c in ledger.checkouts})
    lists = await asyncio.gather(*(_listed(client, ledger.customers[i]) for i in customers))
    observed.listed = dict(zip(customers, lists, strict=True))
    observed.final_inventory = await inventory(client)
    return observed


async def verify(
    ledger: Ledger, *, settle_seconds: float = 20.0, request_timeout: float = 10.0
) -> list[InvariantResult]:
    """Checks every invariant against the shop at `ledger.base_url`. A shop that cannot be asked fails them."""
    try:
        async with httpx.AsyncClient(base_url=ledger.base_url, timeout=request_timeout) as client:
            observed = await observe(client, ledger, settle_seconds=settle_seconds)
    except httpx.HTTPError as exc:
        reason = f"could not be checked: {exc}"
        return [InvariantResult(name, text, False, reason, [reason]) for name, text in DESCRIPTIONS.items()]
    observed.elapsed_seconds = (datetime.now(UTC) - datetime.fromisoformat(ledger.started_at)).total_seconds()
    return evaluate(ledger, observed)
