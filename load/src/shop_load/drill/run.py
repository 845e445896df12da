"""`make drill` / `shop-drill`: the article's crash, played during a sale against the running shop and measured.

The sale's load runs throughout: the drill's own paced customers check out through the storefront (`--rate`, 50
checkouts/s by default, each with its own Idempotency-Key, retried with it until answered) and wrk browses the
catalog beside them (`--browse-rate`, 300 GETs/s; `shop_load.generators.browsing`), counted second by second from the
storefront's own /metrics. After a warm-up one payment pod (or, with no cluster, the local payment process) gets a
fault: a memory leak by default, a hung event loop or a crash on request. With a cluster the drill follows the
payment pods, their Events and ReplicaSets through the Kubernetes API (unready, liveness failure or OOMKilled,
restart, Ready again) and ends the fault phase once the pod is back and every replica is Ready; without one it
polls the process's /healthz and /ready, says plainly that nothing will restart it, and clears the fault itself at
the end. After a cool-down it checks the invariants against the shop's API, prints a summary (the load it ran
first) and writes `drill-<profile>.json`, `drill-<profile>.png` (load and fault on one time axis) and the ledger
the invariants were checked from (`drill-<profile>.ledger.json`, for `--check`) into the output folder.

The operator's side goes through the storefront's `/ops/` with the operator's credential (`shop_load.core.ops`): the
restock before the sale (`--restock`, `shop_load.core.stock`) and the inventory the stock invariant is checked against,
the same on every target. The credential is `OPERATOR_CREDENTIAL`, else the file `--credentials` names, else the
target's own: make run's `<data dir>/credentials.env` (compose's too), or the cluster's `credentials` Secret.

Unattended against a live shop (the scheduled drill in the cluster): `--stop-below` clears the fault and ends the
sale once too many checkouts fail, `--put-back` puts the sale's purchases back into stock after the checks, and
`--pushgateway` pushes the verdict where Prometheus sees it (`shop_load.drill.scheduled`).

Exit status: 0 when every invariant holds, 1 when one fails (named in the output), 2 when the drill could not run,
3 when the stop condition ended it early (and every invariant held).
"""

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from shop_devtools.chaos import ChaosRefused
from shop_load import invariants
from shop_load.core import stock
from shop_load.core.customers import Shoppers, ShopUnavailable, watch_lag
from shop_load.core.drill_args import CHAOS_FAULTS, DrillConfig, DrillError, fault_body, parse_args
from shop_load.core.records import InvariantResult
from shop_load.drill import scheduled
from shop_load.drill.progress import Progress
from shop_load.drill.results import EXIT_CANNOT_RUN, EXIT_OK, drill_settings, print_invariants, verdict, write_results
from shop_load.generators import browse_counts, browsing, wrk
from shop_load.generators.browse_counts import ServerCounter
from shop_load.generators.browsing import Browsing
from shop_load.report.build import build_report
from shop_load.report.model import DrillReport, ReportError, read_report
from shop_load.report.text import compare
from shop_load.targets.choose import LocalTarget, choose_target, find_operator
from shop_load.targets.cluster import ClusterTarget

CONNECTIONS_PER_CLIENT = 16
"""The checkouts share several httpx clients of this many connections: one pool of hundreds costs a core."""


async def drill(options: DrillConfig) -> int:
    t0 = time.monotonic()

    def clock() -> float:
        return time.monotonic() - t0

    started_at, target = datetime.now(UTC), choose_target(options, clock)
    try:
        operator = find_operator(options, target)  # before any load: the drill reads the inventory through /ops/
    except DrillError:
        target.stop()
        raise
    if target.url is not None:  # the target knows its storefront (the shop in containers)
        options = options.model_copy(update={"url": target.url})
    duration, base_url = options.fault_seconds(target.mode), options.url
    if options.browse_rate > 0:
        try:
            wrk.require_wrk()
        except wrk.WrkError as exc:
            raise DrillError(f"{exc}; or browse with nothing but the checkouts: --browse-rate 0") from None
    shoppers = Shoppers(
        base_url,
        clock,
        rate=options.rate,
        retry_for=options.retry_for,
        request_timeout=options.request_timeout,
        declined_share=options.declined_share,
        max_in_flight=options.max_in_flight,
        view_product=options.browse_rate <= 0,  # wrk does the browsing
    )
    shard = httpx.Limits(max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT)
    lags: list[tuple[float, float]] = []
    stop_customers, stop_sampling = asyncio.Event(), asyncio.Event()
    counter = ServerCounter()
    progress = Progress(shoppers, target, clock, counter if options.browse_rate > 0 else None)
    stop = scheduled.StopCondition(options.stop_below, shoppers.checkouts, clock)
    browse: Browsing | None = None
    sampler: asyncio.Task[None] | None = None
    lag_watch: asyncio.Task[None] | None = None
    injected = finished = False
    notes: list[str] = []
    load_window, client_cpu = (0.0, 0.0), 0.0
    try:
        async with (
            contextlib.AsyncExitStack() as clients,
            httpx.AsyncClient(base_url=base_url) as client,
            httpx.AsyncClient() as control,
        ):
            checkout_clients = [
                await clients.enter_async_context(httpx.AsyncClient(base_url=base_url, limits=shard))
                for _ in range(max(1, math.ceil(options.max_in_flight / CONNECTIONS_PER_CLIENT)))
            ]
            lag_watch = asyncio.create_task(watch_lag(clock, lags, stop_sampling))
            if isinstance(target, LocalTarget):
                if options.fault in CHAOS_FAULTS:
                    await target.payment.check(control)
                target.start(control)
            planned = options.warmup + duration + options.cooldown
            if note := await stock.restock(options, client, operator, planned):
                notes.append(note)
                print(f"shop-drill: {note}", file=sys.stderr, flush=True)
            try:
                await shoppers.prepare(client, options.customers)
            except (ShopUnavailable, httpx.HTTPError) as exc:
                raise DrillError(f"the shop at {base_url} cannot take customers: {exc}") from None
            try:
                initial = await operator.inventory(client)
            except httpx.HTTPError as exc:
                raise DrillError(f"the shop at {base_url} does not show the operator its inventory: {exc}") from None
            ttl, began = options.reservation_ttl, started_at.isoformat()
            ledger = invariants.Ledger(base_url, began, ttl, shoppers.customers, shoppers.checkouts, initial)
            if options.browse_rate > 0:
                scrape = (
                    browse_counts.cluster_scrape(target.cluster, options.storefront_selector)
                    if isinstance(target, ClusterTarget)
                    else browse_counts.local_scrape(control, base_url)
                )
                sampler = asyncio.create_task(browse_counts.sample_forever(scrape, counter, clock, stop_sampling))
                browse = Browsing(
                    base_url,
                    options.browse_rate,
                    options.browse_connections or browsing.default_connections(options.browse_rate),
                    browsing.browse_paths([str(p["sku"]) for p in shoppers.products]),
                    clock,
                    cap_seconds=planned + duration + 120,
                    timeout_seconds=options.request_timeout,
                )
                try:
                    browse.start("before")
                except wrk.WrkError as exc:
                    raise DrillError(f"wrk cannot browse the shop: {exc}") from None
            load_started, cpu_started = clock(), time.process_time()
            customers = asyncio.create_task(shoppers.run(checkout_clients, stop_customers))
            await progress.wait("warm-up", options.warmup)
            injected = True  # set before sending: a fault whose answer was lost is cleared all the same
            if browse is not None:
                await browse.switch("during")
            await target.inject(control, options.fault, fault_body(options, target.mode))
            await progress.wait("fault", duration, until=lambda: target.recovered() or stop.tripped())
            finished = True
            await target.finish(control)
            if browse is not None:
                await browse.switch("after")
            await progress.wait("cool-down", 0 if stop.tripped() else options.cooldown, until=stop.tripped)
            stop_customers.set()
            load_window, client_cpu = (load_started, clock()), time.process_time() - cpu_started
            if browse is not None:
                await browse.stop()
            await progress.wait("finishing", math.inf, until=customers.done)
            await customers
            end = clock()
            stop_sampling.set()
            await asyncio.gather(*(task for task in (lag_watch, sampler) if task is not None))
            progress.done()
            await target.stopped()  # before the clients its watchers probe with close
    finally:
        stop_customers.set()
        stop_sampling.set()
        if browse is not None:
            browse.kill()
        for task in (sampler, lag_watch):
            if task is not None and not task.done():
                task.cancel()
        if injected and not finished:  # interrupted (Ctrl-C, an error) with the fault in place: take it out
            with contextlib.suppress(Exception):
                async with httpx.AsyncClient() as cleanup:
                    await target.finish(cleanup, wait=False)
        target.stop()
    results: list[InvariantResult] | None = None
    if not options.no_check:
        print("checking the invariants against the shop's API ...", file=sys.stderr, flush=True)
        results = await invariants.verify(ledger, operator, settle_seconds=options.settle) + await target.checks()
    if options.put_back:
        async with httpx.AsyncClient(base_url=base_url) as client:
            notes.append(await stock.put_back(client, operator, initial))
    if out_of_stock := sum(c.outcome == "out_of_stock" for c in shoppers.checkouts):
        notes.append(
            f"{out_of_stock} checkouts were answered 409 insufficient stock (an answer, not a failure): "
            "the sale sold out some products (--restock raises the stock before the drill)"
        )
    report = build_report(
        settings=drill_settings(options, target, browse),
        shoppers=shoppers,
        marks=target.marks(),
        replicasets=target.replicasets(),
        invariants=results,
        end=end,
        target_pod=target.name,
        restarts=target.restarts(),
        notes=[*notes, *target.notes, *filter(None, [stop.note])],
        started_at=started_at.isoformat(),
        load_window=load_window,
        browsing=browse.summary() if browse is not None else None,
        browse_samples=counter.samples,
        client_lag=lags,
        client_cpu_seconds=client_cpu,
        autoscaler=target.autoscaler(),
    )
    code = write_results(options, report, ledger)
    return (code or scheduled.EXIT_STOPPED) if stop.note else code


async def check_only(options: DrillConfig, ledger_file: Path) -> int:
    ledger = invariants.Ledger.load(ledger_file)
    if "url" in options.model_fields_set:
        ledger.base_url = options.url
    results = await invariants.verify(ledger, find_operator(options, None), settle_seconds=options.settle)
    print_invariants(results)
    return verdict(results)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    if options.compare:
        try:
            print(compare([read_report(path, DrillReport) for path in options.compare]))
        except ReportError as exc:
            print(f"shop-drill: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_CANNOT_RUN) from None
        raise SystemExit(EXIT_OK)
    try:
        code = asyncio.run(check_only(options, options.check) if options.check else drill(options))
    except (DrillError, ChaosRefused) as exc:
        print(f"\nshop-drill: {exc}", file=sys.stderr)
        code = EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        code = 130
    if options.pushgateway:
        try:
            scheduled.push_verdict(options.pushgateway, code)
        except OSError as exc:  # urllib's errors: the verdict is lost, and the alert on a missing drill will say so
            print(f"shop-drill: could not push the verdict to {options.pushgateway}: {exc}", file=sys.stderr)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
