"""The bench's reads and writes: one `Measurement` per generator run against one target, wrk for HTTP (an
unrecorded warm-up second, then the recorded seconds, statuses from the target's own /metrics) and pgbench for
the payment's own writes as the write ceiling.
"""

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_load.bench import sale, sale_records
from shop_load.bench.shop import CUSTOMERS, PRODUCTS_PATH, BenchError, Shop, baskets, register
from shop_load.core.scrape import Scrape, scrape
from shop_load.generators import wrk, wrk_report
from shop_load.report.timeline import percentile

WARMUP_SECONDS = 1.0


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
        return self.generator_cpu_fraction >= wrk_report.SATURATED_CPU_PER_THREAD

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


def _write_tokens(path: Path, shoppers: Sequence[sale_records.Shopper]) -> Path:
    path.write_text("".join(s.customer.token + "\n" for s in shoppers))
    return path


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
