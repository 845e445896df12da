"""`make bench` / `shop-bench`: the shop's hot paths next to ceilings measured in the same run, and the sale.

Every load comes from a native generator, so the client is not what is measured: wrk (`shop_load.wrk`) for
HTTP and pgbench (PostgreSQL's own, from the same binaries as the embedded server) for the database. A generator
whose threads were busy 90 % of a run or more was itself the bottleneck; the bench says so next to the figure.

1. Reads, `--connections` (32) kept-alive connections for `--seconds` (10) each, after an unrecorded second:
   a bare FastAPI app answering the same bytes (`shop_load.bare`, the services' server options) as the ceiling,
   catalog `GET /products?limit=20` and storefront `GET /api/products?limit=20`.
2. Writes, the same: pgbench running the payment's own writes (a payment row and its item in one transaction) as
   the ceiling, then `POST /payments` on payment and `POST /api/payments` through the storefront (one line, an
   approved card, a new Idempotency-Key each, provider latency 0).
3. The sale (`shop_load.sale`), once per `--burst` (128, then 512): the services restarted (fresh processes,
   empty pools, the provider at its default latency of 150 ms), then at once that many concurrent checkouts
   through the storefront for `--burst-seconds` beside paced browsing; captured/s, every status, latency, 503s
   with and without Retry-After, readiness flips, then the drill's invariants.

Status counts come from the services' own `/metrics` read before and after each run (requests wrk gave up on at
the end still count); the bare app has none, so its statuses are wrk's. Ratios are value / ceiling from the
same run on the same machine, whose core count is printed with them.

At the end one line per bar of issue 9's acceptance (1: the sale, 2: reads against the ceiling), PASS or FAIL with
the figures. Exit status: 0 when the bench ran (a missed bar is a measurement), 1 when an invariant failed,
2 when the bench could not run (wrk missing, a service that does not start, ...).

By default the bench starts everything on free ports of 127.0.0.1: an embedded PostgreSQL (via shop_devtools),
migrated databases with a stock no run can exhaust, the four services. `--storefront-url` (with `--catalog-url`,
`--payment-url`, and `--database-url` of the payment database) measures an already running shop instead: no cold
start there, and it spends that shop's stock.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from shop_devtools.workspace import private_key_pem
from shop_load import sale, wrk
from shop_load.customers import Customer
from shop_load.report import percentile, table
from shop_load.scrape import Scrape, scrape
from shop_load.shopping import APPROVED_CARD, new_credentials

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
BENCH_SKU_STOCK = 100_000_000
PRODUCTS_PATH = "/products?limit=20"
WARMUP_SECONDS = 1.0
SALE_PROVIDER_LATENCY_MS: int | None = None
"""The sale runs payment with its default provider latency (150 ms): the variable is left unset."""
WRITES_PROVIDER_LATENCY_MS = 0
ACCEPTANCE_CAPTURED_PER_SECOND = 150.0
ACCEPTANCE_CATALOG_RATIO = 0.5
ACCEPTANCE_STOREFRONT_RATIO = 0.33
CUSTOMERS = 32
"""Customers of the writes, and of each burst (argon2 makes registering slow on purpose: tokens are reused)."""
BASKET_PRODUCTS = 20
"""A burst's baskets are one unit of one of this many products: a sale has hot items, not a single one."""


class BenchError(Exception):
    """The bench cannot run; the message says why."""


@dataclass
class Measurement:
    """One run of a generator against one target: its answers with the expected status per second, latency, and
    every status as the target counted them (or as the generator saw them, for a target without metrics)."""

    name: str
    generator: str
    connections: int
    seconds: float
    ok: int
    """Answers with the expected status (transactions, for pgbench), as the generator counted them."""
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    statuses: dict[int, int]
    statuses_from: str
    generator_cpu_seconds: float
    generator_threads: int = 1
    expected_status: int | None = None
    socket_errors: int = 0
    timeouts: int = 0
    failed: int = 0
    """Transactions that failed (pgbench)."""
    ceiling: str | None = None

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        unexpected = sum(n for s, n in self.statuses.items() if s != self.expected_status)
        return unexpected + self.socket_errors + self.timeouts + self.failed

    @property
    def generator_cpu_fraction(self) -> float:
        return self.generator_cpu_seconds / self.seconds / self.generator_threads if self.seconds else 0.0

    @property
    def generator_saturated(self) -> bool:
        return self.generator_cpu_fraction >= wrk.SATURATED_CPU_PER_THREAD

    @classmethod
    def from_wrk(
        cls, name: str, result: wrk.WrkResult, *, expected_status: int, server_statuses: dict[int, int] | None = None
    ) -> "Measurement":
        return cls(
            name=name,
            generator="wrk",
            connections=result.connections,
            seconds=result.seconds,
            ok=result.count(expected_status),
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            max_ms=result.max_ms,
            statuses=dict(result.statuses) if server_statuses is None else server_statuses,
            statuses_from="wrk" if server_statuses is None else "server metrics",
            generator_cpu_seconds=result.generator_cpu_seconds,
            generator_threads=result.threads,
            expected_status=expected_status,
            socket_errors=result.socket_errors,
            timeouts=result.timeouts,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generator": self.generator,
            "connections": self.connections,
            "seconds": self.seconds,
            "ok": self.ok,
            "throughput": self.throughput,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "statuses_from": self.statuses_from,
            "errors": self.errors,
            "socket_errors": self.socket_errors,
            "timeouts": self.timeouts,
            "failed": self.failed,
            "generator_cpu_seconds": self.generator_cpu_seconds,
            "generator_saturated": self.generator_saturated,
            "ceiling": self.ceiling,
        }


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

    @property
    def for_sale(self) -> sale.SaleShop:
        return sale.SaleShop(self.storefront, self.payment, self.catalog, self.database_url)


def _wait_ready(urls: Mapping[str, str], processes: Sequence[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(urls)
    with httpx.Client(timeout=1) as client:
        while waiting:
            for process in processes:
                if process.poll() is not None:
                    raise BenchError(f"a process of the bench exited with {process.returncode}: {process.args!r}")
            for name, url in list(waiting.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        del waiting[name]
            if time.monotonic() > deadline:
                raise BenchError(f"not ready after {timeout:.0f} s: {', '.join(waiting)}")
            if waiting:
                time.sleep(0.05)


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


class OwnShop:
    """PostgreSQL + migrated databases (a stock no run exhausts) + the four services on free ports of 127.0.0.1.
    The services can be restarted (`start`) with another provider latency; everything stops on exit."""

    SERVICES = ("catalog", "users", "payment", "storefront")

    def __init__(self, workdir: Path) -> None:
        from shop_devtools.pg import EmbeddedPostgres, free_port

        self.workdir = workdir
        self.postgres = EmbeddedPostgres(workdir / "pg", free_port())
        self.ports = {name: free_port() for name in self.SERVICES}
        self.base = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: dict[str, str] = {}
        self.starts = 0
        self._key = private_key_pem()  # one for the whole bench: tokens stay valid across the sale's restarts

    def __enter__(self) -> "OwnShop":
        from shop_devtools.provision import provision

        self.postgres.start()
        try:
            self.urls = provision(self.postgres.admin_url())
            with psycopg.connect(self.urls["catalog"], autocommit=True) as conn:
                conn.execute("UPDATE products SET stock = %s", (BENCH_SKU_STOCK,))
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
        return Shop(self.base["storefront"], self.base["catalog"], self.base["payment"], self.urls["payment"])

    @property
    def pgbench(self) -> Path:
        return self.postgres.bin_dir / "pgbench"

    def stop(self) -> None:
        _stop(self.processes)
        self.processes = []

    def start(self, *, provider_latency_ms: int | None) -> float:
        """(Re)starts the four services; the seconds from their start until every one is ready."""
        self.stop()
        self.starts += 1
        common = {"HOST": "127.0.0.1", "LOG_FORMAT": "json", "LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}
        payment = {
            "DATABASE_URL": self.urls["payment"],
            "PAYMENT_CATALOG_URL": self.base["catalog"],
            "PAYMENT_USERS_URL": self.base["users"],
        }
        if provider_latency_ms is not None:
            payment["PAYMENT_PROVIDER_LATENCY_MS"] = str(provider_latency_ms)
        envs = {
            "catalog": {"DATABASE_URL": self.urls["catalog"]},
            "users": {"DATABASE_URL": self.urls["users"], "USERS_JWT_PRIVATE_KEY": self._key},
            "payment": payment,
            "storefront": {
                "STOREFRONT_CATALOG_URL": self.base["catalog"],
                "STOREFRONT_USERS_URL": self.base["users"],
                "STOREFRONT_PAYMENT_URL": self.base["payment"],
            },
        }
        started = time.monotonic()
        for name, extra in envs.items():
            env = {**os.environ, **common, **extra, "PORT": str(self.ports[name])}
            for inherited in ("CHAOS_ENABLED", "PAYMENT_PROVIDER_LATENCY_MS"):
                if inherited not in extra:
                    env.pop(inherited, None)
            with (self.workdir / f"{name}.{self.starts}.log").open("wb") as log:
                self.processes.append(
                    subprocess.Popen([sys.executable, "-m", f"shop_{name}"], env=env, stdout=log, stderr=log)
                )
        _wait_ready({name: url + "/ready" for name, url in self.base.items()}, self.processes)
        return time.monotonic() - started


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


# Customers


async def _register(storefront: str, count: int) -> list[sale.Shopper]:
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

        async def one() -> sale.Shopper:
            credentials = new_credentials()
            async with limit:
                user = await post("/api/users", credentials, 201)
                login = {"email": credentials["email"], "password": credentials["password"]}
                token = await post("/api/tokens", login, 200)
            return sale.Shopper(Customer(credentials["email"], str(token["access_token"])), str(user["id"]))

        return list(await asyncio.gather(*(one() for _ in range(count))))


def register(storefront: str, count: int) -> list[sale.Shopper]:
    try:
        return asyncio.run(_register(storefront, count))
    except httpx.HTTPError as exc:
        raise BenchError(f"customers could not be registered at {storefront}: {exc}") from None


def _write_tokens(path: Path, shoppers: Sequence[sale.Shopper]) -> Path:
    path.write_text("".join(s.customer.token + "\n" for s in shoppers))
    return path


def baskets(storefront: str, count: int = BASKET_PRODUCTS) -> list[dict[str, Any]]:
    """One-unit baskets of the `count` products with the most stock, an approved card each."""
    response = httpx.get(storefront + "/api/products?limit=100", timeout=10)
    if response.status_code != 200:
        raise BenchError(f"GET {storefront}/api/products answered {response.status_code}")
    stocked = sorted((p for p in response.json()["items"] if int(p["stock"]) > 0), key=lambda p: -int(p["stock"]))
    if not stocked:
        raise BenchError("no product has stock left to pay for")
    return [{"items": [{"sku": p["sku"], "quantity": 1}], "card_number": APPROVED_CARD} for p in stocked[:count]]


# Reads and writes


def _settle(url: str, handler: str, method: str, timeout: float = 15.0) -> Scrape:
    """The target's metrics once its counts of `method handler` stop moving (what was in flight is answered)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        now = scrape(url)
        counts = now.statuses(handler=handler, method=method)
        if counts == last or time.monotonic() > deadline:
            return now
        last = counts
        time.sleep(0.5)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    expected_status: int
    metrics: tuple[str, str, str] | None = None
    """(service base URL, handler, method) whose `http_requests_total` counts this target's answers."""


def measure_wrk(
    target: Target,
    *,
    connections: int,
    seconds: float,
    threads: int,
    script: str = "get",
    params: Mapping[str, str] | None = None,
) -> Measurement:
    """An unrecorded warm-up second, then `seconds` recorded; statuses from the target's own metrics."""
    wrk.run(target.url, connections=connections, seconds=WARMUP_SECONDS, threads=threads, script=script, params=params)
    before = _settle(*target.metrics) if target.metrics else None
    result = wrk.run(
        target.url, connections=connections, seconds=seconds, threads=threads, script=script, params=params
    )
    statuses = (
        _settle(*target.metrics).statuses_since(before, handler=target.metrics[1], method=target.metrics[2])
        if (target.metrics and before)
        else None
    )
    return Measurement.from_wrk(target.name, result, expected_status=target.expected_status, server_statuses=statuses)


def bench_reads(shop: Shop, bare: str, *, connections: int, seconds: float, threads: int) -> list[Measurement]:
    targets = [
        Target("bare FastAPI, same bytes", bare + PRODUCTS_PATH, 200),
        Target(
            "GET /products?limit=20 (catalog)", shop.catalog + PRODUCTS_PATH, 200, (shop.catalog, "/products", "GET")
        ),
        Target(
            "GET /api/products?limit=20 (storefront)",
            shop.storefront + "/api" + PRODUCTS_PATH,
            200,
            (shop.storefront, sale.API_HANDLER, "GET"),
        ),
    ]
    measured = [measure_wrk(t, connections=connections, seconds=seconds, threads=threads) for t in targets]
    for measurement in measured[1:]:
        measurement.ceiling = measured[0].name
    return measured


PGBENCH_NAME = "pgbench: payment + item in one transaction"
PGBENCH_SCRIPT = """\
BEGIN;
INSERT INTO payments (id, user_id, idempotency_key, request_hash, status, amount_cents, currency, card_last4,
    card_token, reservation_id, completed_at)
  VALUES (gen_random_uuid(), gen_random_uuid(), 'ceiling-' || gen_random_uuid()::text, repeat('0', 64), 'captured',
    14900, 'EUR', '4242', repeat('t', 64), gen_random_uuid(), now())
  RETURNING id AS payment_id \\gset
INSERT INTO payment_items (payment_id, sku, quantity, unit_price_cents) VALUES (:payment_id, :sku, 1, 14900);
END;
"""
"""The payment's own writes, a payment row and its item in one transaction, with no HTTP and no Python."""


def parse_pgbench(stdout: str, log_lines: Sequence[str]) -> tuple[int, int, float, list[float]]:
    """(transactions, failed, seconds, latencies in ms) of a pgbench run with `--log`."""
    processed = re.search(r"number of transactions actually processed: (\d+)", stdout)
    failed = re.search(r"number of failed transactions: (\d+)", stdout)
    duration = re.search(r"duration: (\d+(?:\.\d+)?) s", stdout)
    if not processed or not duration:
        raise BenchError(f"pgbench printed no summary: {stdout[-1000:]}")
    latencies = []
    for line in log_lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2].isdigit():  # client_id transaction_no time(µs) ...
            latencies.append(int(fields[2]) / 1000)
    return int(processed[1]), int(failed[1]) if failed else 0, float(duration[1]), latencies


def measure_pgbench(
    pgbench: Path, database_url: str, sku: str, workdir: Path, *, connections: int, seconds: float
) -> Measurement:
    script = workdir / "payment-writes.sql"
    script.write_text(PGBENCH_SCRIPT)
    logs = workdir / "pgbench-log"
    logs.mkdir(exist_ok=True)
    for old in logs.iterdir():
        old.unlink()
    args = [
        str(pgbench), "--no-vacuum", "--protocol=prepared", f"--client={connections}", "--jobs=1",
        f"--time={max(1, round(seconds))}", f"--file={script}", f"--define=sku={sku}",
        "--log", f"--log-prefix={logs}/tx", database_url,
    ]  # fmt: skip
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"pgbench exited with {process.returncode}: {(stderr or stdout)[-1500:]}")
    log_lines = [line for path in sorted(logs.iterdir()) for line in path.read_text().splitlines()]
    transactions, failed, duration, latencies = parse_pgbench(stdout, log_lines)
    return Measurement(
        name=PGBENCH_NAME,
        generator="pgbench",
        connections=connections,
        seconds=duration,
        ok=transactions,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies) if latencies else None,
        statuses={},
        statuses_from="pgbench",
        generator_cpu_seconds=usage.ru_utime + usage.ru_stime,
        failed=failed,
    )


def bench_writes(
    shop: Shop,
    pgbench: Path,
    workdir: Path,
    *,
    connections: int,
    seconds: float,
    threads: int,
    honour_retry_after: bool = True,
) -> list[Measurement]:
    shoppers = register(shop.storefront, min(connections, CUSTOMERS))
    tokens = _write_tokens(workdir / "writes.tokens", shoppers)
    bodies = baskets(shop.storefront)
    bodies_file = workdir / "writes.bodies"
    bodies_file.write_text("".join(json.dumps(body) + "\n" for body in bodies))
    ceiling = measure_pgbench(
        pgbench, shop.database_url, bodies[0]["items"][0]["sku"], workdir, connections=connections, seconds=seconds
    )
    params = {"tokens_file": str(tokens), "bodies_file": str(bodies_file), "key_prefix": "bench-writes"}
    if honour_retry_after:
        params["retry_after"] = "1"
    targets = [
        Target("POST /payments (payment)", shop.payment + "/payments", 201, (shop.payment, "/payments", "POST")),
        Target(
            "POST /api/payments (storefront)",
            shop.storefront + "/api/payments",
            201,
            (shop.storefront, sale.API_HANDLER, "POST"),
        ),
    ]
    measured = [
        measure_wrk(t, connections=connections, seconds=seconds, threads=threads, script="checkout", params=params)
        for t in targets
    ]
    for measurement in measured:
        measurement.ceiling = ceiling.name
    return [ceiling, *measured]


# Output


@dataclass
class Verdict:
    acceptance: int
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  acceptance {self.acceptance}: {self.text}"


@dataclass
class BenchReport:
    cores: int | None
    connections: int
    seconds: float
    measurements: list[Measurement] = field(default_factory=list)
    bursts: list[sale.BurstResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ratio(self, name_part: str) -> float | None:
        by_name = {m.name: m for m in self.measurements}
        for m in self.measurements:
            ceiling = by_name.get(m.ceiling or "")
            if name_part in m.name and ceiling and ceiling.throughput:
                return m.throughput / ceiling.throughput
        return None

    def verdicts(self) -> list[Verdict]:
        verdicts = []
        for name, bar in (("(catalog)", ACCEPTANCE_CATALOG_RATIO), ("(storefront)", ACCEPTANCE_STOREFRONT_RATIO)):
            found = next((m for m in self.measurements if name in m.name and m.name.startswith("GET")), None)
            ratio = self.ratio(name)
            if found is None or ratio is None:
                continue
            saturated = (
                " (a generator was saturated: the ratio is not the server's)" if found.generator_saturated else ""
            )
            verdicts.append(
                Verdict(2, ratio >= bar, f"{found.name} at {ratio:.2f}x the bare ceiling (bar {bar}x){saturated}")
            )
        if self.bursts:
            first = self.bursts[0]
            for burst in self.bursts:
                n = f"burst {burst.connections}"
                bad = burst.server_errors_but_503
                verdicts.append(
                    Verdict(1, not bad, f"{n}: no 5xx other than 503 (storefront counted {_statuses(bad) or 'none'})")
                )
                if burst is first:
                    slow = burst.checkout.timeouts
                    longest = _ms(burst.checkout.max_ms)
                    verdicts.append(
                        Verdict(
                            1,
                            slow == 0 and (burst.checkout.max_ms or 0) <= sale.ANSWER_BOUND_SECONDS * 1000,
                            f"{n}: no answer over {sale.ANSWER_BOUND_SECONDS:.0f} s"
                            f" ({slow} later, the others within {longest} ms)",
                        )
                    )
                    rate = burst.captured_per_second
                    bar = ACCEPTANCE_CAPTURED_PER_SECOND
                    verdicts.append(Verdict(1, rate >= bar, f"{n}: at least {bar:.0f} captured/s ({rate:.1f})"))
                else:
                    verdicts.append(
                        Verdict(
                            1,
                            burst.checkout.bare_503 == 0,
                            f"{n}: every 503 carries Retry-After ({burst.checkout.retry_after_503} with,"
                            f" {burst.checkout.bare_503} without)",
                        )
                    )
                    rate, then = burst.captured_per_second, first.captured_per_second
                    verdicts.append(
                        Verdict(
                            1,
                            rate >= then,
                            f"{n}: captured/s not lower than at {first.connections} ({rate:.1f} vs {then:.1f})",
                        )
                    )
                probe = burst.readiness.get("payment", sale.ProbeCount())
                verdicts.append(
                    Verdict(
                        1,
                        probe.flips == 0 and probe.polls > 0,
                        f"{n}: payment /ready 200 throughout ({probe.flips} of {probe.polls} polls not 200"
                        + (f"; first {probe.first_failure}" if probe.first_failure else "")
                        + ")",
                    )
                )
            for burst in self.bursts:
                failed = [r.name for r in burst.invariants if not r.ok]
                checked = len(burst.invariants)
                verdicts.append(
                    Verdict(
                        3,
                        checked > 0 and not failed,
                        f"burst {burst.connections}: invariants "
                        + (("failed: " + ", ".join(failed)) if failed else f"hold ({checked} checked)")
                        if checked
                        else f"burst {burst.connections}: invariants not checked",
                    )
                )
        return verdicts

    def invariants_failed(self) -> bool:
        return any(not r.ok for b in self.bursts for r in b.invariants)

    def as_json(self) -> dict[str, Any]:
        return {
            "cores": self.cores,
            "connections": self.connections,
            "seconds": self.seconds,
            "measurements": [m.as_json() for m in self.measurements],
            "ratios": {
                m.name: m.throughput / c.throughput
                for m in self.measurements
                if (c := next((x for x in self.measurements if x.name == m.ceiling), None)) and c.throughput
            },
            "sale": [b.as_json() for b in self.bursts],
            "verdicts": [{"acceptance": v.acceptance, "ok": v.ok, "text": v.text} for v in self.verdicts()],
            "notes": self.notes,
        }


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _statuses(statuses: Mapping[Any, int]) -> str:
    return " ".join(f"{s}:{n}" for s, n in sorted(statuses.items(), key=lambda item: str(item[0])))


def render_measurements(measurements: Sequence[Measurement]) -> str:
    by_name = {m.name: m for m in measurements}
    rows = []
    for m in measurements:
        ceiling = by_name.get(m.ceiling or "")
        ratio = f"{m.throughput / ceiling.throughput:.2f}" if ceiling and ceiling.throughput else "ceiling"
        latency_ratio = f"{m.p50_ms / ceiling.p50_ms:.1f}x" if ceiling and ceiling.p50_ms and m.p50_ms else ""
        cpu = f"{m.generator_cpu_fraction:.0%}" + (" SATURATED" if m.generator_saturated else "")
        rows.append(
            (
                m.name,
                f"{m.generator} x{m.connections}",
                f"{m.throughput:.0f}",
                _ms(m.p50_ms),
                _ms(m.p99_ms),
                str(m.errors),
                ratio,
                latency_ratio,
                cpu,
            )
        )
    header = (
        "",
        "generator x conns",
        "ok/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ok/s / ceiling",
        "p50 / ceiling",
        "gen CPU",
    )
    return table(rows, header)


def render_bursts(bursts: Sequence[sale.BurstResult]) -> str:
    rows = []
    for b in bursts:
        probe = b.readiness.get("payment", sale.ProbeCount())
        rows.append(
            (
                str(b.connections),
                "-" if b.cold_start_seconds is None else f"{b.cold_start_seconds:.1f}",
                f"{b.captured_per_second:.1f}",
                _statuses(b.checkout_statuses),
                _ms(b.checkout.p50_ms),
                _ms(b.checkout.p99_ms),
                _ms(b.checkout.max_ms),
                str(b.checkout.timeouts),
                f"{b.checkout.retry_after_503}/{b.checkout.bare_503}",
                f"{probe.flips}/{probe.polls}",
                f"{b.browse.throughput:.0f}" if b.browse else "-",
                "PASS" if b.invariants and all(r.ok for r in b.invariants) else ("FAIL" if b.invariants else "-"),
            )
        )
    header = (
        "burst", "cold start s", "captured/s", "checkout statuses (storefront)", "p50 ms", "p99 ms", "max ms",
        ">10 s", "503 Retry-After with/without", "payment /ready not 200", "browse/s", "invariants",
    )  # fmt: skip
    return table(rows, header)


def _mib(value: int | None) -> str:
    return f"{value / 2**20:.0f} MiB" if value is not None else "-"


def render(report: BenchReport) -> str:
    parts = [
        f"bench: {report.cores} cores, wrk and pgbench as generators, {report.connections} connections,"
        f" {report.seconds:g} s per measurement (statuses from the services' own /metrics)"
    ]
    if report.measurements:
        parts.append(render_measurements(report.measurements))
        saturated = [m.name for m in report.measurements if m.generator_saturated]
        if saturated:
            parts.append(
                "generator saturated (its threads busy >= 90 % of the run, so it, not the server, set the pace): "
                + "; ".join(saturated)
            )
    if report.bursts:
        b0 = report.bursts[0]
        parts.append(
            f"the sale: cold start, then at once N concurrent checkouts through storefront for {b0.seconds:g} s"
            f" (provider latency at its default; each request a new checkout"
            + (
                ", after a 503 the connection waits its Retry-After"
                if b0.honour_retry_after
                else ", 503s not waited on"
            )
            + f"), browsing at {b0.browse_rate:g}/s beside it; captured/s from payment's shop_payments_total,"
            " statuses from storefront's http_requests_total"
        )
        parts.append(render_bursts(report.bursts))
        for b in report.bursts:
            lines = [
                f"burst {b.connections}: captured {b.captured} during the burst, {b.captured_after} once everything"
                f" was answered; payments stored {_statuses(b.payments) or '-'}",
                f"  storefront POST /api/payments {_statuses(b.checkout_statuses) or '-'};"
                f" payment POST /payments {_statuses(b.payment_statuses) or '-'};"
                f" storefront GET /api/products {_statuses(b.browse_statuses) or '-'} (the services' own counts)",
                f"  wrk saw: checkouts {_statuses(b.checkout.statuses) or '-'}, {b.checkout.socket_errors} socket"
                f" errors, {b.checkout.timeouts} over {sale.ANSWER_BOUND_SECONDS:g} s"
                + (f"; browsing p50 {_ms(b.browse.p50_ms)} ms, p99 {_ms(b.browse.p99_ms)} ms" if b.browse else ""),
                "  /ready not 200: " + ", ".join(f"{name} {p.flips} of {p.polls}" for name, p in b.readiness.items()),
                "  resident memory, cold start / peak: "
                + ", ".join(
                    f"{name} {_mib(p.rss_first_bytes)} / {_mib(p.rss_peak_bytes)}" for name, p in b.readiness.items()
                ),
            ]
            saturated = [
                name for name, r in (("checkouts", b.checkout), ("browsing", b.browse)) if r and r.generator_saturated
            ]
            if saturated:
                lines.append("  generator saturated: " + ", ".join(saturated))
            lines += [f"  {'PASS' if r.ok else 'FAIL'} {r.name}: {r.detail}" for r in b.invariants]
            lines += [f"    {r.name}: {problem}" for r in b.invariants for problem in r.problems[1:]]
            parts.append("\n".join(lines))
    parts.extend(report.notes)
    verdicts = report.verdicts()
    if verdicts:
        parts.append("issue 9 acceptance, from this run:\n" + "\n".join(v.line() for v in verdicts))
    return "\n\n".join(parts)


# Running


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shop-bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="recorded seconds per read/write measurement (5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk/pgbench connections for reads and writes (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--only", nargs="+", choices=("reads", "writes", "sale"), default=["reads", "writes", "sale"])
    parser.add_argument(
        "--burst", type=int, nargs="+", default=[128, 512], help="concurrent checkouts of each sale burst"
    )
    parser.add_argument("--burst-seconds", type=float, default=15.0, help="length of each burst (15)")
    parser.add_argument("--browse-rate", type=float, default=300.0, help="browses per second during a burst (300)")
    parser.add_argument("--browse-connections", type=int, default=16, help="wrk connections browsing (16)")
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help="customers per burst (32)")
    parser.add_argument(
        "--ignore-retry-after",
        action="store_true",
        help="checkouts sent again at once after a 503 (default: after its Retry-After, as the shop asks)",
    )
    parser.add_argument("--storefront-url", help="bench a running shop instead of starting one")
    parser.add_argument("--catalog-url", default="http://127.0.0.1:8081")
    parser.add_argument("--payment-url", default="http://127.0.0.1:8083")
    parser.add_argument("--database-url", help="the running shop's payment database (write ceiling, invariants)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser.parse_args(argv)


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


def run(options: argparse.Namespace, shop: Shop, workdir: Path, own: OwnShop | None) -> BenchReport:
    report = BenchReport(os.cpu_count(), options.connections, options.seconds)
    measure = {"connections": options.connections, "seconds": options.seconds, "threads": options.threads}
    if "reads" in options.only:
        response = httpx.get(shop.catalog + PRODUCTS_PATH, timeout=10)
        if response.status_code != 200:
            raise BenchError(f"GET {shop.catalog}{PRODUCTS_PATH} answered {response.status_code}")
        _progress("reads: bare FastAPI, catalog, storefront ...")
        with bare_app(workdir, response.content) as bare:
            report.measurements += bench_reads(shop, bare, **measure)
    if "writes" in options.only:
        from shop_devtools.pg import find_bin_dir

        pgbench = own.pgbench if own else find_bin_dir() / "pgbench"
        _progress("writes: pgbench, payment, storefront ...")
        report.measurements += bench_writes(
            shop, pgbench, workdir, **measure, honour_retry_after=not options.ignore_retry_after
        )
    if "sale" in options.only:
        customers = min(options.customers, max(options.burst))
        _progress(f"the sale: registering {customers} customers per burst ...")
        pools = [register(shop.storefront, min(customers, n)) for n in options.burst]
        bodies = baskets(shop.storefront)
        if own is None:
            report.notes.append("the sale ran against a shop already running: no cold start")
        for n, shoppers in zip(options.burst, pools, strict=True):
            _progress(f"the sale: cold start, then {n} concurrent checkouts for {options.burst_seconds:g} s ...")
            cold = (lambda: own.start(provider_latency_ms=SALE_PROVIDER_LATENCY_MS)) if own else None
            report.bursts.append(
                sale.burst(
                    shop.for_sale,
                    shoppers,
                    bodies,
                    workdir,
                    connections=n,
                    seconds=options.burst_seconds,
                    browse_connections=options.browse_connections,
                    browse_rate=options.browse_rate,
                    cold_start=cold,
                    honour_retry_after=not options.ignore_retry_after,
                    check=bool(shop.database_url),
                )
            )
    return report


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    try:
        wrk.require_wrk()
        with tempfile.TemporaryDirectory(prefix="shop-bench-") as tmp:
            workdir = Path(tmp)
            workdir.chmod(0o755)  # the embedded PostgreSQL may run as another user
            if options.storefront_url:
                if not options.database_url and ({"writes", "sale"} & set(options.only)):
                    raise BenchError("--database-url (the payment database) is needed for writes and the sale")
                shop = Shop(
                    require_loopback(options.storefront_url),
                    require_loopback(options.catalog_url),
                    require_loopback(options.payment_url),
                    options.database_url or "",
                )
                report = run(options, shop, workdir, None)
            else:
                _progress("starting PostgreSQL and the four services on free ports ...")
                with OwnShop(workdir) as own:
                    own.start(provider_latency_ms=WRITES_PROVIDER_LATENCY_MS)
                    report = run(options, own.shop, workdir, own)
    except (BenchError, wrk.WrkError, httpx.HTTPError, psycopg.Error) as exc:
        where = f" ({exc.request.method} {exc.request.url})" if isinstance(exc, httpx.RequestError) else ""
        print(f"shop-bench: {exc}{where}", file=sys.stderr)
        raise SystemExit(2) from None
    print(render(report))
    if options.json:
        options.json.write_text(json.dumps(report.as_json(), indent=1) + "\n")
    if report.invariants_failed():
        raise SystemExit(1)


if __name__ == "__main__":
    main()
