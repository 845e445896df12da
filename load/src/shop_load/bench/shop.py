"""The shop the bench measures, and its customers: its own (`own_shop`: an embedded PostgreSQL, migrated databases
and the four services started as `make run` starts them, on free ports of 127.0.0.1 with credentials of their own,
restartable for the sale's cold starts, and a stock no run can exhaust) or one already running at given loopback
URLs, or the one `make run` runs (`made_run`, from its run.json); the bare FastAPI app of the read ceiling;
customers registered and logged in, and one-unit baskets of the most stocked products.
"""

import asyncio
import contextlib
import functools
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from shop_devtools import credentials, processes
from shop_devtools.database import database_urls
from shop_devtools.pg import EmbeddedPostgres
from shop_devtools.processes import free_port
from shop_devtools.run import service_env
from shop_devtools.runconfig import Config
from shop_devtools.runstate import RunState
from shop_devtools.topology import CALLEES_FIRST, SERVICES
from shop_devtools.workspace import private_key_pem
from shop_load.bench import cpu
from shop_load.core import ops
from shop_load.core.customers import Customer, Shoppers
from shop_load.core.shopping import APPROVED_CARD, in_stock

T = TypeVar("T")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
BENCH_SKU_STOCK = 1_000_000
PRODUCTS_PATH = "/products?limit=20"
CUSTOMERS = 32
READY_TIMEOUT_SECONDS = 60.0
BASKET_PRODUCTS = 20
NOT_INHERITED = {"CHAOS_ENABLED", "PAYMENT_PROVIDER_LATENCY_MS", *credentials.NAMES} | {
    service.upstream_setting(upstream) for service in SERVICES for upstream in service.upstreams
}
"""What the services are not given of the bench's environment: the bench's shop is wired, and faults off, here."""


class BenchError(Exception):
    """The bench cannot run; the message says why."""


def with_client(base_url: str, call: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """`call` with a client of `base_url` (30 s for an answer), run to its end from the bench's synchronous code."""

    async def run() -> T:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            return await call(client)

    return asyncio.run(run())


def require_loopback(url: str) -> str:
    if (urlsplit(url).hostname or "") not in LOOPBACK:
        raise BenchError(f"{url}: the bench only targets this machine (127.0.0.1 or localhost)")
    return url.rstrip("/")


@dataclass
class Shop:
    """Where the bench sends its load; `database_url` is the payment database (the write ceiling inserts there, the
    sale's invariants read there), `operator` the one at the storefront's `/ops/` (the stock invariant reads the
    inventory there; None: the sale's invariants are not checked); `payment` is every payment replica's URL,
    separated by commas (as storefront is given them); `parts` its processes by part when they are known (the sale
    measures their CPU), read anew at each burst."""

    storefront: str
    catalog: str
    payment: str
    database_url: str = ""
    operator: ops.Operator | None = None
    parts: Callable[[], cpu.Parts] | None = None


class OwnShop:
    """The bench's own shop (`own_shop`): `start` (re)starts the four services, as `make run` wires them, with
    another provider latency; the first start raises every product's stock to BENCH_SKU_STOCK, as the operator.
    Users' signing key is one for the whole bench, so tokens stay valid across the sale's restarts."""

    def __init__(self, workdir: Path, postgres: EmbeddedPostgres, databases: dict[str, str]) -> None:
        self.workdir, self.databases, self.key = workdir, databases, private_key_pem()
        ports = {service.name: free_port() for service in SERVICES}
        self.config = Config(workdir, postgres.port, ports, admin_url=None, jwt_private_key=self.key)
        self.credentials = credentials.new_credentials()
        self.operator = ops.Operator(self.credentials[credentials.OPERATOR], "the bench's own shop")
        urls = {service.name: self.config.url(service.name) for service in SERVICES}
        self.shop = Shop(urls["storefront"], urls["catalog"], urls["payment"], databases["payment"], self.operator)
        self.shop.parts = lambda: cpu.parts([(c.name, c.process.pid) for c in self.children], postgres.pgdata)
        self.children: list[processes.Child] = []
        self.starts = 0

    def start(self, *, provider_latency_ms: int | None) -> float:
        """The seconds from the services' start until every one was ready (the first start's restock after that)."""
        processes.stop_children(self.children)
        self.starts += 1
        base = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        base |= {"LOG_FORMAT": "json", "LOG_LEVEL": "warning"}
        if provider_latency_ms is not None:
            base["PAYMENT_PROVIDER_LATENCY_MS"] = str(provider_latency_ms)
        started, self.children = time.monotonic(), []
        for instance in (i for service in CALLEES_FIRST for i in self.config.instances(service.name)):
            env = service_env(instance, self.config, self.databases, self.key, self.credentials, base)
            output = self.workdir / f"{instance.name}.{self.starts}.log"
            self.children.append(processes.spawn(instance, env, output=output))
        try:
            processes.wait_until_ready(self.children, READY_TIMEOUT_SECONDS, poll=0.05)
        except processes.LaunchError as error:
            raise BenchError(f"the bench's shop did not start: {error} (logs in {self.workdir})") from None
        seconds = time.monotonic() - started
        if self.starts == 1:
            try:
                with_client(self.shop.storefront, lambda client: self.operator.restock(client, BENCH_SKU_STOCK))
            except httpx.HTTPError as exc:
                raise BenchError(f"the bench's shop could not be restocked: {exc} (logs in {self.workdir})") from None
        return seconds


@contextlib.contextmanager
def own_shop(workdir: Path) -> Iterator[OwnShop]:
    """PostgreSQL and migrated databases; the services are started by `OwnShop.start` and stopped on exit."""
    from shop_devtools.provision import provision  # imports every service's migrations: seconds, only when needed

    with EmbeddedPostgres(workdir / "pg", free_port()) as postgres:
        own = OwnShop(workdir, postgres, provision(postgres.admin_url()))
        try:
            yield own
        finally:
            processes.stop_children(own.children)


def made_run(data_dir: Path, operator: ops.Operator | None) -> Shop:
    """The shop `make run` runs on `data_dir`, from its run.json: each service's URL (every payment replica's) and
    its processes by part (as run.json names them when the bench starts), the launcher one of them; the payment
    database at the port in the embedded server's postmaster.pid (run.json names neither it nor its port), with
    the role `make run` provisions (none when make run uses a server of POSTGRES_ADMIN_URL: then no writes, no
    invariants and no PostgreSQL part)."""
    if (state := RunState.read(data_dir)) is None:
        raise BenchError(f"no `make run` runs on {data_dir}: no run.json of a live launcher there")
    url, server = {p.service: p.url for p in state.processes}, cpu.postmaster(data_dir / "pgdata")
    database = database_urls(f"postgresql://postgres@127.0.0.1:{server[1]}/postgres")["payment"] if server else ""
    roots = [("launcher", state.launcher_pid), *((p.service, p.pid) for p in state.processes)]
    replicas = ",".join(p.url for p in state.replicas("payment"))
    parts = functools.partial(cpu.parts, roots, data_dir / "pgdata")
    return Shop(url["storefront"], url["catalog"], replicas, database, operator, parts)


@dataclass
class _BareApp:
    process: "subprocess.Popen[bytes]"
    url: str
    name = "bare app"


@contextlib.contextmanager
def bare_app(workdir: Path, body: bytes) -> Iterator[str]:
    """The read ceiling (`shop_load.generators.bare`) answering `body` to every path, `/ready` included; its URL."""
    (workdir / "products.json").write_bytes(body)
    port = free_port()
    args = ("--port", str(port), "--body-file", str(workdir / "products.json"))
    process = processes.start_process("shop_load.generators.bare", os.environ, output=workdir / "bare.log", args=args)
    bare = _BareApp(process, f"http://127.0.0.1:{port}")
    try:
        processes.wait_until_ready([bare], timeout=30, poll=0.05)
        yield bare.url
    except processes.LaunchError as error:
        raise BenchError(f"the bare app did not start: {error}") from None
    finally:
        processes.stop_children([bare])


def prepare(storefront: str, count: int) -> tuple[list[Customer], list[dict[str, Any]]]:
    """`count` customers registered and logged in (the writes and each burst have their own), and one-unit baskets
    of the BASKET_PRODUCTS products with the most stock, an approved card each: a sale has hot items, not a single
    one."""
    shoppers = Shoppers(storefront, time.monotonic, request_timeout=30)
    with_client(storefront, lambda client: shoppers.prepare(client, count))
    stocked = sorted(in_stock(shoppers.products), key=lambda p: -int(p["stock"]))[:BASKET_PRODUCTS]
    baskets = [{"items": [{"sku": p["sku"], "quantity": 1}], "card_number": APPROVED_CARD} for p in stocked]
    return shoppers.customers, baskets
