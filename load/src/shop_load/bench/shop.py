"""The shop the bench measures, and its customers: its own (an embedded PostgreSQL, migrated databases, the four
services on free ports of 127.0.0.1 with credentials of their own, restartable for the sale's cold starts, and a
stock no run can exhaust, raised through the storefront's `/ops/restock` as the operator) or one already running
at given loopback URLs; the bare FastAPI app of the read ceiling; customers registered and logged in, and
one-unit baskets of the most stocked products.
"""

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from shop_devtools import credentials, processes
from shop_devtools.topology import CALLEES_FIRST
from shop_devtools.workspace import private_key_pem
from shop_load.bench import sale_records
from shop_load.core import ops
from shop_load.core.customers import Customer
from shop_load.core.shopping import APPROVED_CARD, new_credentials

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
BENCH_SKU_STOCK = 1_000_000
"""Every product's stock in the bench's own shop (the most catalog's restock takes): no run sells that much."""
PRODUCTS_PATH = "/products?limit=20"
CUSTOMERS = 32
"""Customers of the writes, and of each burst (argon2 makes registering slow on purpose: tokens are reused)."""
READY_TIMEOUT_SECONDS = 60.0
BASKET_PRODUCTS = 20
"""A burst's baskets are one unit of one of this many products: a sale has hot items, not a single one."""


class BenchError(Exception):
    """The bench cannot run; the message says why."""


def require_loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise BenchError(f"{url}: the bench only targets this machine (127.0.0.1 or localhost)")
    return url.rstrip("/")


# The shop (own processes, or given URLs)


@dataclass
class Shop:
    storefront: str
    catalog: str
    payment: str
    database_url: str
    """The payment database: the write ceiling inserts there, the sale's invariants read there."""
    operator: ops.Operator | None = None
    """The operator at the storefront's `/ops/`: the sale's stock invariant reads the inventory there."""

    @property
    def for_sale(self) -> sale_records.SaleShop:
        return sale_records.SaleShop(self.storefront, self.payment, self.catalog, self.database_url, self.operator)


class OwnShop:
    """PostgreSQL + migrated databases + the four services on free ports of 127.0.0.1, with credentials of their
    own, and a stock no run exhausts (restocked as the operator once the services first answer). The services can
    be restarted (`start`) with another provider latency; everything stops on exit."""

    SERVICES = tuple(service.name for service in CALLEES_FIRST)

    def __init__(self, workdir: Path) -> None:
        from shop_devtools.pg import EmbeddedPostgres, free_port

        self.workdir = workdir
        self.postgres = EmbeddedPostgres(workdir / "pg", free_port())
        self.ports = {name: free_port() for name in self.SERVICES}
        self.base = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.children: list[processes.Child] = []
        self.urls: dict[str, str] = {}
        self.starts = 0
        self._key = private_key_pem()  # one for the whole bench: tokens stay valid across the sale's restarts
        self.credentials = credentials.new_credentials()
        self.operator = ops.Operator(self.credentials[credentials.OPERATOR], "the bench's own shop")

    def __enter__(self) -> "OwnShop":
        from shop_devtools.provision import provision

        self.postgres.start()
        try:
            self.urls = provision(self.postgres.admin_url())
        except BaseException:
            self.postgres.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.postgres.stop()

    @property
    def shop(self) -> Shop:
        base = self.base
        return Shop(base["storefront"], base["catalog"], base["payment"], self.urls["payment"], self.operator)

    @property
    def pgbench(self) -> Path:
        return self.postgres.bin_dir / "pgbench"

    def stop(self) -> None:
        processes.stop_children(self.children)
        self.children = []

    def start(self, *, provider_latency_ms: int | None) -> float:
        """(Re)starts the four services; the seconds from their start until every one is ready. The first start
        also restocks (`restock`), after that time."""
        self.stop()
        self.starts += 1
        common = {"HOST": "127.0.0.1", "LOG_FORMAT": "json", "LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}
        left_out = {"CHAOS_ENABLED", "PAYMENT_PROVIDER_LATENCY_MS", *credentials.NAMES}  # the shop's own: wiring's
        inherited = {k: v for k, v in os.environ.items() if k not in left_out}
        started = time.monotonic()
        for service in CALLEES_FIRST:
            env = inherited | common | processes.wiring(service, self.urls, self.base, self.credentials)
            env["PORT"] = str(self.ports[service.name])
            if service.name == "users":
                env["USERS_JWT_PRIVATE_KEY"] = self._key
            if service.name == "payment" and provider_latency_ms is not None:
                env["PAYMENT_PROVIDER_LATENCY_MS"] = str(provider_latency_ms)
            instance = processes.Instance(service, service.name, self.ports[service.name])
            self.children.append(
                processes.spawn(instance, env, output=self.workdir / f"{service.name}.{self.starts}.log")
            )
        try:
            processes.wait_until_ready(self.children, READY_TIMEOUT_SECONDS, poll=0.05)
        except processes.LaunchError as error:
            raise BenchError(f"the bench's shop did not start: {error} (logs in {self.workdir})") from None
        seconds = time.monotonic() - started
        if self.starts == 1:
            self.restock()
        return seconds

    def restock(self) -> None:
        """Every product to BENCH_SKU_STOCK, through the storefront's `POST /ops/restock`, as the operator."""

        async def raise_stock() -> ops.Restocked:
            async with httpx.AsyncClient(base_url=self.base["storefront"], timeout=30) as client:
                return await self.operator.restock(client, BENCH_SKU_STOCK)

        try:
            asyncio.run(raise_stock())
        except httpx.HTTPError as exc:
            raise BenchError(f"the bench's shop could not be restocked: {exc} (logs in {self.workdir})") from None


@dataclass
class BareApp:
    """The read ceiling's app (`shop_load.generators.bare`), answering `/ready` as every other path."""

    port: int
    process: "subprocess.Popen[bytes]" = field(init=False)
    name = "bare app"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def bare_app(workdir: Path, body: bytes) -> Iterator[str]:
    from shop_devtools.pg import free_port

    body_file = workdir / "products.json"
    body_file.write_bytes(body)
    bare = BareApp(free_port())
    args = ("--port", str(bare.port), "--body-file", str(body_file))
    bare.process = processes.start_process(
        "shop_load.generators.bare", os.environ, output=workdir / "bare.log", args=args
    )
    try:
        processes.wait_until_ready([bare], timeout=30, poll=0.05)
        yield bare.url
    except processes.LaunchError as error:
        raise BenchError(f"the bare app did not start: {error}") from None
    finally:
        processes.stop_children([bare])


# Customers


async def _register(storefront: str, count: int) -> list[sale_records.Shopper]:
    """`count` customers registered and logged in, two at a time: password hashing (argon2) is meant to be slow."""
    limit = asyncio.Semaphore(2)
    async with httpx.AsyncClient(base_url=storefront, timeout=30) as client:

        async def post(path: str, body: Mapping[str, str], expected: int) -> dict[str, Any]:
            for attempt in range(5):
                response = await client.post(path, json=body)
                if response.status_code < 500:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            if response.status_code != expected:
                raise BenchError(f"POST {path} answered {response.status_code} while setting up customers")
            answer: dict[str, Any] = response.json()
            return answer

        async def one() -> sale_records.Shopper:
            credentials = new_credentials()
            async with limit:
                user = await post("/api/users", credentials, 201)
                login = {"email": credentials["email"], "password": credentials["password"]}
                token = await post("/api/tokens", login, 200)
            return sale_records.Shopper(Customer(credentials["email"], str(token["access_token"])), str(user["id"]))

        return list(await asyncio.gather(*(one() for _ in range(count))))


def register(storefront: str, count: int) -> list[sale_records.Shopper]:
    try:
        return asyncio.run(_register(storefront, count))
    except httpx.HTTPError as exc:
        raise BenchError(f"customers could not be registered at {storefront}: {exc}") from None


def baskets(storefront: str, count: int = BASKET_PRODUCTS) -> list[dict[str, Any]]:
    """One-unit baskets of the `count` products with the most stock, an approved card each."""
    response = httpx.get(storefront + "/api/products?limit=100", timeout=10)
    if response.status_code != 200:
        raise BenchError(f"GET {storefront}/api/products answered {response.status_code}")
    stocked = sorted((p for p in response.json()["items"] if int(p["stock"]) > 0), key=lambda p: -int(p["stock"]))
    if not stocked:
        raise BenchError("no product has stock left to pay for")
    return [{"items": [{"sku": p["sku"], "quantity": 1}], "card_number": APPROVED_CARD} for p in stocked[:count]]
