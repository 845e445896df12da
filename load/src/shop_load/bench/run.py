"""`make bench` / `shop-bench`: the shop's hot paths next to ceilings measured in the same run, and the sale.

Every load comes from a native generator, so the client is not what is measured: wrk (`shop_load.generators.wrk`) for
HTTP and pgbench (PostgreSQL's own, from the same binaries as the embedded server) for the database. A generator
whose threads were busy 90 % of a run or more was itself the bottleneck; the bench says so next to the figure.

1. Reads, `--connections` (32) kept-alive connections for `--seconds` (5) each, after an unrecorded second:
   a bare FastAPI app answering the same bytes (`shop_load.generators.bare`, the services' server options) as the
   ceiling, catalog `GET /products?limit=20` and storefront `GET /api/products?limit=20`.
2. Writes, the same: pgbench running the payment's own writes (a payment row and its item in one transaction) as
   the ceiling, then `POST /payments` on payment and `POST /api/payments` through the storefront (one line, an
   approved card, a new Idempotency-Key each, provider latency 0).
3. The sale (`shop_load.bench.sale`), once per `--burst` (128, then 512): the services restarted (fresh processes,
   empty pools, the provider at its default latency of 150 ms), then at once that many concurrent checkouts
   through the storefront for `--burst-seconds` beside paced browsing; captured/s, every status, latency, 503s
   with and without Retry-After, readiness flips, then the drill's invariants.

Status counts come from the services' own `/metrics` read before and after each run (requests wrk gave up on at
the end still count); the bare app has none, so its statuses are wrk's. Ratios are value / ceiling from the
same run on the same machine, whose core count is printed with them.

At the end one line per bar the bench holds the shop to (the sale, reads against the ceiling, the invariants after
each burst), PASS or FAIL with the figures; `--json` writes the report (`shop_load.report.bench_model`). Exit
status: 0 when the bench ran (a missed bar is a measurement), 1 when an invariant failed, 2 when the bench could
not run (wrk missing, a service that does not start, ...).

By default the bench starts everything on free ports of 127.0.0.1: an embedded PostgreSQL (via shop_devtools),
migrated databases, the four services wired as `make run` wires them, with credentials of their own, and a stock
no run can exhaust (raised through the storefront's `/ops/restock` as the operator). `--storefront-url` (with
`--catalog-url`, `--payment-url`, and `--database-url` of the payment database) measures an already running shop
instead: no cold start there, and it spends that shop's stock; the sale's stock invariant reads its inventory at
`/ops/inventory` with the operator's credential: `OPERATOR_CREDENTIAL`, else the file `--credentials` names, else
make run's `<data dir>/credentials.env`. `--make-run [DATA_DIR]` measures the shop `make run` runs on DATA_DIR
(default: its own, `SHOP_DATA_DIR` or `.data`) the same way, every URL and the payment database found from its
run.json (`shop_load.bench.shop.made_run`), its launcher a part of the CPU each sale burst costs.
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import psycopg

from shop_devtools.runconfig import credentials_file, default_data_dir
from shop_devtools.topology import BY_NAME
from shop_devtools.workspace import WorkspaceError
from shop_load.bench import sale
from shop_load.bench import shop as bench_shop
from shop_load.bench.measure import Load, reads, writes
from shop_load.bench.report import render, verdicts
from shop_load.bench.shop import BenchError, OwnShop, Shop
from shop_load.core import ops
from shop_load.core.customers import ShopUnavailable
from shop_load.generators import wrk
from shop_load.report.bench_model import BenchReport

SALE_PROVIDER_LATENCY_MS: int | None = None
"""The sale runs payment with its default provider latency (150 ms): the variable is left unset."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shop-bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="recorded seconds per read/write measurement (5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk/pgbench connections for reads and writes (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--only", nargs="+", choices=("reads", "writes", "sale"), default=["reads", "writes", "sale"])
    parser.add_argument("--burst", type=int, nargs="+", default=[128, 512], help="each burst's checkouts at once")
    parser.add_argument("--burst-seconds", type=float, default=15.0, help="length of each burst (15)")
    parser.add_argument("--browse-rate", type=float, default=300.0, help="browses per second during a burst (300)")
    parser.add_argument("--browse-connections", type=int, default=16, help="wrk connections browsing (16)")
    parser.add_argument("--customers", type=int, default=bench_shop.CUSTOMERS, help="customers per burst (32)")
    parser.add_argument(
        "--ignore-retry-after",
        action="store_true",
        help="checkouts sent again at once after a 503 (default: after its Retry-After, as the shop asks)",
    )
    parser.add_argument("--storefront-url", help="bench a running shop instead of starting one")
    parser.add_argument("--catalog-url", default=f"http://127.0.0.1:{BY_NAME['catalog'].port}")
    parser.add_argument("--payment-url", default=f"http://127.0.0.1:{BY_NAME['payment'].port}")
    parser.add_argument("--database-url", help="the running shop's payment database (write ceiling, invariants)")
    parser.add_argument("--make-run", nargs="?", const="", metavar="DATA_DIR", help="bench the shop make run runs")
    parser.add_argument(
        "--credentials",
        type=Path,
        metavar="FILE",
        help="the running shop's operator credential, an env file with OPERATOR_CREDENTIAL=... (default: "
        "$OPERATOR_CREDENTIAL, else make run's <data dir>/credentials.env)",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser.parse_args(argv)


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


def run(options: argparse.Namespace, shop: Shop, workdir: Path, own: OwnShop | None) -> BenchReport:
    report = BenchReport(cores=os.cpu_count(), connections=options.connections, seconds=options.seconds)
    load = Load(options.connections, options.seconds, options.threads)
    if "reads" in options.only:
        response = httpx.get(shop.catalog + bench_shop.PRODUCTS_PATH, timeout=10)
        if response.status_code != 200:
            raise BenchError(f"GET {shop.catalog}{bench_shop.PRODUCTS_PATH} answered {response.status_code}")
        _progress("reads: bare FastAPI, catalog, storefront ...")
        with bench_shop.bare_app(workdir, response.content) as bare:
            report.measurements += reads(shop, bare, load)
    if "writes" in options.only:
        _progress("writes: pgbench, payment, storefront ...")
        report.measurements += writes(shop, workdir, load, honour_retry_after=not options.ignore_retry_after)
    if "sale" in options.only:
        customers = min(options.customers, max(options.burst))
        _progress(f"the sale: registering {customers} customers per burst ...")
        pools = [bench_shop.prepare(shop.storefront, min(customers, n)) for n in options.burst]
        if own is None:
            report.notes.append("the sale ran against a shop already running: no cold start")
        for n, (pool, bodies) in zip(options.burst, pools, strict=True):
            _progress(f"the sale: cold start, then {n} concurrent checkouts for {options.burst_seconds:g} s ...")
            cold = (lambda: own.start(provider_latency_ms=SALE_PROVIDER_LATENCY_MS)) if own else None
            report.bursts.append(
                sale.burst(
                    shop,
                    pool,
                    bodies,
                    workdir,
                    connections=n,
                    seconds=options.burst_seconds,
                    browse_connections=options.browse_connections,
                    browse_rate=options.browse_rate,
                    cold_start=cold,
                    honour_retry_after=not options.ignore_retry_after,
                )
            )
    report.verdicts = verdicts(report)
    return report


def running_shop(options: argparse.Namespace) -> Shop:
    """The running shop `--make-run` or `--storefront-url` names; the sale needs its operator's credential."""
    operator = running_operator(options) if "sale" in options.only else None
    if options.make_run is not None:
        return bench_shop.made_run(Path(options.make_run or default_data_dir(os.environ)), operator)
    if not options.database_url and ({"writes", "sale"} & set(options.only)):
        raise BenchError("--database-url (the payment database) is needed for writes and the sale")
    urls = list(map(bench_shop.require_loopback, (options.storefront_url, options.catalog_url, options.payment_url)))
    return Shop(urls[0], urls[1], urls[2], options.database_url or "", operator)


def running_operator(options: argparse.Namespace) -> ops.Operator:
    """The operator's credential of the running shop the bench measures: given (`OPERATOR_CREDENTIAL`,
    `--credentials`), else make run's, in its data directory (`SHOP_DATA_DIR` or `.data`)."""
    try:
        if found := ops.explicit(os.environ, options.credentials):
            return found
        path = credentials_file(Path(options.make_run or default_data_dir(os.environ)))
    except (ops.CredentialMissing, WorkspaceError) as exc:
        raise BenchError(str(exc)) from None
    if found := ops.from_file(path):
        return found
    raise BenchError(
        f"the sale reads the running shop's inventory at /ops/ as the operator: no OPERATOR_CREDENTIAL in {path}; "
        "set OPERATOR_CREDENTIAL or name its file with --credentials"
    )


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    try:
        wrk.require_wrk()
        with tempfile.TemporaryDirectory(prefix="shop-bench-") as tmp:
            workdir = Path(tmp)
            workdir.chmod(0o755)  # the embedded PostgreSQL may run as another user
            if options.storefront_url or options.make_run is not None:
                report = run(options, running_shop(options), workdir, None)
            else:
                _progress("starting PostgreSQL and the four services on free ports ...")
                with bench_shop.own_shop(workdir) as own:
                    own.start(provider_latency_ms=0)  # the reads and writes: an instant provider
                    report = run(options, own.shop, workdir, own)
    except (BenchError, ShopUnavailable, wrk.WrkError, httpx.HTTPError, psycopg.Error, WorkspaceError) as exc:
        where = f" ({exc.request.method} {exc.request.url})" if isinstance(exc, httpx.RequestError) else ""
        print(f"shop-bench: {exc}{where}", file=sys.stderr)
        raise SystemExit(2) from None
    print(render(report))
    if options.json:
        options.json.write_text(report.model_dump_json(indent=1) + "\n")
    if report.invariants_failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
