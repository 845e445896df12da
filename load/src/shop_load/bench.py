"""`make bench` / `shop-bench`: throughput and latency of the shop's hot paths, each next to its ceiling.

What is measured, at a fixed concurrency for a bounded time each (`--seconds`, 10 by default):

- `GET /products?limit=20` on catalog directly and `GET /api/products?limit=20` through the storefront, next to a
  bare FastAPI app (its own uvicorn process, same server options) answering every GET with the same bytes;
- `POST /payments` on payment directly and `POST /api/payments` through the storefront (provider latency 0, one
  line, an approved card, a new Idempotency-Key each), next to a raw psycopg loop doing the payment's own writes:
  a payment row and its item inserted in one transaction, with the same number of connections.

Ratios are value / ceiling: throughput ratio (higher is better, 1.0 = as fast as the ceiling) and p50 ratio (how
many times the ceiling's median latency). Both sides of a ratio use the same load generator in the same run on
the same machine, whose core count is printed with them: absolute numbers vary between laptops, ratios much less.

By default the bench starts everything it needs on free ports of 127.0.0.1: an embedded PostgreSQL (the
`pgserver` binaries, via shop_devtools), migrated databases, the four services with
`PAYMENT_PROVIDER_LATENCY_MS=0`, and a stock large enough that no checkout runs out. `--storefront-url` (with
`--catalog-url`, `--payment-url`, and `--database-url` of the payment database for the write ceiling) measures an
already running shop instead; that spends its stock. Only loopback addresses are ever targeted.
"""

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from shop_load.report import percentile, table
from shop_load.shopping import APPROVED_CARD, new_credentials

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
BENCH_SKU_STOCK = 10_000_000
PRODUCTS_PATH = "/products?limit=20"


class BenchError(Exception):
    """The bench cannot run; the message says why."""


@dataclass
class Measurement:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    ceiling: str | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def require_loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise BenchError(f"{url}: the bench only targets this machine (127.0.0.1 or localhost)")
    return url.rstrip("/")


async def measure(
    name: str, operation: Callable[[int], Awaitable[bool]], *, concurrency: int, seconds: float, warmup: float = 1.0
) -> Measurement:
    """Runs `operation(worker)` in `concurrency` loops: `warmup` seconds unrecorded, then `seconds` recorded."""
    latencies: list[float] = []
    errors = 0
    recording_from = time.monotonic() + warmup
    deadline = recording_from + seconds

    async def loop(worker: int) -> None:
        nonlocal errors
        while (now := time.monotonic()) < deadline:
            try:
                ok = await operation(worker)
            except (httpx.HTTPError, psycopg.Error):
                ok = False
            if now >= recording_from:
                if ok:
                    latencies.append((time.monotonic() - now) * 1000)
                else:
                    errors += 1

    await asyncio.gather(*(loop(worker) for worker in range(concurrency)))
    return Measurement(name, len(latencies), errors, seconds, percentile(latencies, 50), percentile(latencies, 99))


# The shop (own processes, or given URLs)


@dataclass
class Shop:
    storefront: str
    catalog: str
    payment: str
    database_url: str
    """The payment database: the write ceiling inserts there."""


def _wait_ready(urls: Mapping[str, str], processes: Sequence[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(urls)
    while waiting:
        for process in processes:
            if process.poll() is not None:
                raise BenchError(f"a process of the bench exited with {process.returncode}: {process.args!r}")
        for name, url in list(waiting.items()):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    del waiting[name]
        if time.monotonic() > deadline:
            raise BenchError(f"not ready after {timeout:.0f} s: {', '.join(waiting)}")
        time.sleep(0.1)


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextlib.contextmanager
def own_shop(workdir: Path) -> Iterator[tuple[Shop, list[subprocess.Popen[bytes]]]]:
    """PostgreSQL + migrated databases + the four services on free ports, stopped at the end whatever happens."""
    from shop_devtools.pg import EmbeddedPostgres, free_port
    from shop_devtools.provision import provision

    postgres = EmbeddedPostgres(workdir / "pg", free_port())
    postgres.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        urls = provision(postgres.admin_url())
        with psycopg.connect(urls["catalog"], autocommit=True) as conn:
            conn.execute("UPDATE products SET stock = %s", (BENCH_SKU_STOCK,))
        ports = {name: free_port() for name in ("catalog", "users", "payment", "storefront")}
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        common = {"HOST": "127.0.0.1", "LOG_FORMAT": "json", "LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}
        envs = {
            "catalog": {"DATABASE_URL": urls["catalog"]},
            "users": {"DATABASE_URL": urls["users"]},
            "payment": {
                "DATABASE_URL": urls["payment"],
                "PAYMENT_PROVIDER_LATENCY_MS": "0",
                "PAYMENT_CATALOG_URL": base["catalog"],
                "PAYMENT_USERS_URL": base["users"],
            },
            "storefront": {
                "STOREFRONT_CATALOG_URL": base["catalog"],
                "STOREFRONT_USERS_URL": base["users"],
                "STOREFRONT_PAYMENT_URL": base["payment"],
            },
        }
        for name, extra in envs.items():
            env = {**os.environ, **common, **extra, "PORT": str(ports[name])}
            env.pop("CHAOS_ENABLED", None)
            with (workdir / f"{name}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen([sys.executable, "-m", f"shop_{name}"], env=env, stdout=log, stderr=log)
                )
        _wait_ready({name: url + "/ready" for name, url in base.items()}, processes)
        yield Shop(base["storefront"], base["catalog"], base["payment"], urls["payment"]), processes
    finally:
        _stop(processes)
        postgres.stop()


@contextlib.contextmanager
def bare_app(workdir: Path, body: bytes) -> Iterator[str]:
    from shop_devtools.pg import free_port

    body_file = workdir / "products.json"
    body_file.write_bytes(body)
    port = free_port()
    with (workdir / "bare.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shop_load.bare", "--port", str(port), "--body-file", str(body_file)],
            stdout=log,
            stderr=log,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready({"bare app": url + PRODUCTS_PATH}, [process], timeout=30)
        yield url
    finally:
        _stop([process])


# The measurements


async def bench_reads(shop: Shop, bare: str, *, concurrency: int, seconds: float) -> list[Measurement]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        def getter(url: str) -> Callable[[int], Awaitable[bool]]:
            async def get(worker: int) -> bool:
                return (await client.get(url)).status_code == 200

            return get

        ceiling = await measure(
            "bare FastAPI, same bytes", getter(bare + PRODUCTS_PATH), concurrency=concurrency, seconds=seconds
        )
        direct = await measure(
            "GET /products (catalog)", getter(shop.catalog + PRODUCTS_PATH), concurrency=concurrency, seconds=seconds
        )
        gateway = await measure(
            "GET /api/products (storefront)",
            getter(shop.storefront + "/api" + PRODUCTS_PATH),
            concurrency=concurrency,
            seconds=seconds,
        )
    for measurement in (direct, gateway):
        measurement.ceiling = ceiling.name
    return [ceiling, direct, gateway]


async def _customers(storefront: str, count: int) -> list[dict[str, str]]:
    """One customer per worker, registered two at a time: password hashing (argon2) is meant to be slow."""
    limit = asyncio.Semaphore(2)
    async with httpx.AsyncClient(base_url=storefront, timeout=30) as client:

        async def post(path: str, body: Mapping[str, str], expected: int) -> httpx.Response:
            for _ in range(3):
                response = await client.post(path, json=body)
                if response.status_code < 500:
                    break
            if response.status_code != expected:
                raise BenchError(f"POST {path} answered {response.status_code} while setting up customers")
            return response

        async def one() -> dict[str, str]:
            credentials = new_credentials()
            async with limit:
                await post("/api/users", credentials, 201)
                login = {"email": credentials["email"], "password": credentials["password"]}
                token = await post("/api/tokens", login, 200)
            return {"Authorization": f"Bearer {token.json()['access_token']}"}

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def _sku(storefront: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        items = (await client.get(storefront + "/api/products?limit=100")).json()["items"]
    stocked = sorted(items, key=lambda p: -int(p["stock"]))
    if not stocked or stocked[0]["stock"] <= 0:
        raise BenchError("no product has stock left to pay for")
    return str(stocked[0]["sku"])


async def bench_writes(shop: Shop, *, concurrency: int, seconds: float) -> list[Measurement]:
    customers = await _customers(shop.storefront, concurrency)
    sku = await _sku(shop.storefront)
    body = {"items": [{"sku": sku, "quantity": 1}], "card_number": APPROVED_CARD}
    connections = [await psycopg.AsyncConnection.connect(shop.database_url) for _ in range(concurrency)]
    try:

        async def insert(worker: int) -> bool:
            conn = connections[worker]
            payment_id = uuid.uuid4()
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO payments (id, user_id, idempotency_key, request_hash, status, amount_cents, currency,"
                    " card_last4, card_token, reservation_id, completed_at)"
                    " VALUES (%s, %s, %s, %s, 'captured', 14900, 'EUR', '4242', %s, %s, now())",
                    (payment_id, uuid.uuid4(), f"ceiling-{payment_id}", "0" * 64, "t" * 64, uuid.uuid4()),
                )
                await conn.execute(
                    "INSERT INTO payment_items (payment_id, sku, quantity, unit_price_cents) VALUES (%s, %s, 1, 14900)",
                    (payment_id, sku),
                )
            return True

        ceiling = await measure(
            "psycopg loop, payment + item in one transaction", insert, concurrency=concurrency, seconds=seconds
        )
    finally:
        for conn in connections:
            await conn.close()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        def payer(url: str) -> Callable[[int], Awaitable[bool]]:
            async def pay(worker: int) -> bool:
                headers = {**customers[worker], "Idempotency-Key": f"bench-{uuid.uuid4()}"}
                return (await client.post(url, json=body, headers=headers)).status_code == 201

            return pay

        direct = await measure(
            "POST /payments (payment)", payer(shop.payment + "/payments"), concurrency=concurrency, seconds=seconds
        )
        gateway = await measure(
            "POST /api/payments (storefront)",
            payer(shop.storefront + "/api/payments"),
            concurrency=concurrency,
            seconds=seconds,
        )
    for measurement in (direct, gateway):
        measurement.ceiling = ceiling.name
    return [ceiling, direct, gateway]


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def render(measurements: Sequence[Measurement], *, concurrency: int, seconds: float) -> str:
    by_name = {m.name: m for m in measurements}
    rows = []
    for m in measurements:
        ceiling = by_name.get(m.ceiling or "")
        ratio = f"{m.throughput / ceiling.throughput:.2f}" if ceiling and ceiling.throughput else "ceiling"
        latency_ratio = (
            f"{m.p50_ms / ceiling.p50_ms:.1f}x" if ceiling and ceiling.p50_ms and m.p50_ms is not None else ""
        )
        rows.append((m.name, f"{m.throughput:.0f}", _ms(m.p50_ms), _ms(m.p99_ms), str(m.errors), ratio, latency_ratio))
    header = ("", "req/s", "p50 ms", "p99 ms", "errors", "throughput / ceiling", "p50 / ceiling")
    return f"bench: {os.cpu_count()} cores, concurrency {concurrency}, {seconds:.0f} s per measurement\n\n" + table(
        rows, header
    )


async def run(options: argparse.Namespace, shop: Shop, workdir: Path) -> list[Measurement]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(shop.catalog + PRODUCTS_PATH)
        if response.status_code != 200:
            raise BenchError(f"GET {shop.catalog}{PRODUCTS_PATH} answered {response.status_code}")
    measurements = []
    with bare_app(workdir, response.content) as bare:
        if "reads" in options.only:
            measurements += await bench_reads(shop, bare, concurrency=options.concurrency, seconds=options.seconds)
    if "writes" in options.only:
        measurements += await bench_writes(shop, concurrency=options.concurrency, seconds=options.seconds)
    return measurements


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shop-bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="recorded seconds per measurement (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once (default 16)")
    parser.add_argument("--only", nargs="+", choices=("reads", "writes"), default=["reads", "writes"])
    parser.add_argument("--storefront-url", help="bench a running shop instead of starting one")
    parser.add_argument("--catalog-url", default="http://127.0.0.1:8081")
    parser.add_argument("--payment-url", default="http://127.0.0.1:8083")
    parser.add_argument("--database-url", help="the running shop's payment database (for the write ceiling)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="shop-bench-") as tmp:
            workdir = Path(tmp)
            workdir.chmod(0o755)  # the embedded PostgreSQL may run as another user
            if options.storefront_url:
                if not options.database_url and "writes" in options.only:
                    raise BenchError("--database-url (the payment database) is needed for the write ceiling")
                shop = Shop(
                    require_loopback(options.storefront_url),
                    require_loopback(options.catalog_url),
                    require_loopback(options.payment_url),
                    options.database_url or "",
                )
                measurements = asyncio.run(run(options, shop, workdir))
            else:
                print("starting PostgreSQL and the four services on free ports ...", file=sys.stderr, flush=True)
                with own_shop(workdir) as (shop, _):
                    measurements = asyncio.run(run(options, shop, workdir))
    except BenchError as exc:
        print(f"shop-bench: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(render(measurements, concurrency=options.concurrency, seconds=options.seconds))
    if options.json:
        options.json.write_text(
            json.dumps(
                {
                    "cores": os.cpu_count(),
                    "concurrency": options.concurrency,
                    "measurements": [{**asdict(m), "throughput": m.throughput} for m in measurements],
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
