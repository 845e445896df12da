"""Paced customers for the drill: a fixed number of checkouts per second through the storefront, whatever happens.

Each checkout is a customer of a pool registered and logged in beforehand, who looks at a product (unless the
browsing comes from elsewhere: `view_product=False`) and pays for a basket with its own Idempotency-Key. An answer
that leaves the payment in doubt (502, 503, 504, no answer) is retried with the same key and body for up to
`retry_for` seconds, then the customer gives up (`failed`). Between tries it waits an exponential backoff (0.2 s
doubling to 4 s, jittered), never less than the `Retry-After` the shop asked for (itself capped at
`retry_after_cap` seconds): a shop shedding load is not hammered once a second by every waiting customer. Every
request is recorded: time, endpoint, status, latency, outcome.

Concurrency is bounded (`max_in_flight` checkouts at once). A tick of the schedule that finds the bound reached
starts no checkout; its time is kept in `not_started` (and one the process came to over a second late, in `late`),
so the offered load the shop never saw is reported, not hidden.
"""

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shop_load.core import shopping
from shop_load.core.records import Checkout, RequestRecord

MAX_IN_FLIGHT = 500
PRODUCTS_REFRESH_SECONDS = 5.0
RETRY_AFTER_CAP_SECONDS = 5.0
RETRY_BACKOFF_CAP_SECONDS = 4.0
LATE_SECONDS = 1.0
PREPARE_CONCURRENCY = 4
PREPARE_TRIES = 3


class ShopUnavailable(Exception):
    """The shop cannot be used for the drill (not running, or refusing customers); the message says why."""


@dataclass
class Customer:
    email: str
    token: str
    user_id: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Shoppers:
    base_url: str
    clock: Callable[[], float]
    rate: float = 5.0
    retry_for: float = 15.0
    request_timeout: float = 10.0
    declined_share: float = 0.1
    seed: int | None = None
    max_in_flight: int = MAX_IN_FLIGHT
    view_product: bool = True
    retry_after_cap: float = RETRY_AFTER_CAP_SECONDS
    customers: list[Customer] = field(default_factory=list)
    products: list[Mapping[str, Any]] = field(default_factory=list)
    records: list[RequestRecord] = field(default_factory=list)
    checkouts: list[Checkout] = field(default_factory=list)
    not_started: list[float] = field(default_factory=list)
    """Times of the schedule's ticks that found `max_in_flight` checkouts in flight and started none."""
    late: list[float] = field(default_factory=list)
    """Times of the schedule's ticks the process itself came to too late (a starved client) and skipped."""

    def __post_init__(self) -> None:
        self.rng, self._products_at = random.Random(self.seed), -PRODUCTS_REFRESH_SECONDS
        self._tasks: set[asyncio.Task[None]] = set()

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, endpoint: str, **kwargs: Any
    ) -> tuple[int | None, Any, float | None]:
        """Status (None: no answer), JSON body and Retry-After seconds of one recorded request."""
        t, started = self.clock(), time.perf_counter()
        try:
            response = await client.request(method, path, timeout=self.request_timeout, **kwargs)
        except httpx.HTTPError as exc:
            error = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            self.records.append(RequestRecord(t, endpoint, None, (time.perf_counter() - started) * 1000, False, error))
            return None, None, None
        latency = (time.perf_counter() - started) * 1000
        status, body = response.status_code, shopping.json_body(response)
        ok = status < 400 or shopping.checkout_outcome(status, body) in {"declined", "out_of_stock"}
        self.records.append(RequestRecord(t, endpoint, status, latency, ok))
        return status, body, shopping.retry_after_seconds(response.headers.get("retry-after"))

    async def prepare(self, client: httpx.AsyncClient, pool: int) -> None:
        """Registers and logs in `pool` customers (a few at a time; each keeps its user id) and reads the catalog;
        fails clearly if the shop cannot serve."""
        limit = asyncio.Semaphore(PREPARE_CONCURRENCY)

        async def one() -> Customer:
            async with limit:
                credentials = shopping.new_credentials()
                for _ in range(PREPARE_TRIES):  # a 503 with Retry-After (a pool dropping connections a restart cut)
                    status, body, retry = await self._send(
                        client, "POST", "/api/users", "POST /api/users", json=credentials
                    )
                    if status != 503 or retry is None:
                        break
                    await asyncio.sleep(min(retry, self.retry_after_cap))
                if status != 201 or not isinstance(body, dict):
                    raise ShopUnavailable(f"registering a customer at {self.base_url} answered {status}: {body}")
                user_id, login = str(body["id"]), {"email": credentials["email"], "password": credentials["password"]}
                status, body, _ = await self._send(client, "POST", "/api/tokens", "POST /api/tokens", json=login)
                if status != 200 or not isinstance(body, dict):
                    raise ShopUnavailable(f"logging in at {self.base_url} answered {status}: {body}")
                return Customer(credentials["email"], str(body["access_token"]), user_id)

        self.customers += await asyncio.gather(*(one() for _ in range(pool)))
        await self._refresh_products(client, force=True)
        if not shopping.in_stock(self.products):
            raise ShopUnavailable("no product has stock left: every checkout would be a 409 (make clean resets .data)")

    async def _refresh_products(self, client: httpx.AsyncClient, *, force: bool = False) -> None:
        if not force and self.clock() - self._products_at < PRODUCTS_REFRESH_SECONDS:
            return
        self._products_at = self.clock()
        status, body, _ = await self._send(client, "GET", "/api/products?limit=100", "GET /api/products")
        if status == 200 and isinstance(body, dict):
            self.products = list(body.get("items", []))
        elif force:
            raise ShopUnavailable(f"GET {self.base_url}/api/products answered {status}")

    async def checkout(self, client: httpx.AsyncClient) -> None:
        await self._refresh_products(client)
        basket = shopping.pick_basket(self.products, self.rng) or [{"sku": str(self.products[0]["sku"]), "quantity": 1}]
        customer_index = self.rng.randrange(len(self.customers))
        body = {"items": basket, "card_number": shopping.card_for(self.rng, self.declined_share)}
        checkout = Checkout(shopping.new_idempotency_key("drill"), customer_index, body, self.clock())
        self.checkouts.append(checkout)
        if self.view_product:
            await self._send(client, "GET", f"/api/products/{basket[0]['sku']}", "GET /api/products/{sku}")
        headers = {**self.customers[customer_index].auth, "Idempotency-Key": checkout.key}
        deadline, backoff = time.monotonic() + self.retry_for, 0.2
        while True:
            checkout.attempts += 1
            status, answer, retry_after = await self._send(
                client, "POST", "/api/payments", "POST /api/payments", json=body, headers=headers
            )
            outcome, checkout.status = shopping.checkout_outcome(status, answer), status
            if outcome != "retry":
                checkout.outcome, checkout.finished = outcome, self.clock()
                payment = shopping.payment_of(status, answer)
                checkout.payment_id = str(payment["id"]) if payment else None
                return
            floor = min(retry_after, self.retry_after_cap) if retry_after is not None else 0.0
            pause = max(floor, backoff * self.rng.uniform(0.5, 1.0)) * self.rng.uniform(1.0, 1.2)
            # out of patience, or the shop asks for more than is left
            if (left := deadline - time.monotonic()) <= 0 or floor > left:
                checkout.outcome, checkout.finished = "failed", self.clock()
                return
            await asyncio.sleep(min(pause, left))  # the last try comes at the deadline, not never
            backoff = min(backoff * 2, RETRY_BACKOFF_CAP_SECONDS)

    async def run(self, clients: Sequence[httpx.AsyncClient], stop: asyncio.Event) -> None:
        """Starts `rate` checkouts per second, on schedule, until `stop`; then waits for those in flight.

        Several clients share the checkouts in turn (each keeps its own for its retries): httpx's connection pool
        does work in proportion to its connections on every request, so one pool of hundreds costs a core.
        A tick the process itself is more than `LATE_SECONDS` late for (the machine is busy) starts nothing and is
        kept in `late`: the client, not the shop, missed it, and a burst to catch up would not be customers."""
        interval, next_at, turns = 1 / self.rate, time.monotonic(), itertools.cycle(clients)
        while not stop.is_set():
            if time.monotonic() - next_at > LATE_SECONDS:
                self.late.append(self.clock())
            elif len(self._tasks) < self.max_in_flight:
                task = asyncio.create_task(self.checkout(next(turns)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self.not_started.append(self.clock())
            next_at += interval
            if (delay := next_at - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)


LAG_INTERVAL_SECONDS = 0.1


async def watch_lag(clock: Callable[[], float], lags: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """How late the event loop wakes up from a short sleep, ten times a second, as (t, milliseconds): the drill's
    own client falling behind (a busy machine), which its latencies then include."""
    while not stop.is_set():
        before = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LAG_INTERVAL_SECONDS)
        lags.append((clock(), max(0.0, (time.monotonic() - before - LAG_INTERVAL_SECONDS) * 1000)))
