"""The bench's reads and writes: one `Measurement` per generator run against one target, wrk for HTTP (an
unrecorded warm-up second, then the recorded seconds, statuses from the target's own /metrics) and pgbench for
the payment's own writes as the write ceiling. The services' metrics are read here, for the sale too (`settled`).
"""

import json
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_load.bench.shop import CUSTOMERS, PRODUCTS_PATH, BenchError, Shop, prepare
from shop_load.core.customers import Customer
from shop_load.core.scrape import Scrape, scrape
from shop_load.generators import wrk
from shop_load.generators.wrk_report import SATURATED_CPU_PER_THREAD
from shop_load.report.bench_model import Measurement
from shop_load.report.timeline import percentile

WARMUP_SECONDS = 1.0
API_HANDLER = "/api/{path:path}"
"""Storefront's one gateway route: checkouts are its POSTs, browsing its GETs."""
PAYMENTS_HANDLER = "/payments"
PGBENCH_NAME = "pgbench: payment + item in one transaction"
PGBENCH_SCRIPT = Path(__file__).with_name("payment-writes.sql")
"""The payment's own writes, a payment row and its item in one transaction, with no HTTP and no Python: pgbench's
script, shipped beside this module."""

Route = tuple[str, str, str]
"""(a service's base URL, handler, method): whose `http_requests_total` counts a target's answers."""
Target = tuple[str, str, str, str]
"""(service, its base URL, the path measured, its handler)."""


@dataclass(frozen=True)
class Load:
    """How each read and write is measured: kept-alive connections, recorded seconds, wrk threads."""

    connections: int
    seconds: float
    threads: int


def settled(routes: Sequence[Route], *, timeout: float, poll: float = 0.5) -> dict[str, Scrape]:
    """Each service's metrics, by URL, once its counts of `routes` stop moving: what was in flight is answered."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        scrapes = {url: scrape(url) for url, _, _ in routes}
        counts = [scrapes[url].statuses(handler=handler, method=method) for url, handler, method in routes]
        if counts == last or time.monotonic() > deadline:
            return scrapes
        last = counts
        time.sleep(poll)


def since(after: Mapping[str, Scrape], before: Mapping[str, Scrape], route: Route) -> dict[int, int]:
    url, handler, method = route
    return after[url].statuses_since(before[url], handler=handler, method=method)


def from_wrk(name: str, result: wrk.WrkResult, expected: int, statuses: dict[int, int] | None = None) -> Measurement:
    """A wrk run; `statuses` as the target counted them (None: as wrk saw them)."""
    counted, ok = dict(result.statuses) if statuses is None else statuses, result.count(expected)
    return Measurement(
        **result.model_dump(exclude={"statuses", "throughput"}),  # the rest of wrk's figures, by the same names
        name=name,
        generator="wrk",
        ok=ok,
        throughput=ok / result.seconds if result.seconds else 0.0,
        statuses=counted,
        statuses_from="wrk" if statuses is None else "server metrics",
        errors=sum(n for s, n in counted.items() if s != expected) + result.socket_errors + result.timeouts,
    )


def checkout_params(
    files: Path, customers: Sequence[Customer], bodies: Sequence[Mapping[str, Any]], *, key_prefix: str, honour: bool
) -> dict[str, str]:
    """wrk's `checkout` script's parameters: the customers' tokens and the bodies, in files beside `files`."""
    tokens, lines = files.with_suffix(".tokens"), files.with_suffix(".bodies")
    tokens.write_text("".join(customer.token + "\n" for customer in customers))
    lines.write_text("".join(json.dumps(body, separators=(",", ":")) + "\n" for body in bodies))
    return dict(tokens_file=str(tokens), bodies_file=str(lines), key_prefix=key_prefix, retry_after=str(int(honour)))


def measure_wrk(
    name: str, url: str, expected: int, route: Route | None, load: Load, script: str = "get", **params: str
) -> Measurement:
    """An unrecorded warm-up second, then `load.seconds` recorded; statuses from `route`'s service's metrics."""

    def run(seconds: float) -> wrk.WrkResult:
        return wrk.run(
            url, connections=load.connections, seconds=seconds, threads=load.threads, script=script, params=params
        )

    run(WARMUP_SECONDS)
    if route is None:
        return from_wrk(name, run(load.seconds), expected)
    before = settled([route], timeout=15)
    result = run(load.seconds)
    return from_wrk(name, result, expected, since(settled([route], timeout=15), before, route))


def each(method: str, targets: Sequence[Target], load: Load, script: str = "get", **params: str) -> list[Measurement]:
    """`method` of each target measured (answered 201 to a POST, 200 to a GET)."""
    expected = 201 if method == "POST" else 200
    return [
        measure_wrk(f"{method} {path} ({name})", url + path, expected, (url, handler, method), load, script, **params)
        for name, url, path, handler in targets
    ]


def against(ceiling: Measurement, measured: Sequence[Measurement]) -> list[Measurement]:
    """`ceiling`, then each of `measured` with its ratio to it."""
    for m in measured:
        m.ceiling, m.ratio = ceiling.name, m.throughput / ceiling.throughput if ceiling.throughput else None
    return [ceiling, *measured]


def reads(shop: Shop, bare: str, load: Load) -> list[Measurement]:
    """The bare app serving the same bytes, then catalog's and storefront's product list."""
    ceiling = measure_wrk("bare FastAPI, same bytes", bare + PRODUCTS_PATH, 200, None, load)
    catalog = ("catalog", shop.catalog, PRODUCTS_PATH, "/products")
    storefront = ("storefront", shop.storefront, "/api" + PRODUCTS_PATH, API_HANDLER)
    return against(ceiling, each("GET", [catalog, storefront], load))


def writes(shop: Shop, workdir: Path, load: Load, *, honour_retry_after: bool) -> list[Measurement]:
    """pgbench's payment writes, then checkouts on payment and through the storefront (an approved card each)."""
    customers, bodies = prepare(shop.storefront, min(load.connections, CUSTOMERS))
    files, prefix = workdir / "writes", "bench-writes"
    params = checkout_params(files, customers, bodies, key_prefix=prefix, honour=honour_retry_after)
    ceiling = pgbench(shop.database_url, str(bodies[0]["items"][0]["sku"]), workdir, load)
    payment = ("payment", shop.payment.split(",")[0], "/payments", PAYMENTS_HANDLER)  # the first replica
    storefront = ("storefront", shop.storefront, "/api/payments", API_HANDLER)
    return against(ceiling, each("POST", [payment, storefront], load, "checkout", **params))


def parse_pgbench(stdout: str, log_lines: Sequence[str]) -> tuple[int, int, float, list[float]]:
    """(transactions, failed, seconds, latencies in ms) of a pgbench run with `--log`."""
    processed = re.search(r"number of transactions actually processed: (\d+)", stdout)
    failed = re.search(r"number of failed transactions: (\d+)", stdout)
    duration = re.search(r"duration: (\d+(?:\.\d+)?) s", stdout)
    if not processed or not duration:
        raise BenchError(f"pgbench printed no summary: {stdout[-1000:]}")
    rows = [line.split() for line in log_lines]  # client_id transaction_no time(µs) ...
    latencies = [int(row[2]) / 1000 for row in rows if len(row) >= 3 and row[2].isdigit()]
    return int(processed[1]), int(failed[1]) if failed else 0, float(duration[1]), latencies


def pgbench(database_url: str, sku: str, workdir: Path, load: Load) -> Measurement:
    """PGBENCH_SCRIPT with `load.connections` clients for `load.seconds` (whole seconds), its CPU time measured."""
    from shop_devtools.pg import find_bin_dir

    logs = workdir / "pgbench-log"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    args = [
        str(find_bin_dir() / "pgbench"), "--no-vacuum", "--protocol=prepared", f"--client={load.connections}",
        "--jobs=1", f"--time={max(1, round(load.seconds))}", f"--file={PGBENCH_SCRIPT}", f"--define=sku={sku}",
        "--log", f"--log-prefix={logs}/tx", database_url,
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, capture_output=True, text=True, errors="replace", check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"pgbench exited with {done.returncode}: {(done.stderr or done.stdout)[-1500:]}")
    log_lines = [line for path in sorted(logs.iterdir()) for line in path.read_text().splitlines()]
    transactions, failed, duration, latencies = parse_pgbench(done.stdout, log_lines)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Measurement(
        name=PGBENCH_NAME,
        generator="pgbench",
        connections=load.connections,
        seconds=duration,
        requests=transactions + failed,
        ok=transactions,
        throughput=transactions / duration if duration else 0.0,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies, default=None),
        statuses={},
        statuses_from="pgbench",
        errors=failed,
        failed=failed,
        generator_cpu_seconds=cpu,
        generator_saturated=bool(duration) and cpu / duration >= SATURATED_CPU_PER_THREAD,
    )
