"""The sale: a cold start, then at once a burst of concurrent checkouts through the storefront, with
browsing beside it. Played by `make bench` (`shop_load.bench`), one burst per `--burst`.

A burst is `connections` wrk connections POSTing `/api/payments` as fast as they are answered, for `seconds`
(each request a new checkout: a fresh Idempotency-Key, a customer's token and a one-line basket; after a 503 with
Retry-After the connection waits as long, at most 5 s, as clients honouring the header do, unless
`honour_retry_after` is off), while a second wrk browses `/api/products?limit=20` at a paced rate and one thread
per service polls `/ready` every 200 ms (`watch_readiness`). Measured:

- captured/s: the increase of payment's own `shop_payments_total{status="captured"}` during the burst (every
  replica's), per second;
- CPU milliseconds per captured checkout, the whole shop's and each part's, from the processes' own counters
  (`shop_load.bench.cpu`), less what the same processes spent idle in the IDLE_SECONDS just before the burst
  (waited with the services ready, their pools still empty); the browsing beside the burst is in it too;
- every status of the checkouts and of the browsing, from storefront's own `http_requests_total`, read before the
  burst and again once the shop has answered everything it was still working on (so requests wrk gave up on when
  its run ended count too), and payment's own statuses of `POST /payments` the same way;
- p50/p99/max as wrk saw them (an answer later than 10 s counts as a wrk timeout), and how many 503s carried
  `Retry-After`;
- readiness flips: polls of `/ready` that did not answer 200 within 1 s (a kubelet's default probe timeout), and
  each service's resident memory, sampled every second.

Then (`shop_load.bench.sale_invariants`) the drill's invariants (`shop_load.invariants`) on this burst's payments,
read from payment's database by their key prefix and checked through the storefront as the drill checks its own:
every payment is found with its status, its key sent again gives the same payment, each customer's list holds
exactly their keys' payments (the public API), and stock + held + sold is conserved (`/ops/inventory`, as the
operator, read before the burst and after); plus one more from the database: the provider
charged every captured payment once, with its amount, and no payment that was not captured.
"""

import contextlib
import functools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from shop_load.bench import cpu
from shop_load.bench.measure import API_HANDLER, PAYMENTS_HANDLER, checkout_params, from_wrk, settled, since
from shop_load.bench.sale_invariants import verify
from shop_load.bench.shop import Shop, with_client
from shop_load.core.customers import Customer
from shop_load.core.scrape import scrape
from shop_load.generators import wrk
from shop_load.report.bench_model import Burst, Probe

BROWSE_PATH = "/api/products?limit=20"
ANSWER_BOUND_SECONDS = 10.0
"""No answer of the sale may take longer (one of the bench's bars): wrk counts later ones as timeouts."""
SETTLE_SECONDS = 20.0
"""How long the shop may take to answer what it was still working on once wrk stopped."""
READY_POLL_SECONDS = 0.2
READY_TIMEOUT_SECONDS = 1.0
MEMORY_EVERY_POLLS = 5
IDLE_SECONDS = 2.0


def _poll(url: str, probe: Probe, stop: threading.Event, began: float) -> None:
    with httpx.Client(timeout=READY_TIMEOUT_SECONDS) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = client.get(url + "/ready")
                failure = "" if response.status_code == 200 else f"answered {response.status_code}: {response.text}"
                probe.not_ready += bool(failure)
            except httpx.HTTPError as exc:
                failure = f"no answer ({type(exc).__name__})"
                probe.no_answer += 1
            if probe.polls % MEMORY_EVERY_POLLS == 0:
                with contextlib.suppress(httpx.HTTPError):
                    rss = int(scrape(url, timeout=READY_TIMEOUT_SECONDS).value("shop_resident_memory_bytes"))
                    probe.rss_first_bytes = probe.rss_first_bytes or rss
                    probe.rss_peak_bytes = max(rss, probe.rss_peak_bytes or 0)
            probe.polls += 1
            if failure and probe.first_failure is None:
                probe.first_failure = f"at {started - began:.1f} s: {failure[:200]}"
            stop.wait(max(0.0, READY_POLL_SECONDS - (time.monotonic() - started)))


@contextlib.contextmanager
def watch_readiness(urls: Mapping[str, str]) -> Iterator[dict[str, Probe]]:
    """One thread per service polling `GET /ready` every 200 ms, and its memory every second, until the end."""
    probes, stop, began = {name: Probe() for name in urls}, threading.Event(), time.monotonic()
    with ThreadPoolExecutor(len(urls)) as polling:  # waits for the threads, stopped within a poll
        for name, url in urls.items():
            polling.submit(_poll, url, probes[name], stop, began)
        try:
            yield probes
        finally:
            stop.set()


def burst(
    shop: Shop,
    customers: Sequence[Customer],
    bodies: Sequence[Mapping[str, Any]],
    workdir: Path,
    *,
    connections: int,
    seconds: float,
    browse_connections: int,
    browse_rate: float,
    cold_start: Callable[[], float] | None,
    honour_retry_after: bool = True,
) -> Burst:
    """One burst: `cold_start()` (restarts the services, returns the seconds until they were ready), then at once
    `connections` concurrent checkouts and the browsing for `seconds`; then its invariants, when the shop has what
    they need: the payment database and the operator (`shop.operator`)."""
    check = bool(shop.database_url) and shop.operator is not None  # and the inventory is read as the operator
    prefix = f"sale{connections}-{uuid.uuid4().hex[:8]}"
    params = checkout_params(workdir / prefix, customers, bodies, key_prefix=prefix, honour=honour_retry_after)
    initial = with_client(shop.storefront, shop.operator.inventory) if check and shop.operator else []
    started_at, cold = datetime.now(UTC), cold_start() if cold_start else None
    checkouts, browsing = (shop.storefront, API_HANDLER, "POST"), (shop.storefront, API_HANDLER, "GET")
    replicas = shop.payment.split(",")
    payments = [(url, PAYMENTS_HANDLER, "POST") for url in replicas]
    before = {url: scrape(url) for url in (shop.storefront, *replicas)}
    ready_urls = {"payment": replicas[0], "catalog": shop.catalog, "storefront": shop.storefront}

    start = functools.partial(wrk.start, seconds=seconds, timeout_seconds=ANSWER_BOUND_SECONDS)
    with watch_readiness(ready_urls) as readiness, contextlib.ExitStack() as running:  # stops what an error leaves
        meter = cpu.Meter(shop.parts(), IDLE_SECONDS) if shop.parts else None
        paying = start(shop.storefront + "/api/payments", connections=connections, script="checkout", params=params)
        running.callback(paying.stop)
        browse_run = None
        if browse_connections and browse_rate > 0:
            rate = {"rate": f"{browse_rate:g}"}
            browse_run = start(shop.storefront + BROWSE_PATH, connections=browse_connections, params=rate)
            running.callback(browse_run.stop)
        checkout = paying.result()
        used, at_end = meter.stop() if meter else {}, {url: scrape(url) for url in replicas}
        if browse_run is not None:
            browse_run.stop()
        browse = browse_run.result() if browse_run else None
        after = settled([checkouts, browsing, *payments], timeout=SETTLE_SECONDS, poll=1.0)
    captured, captured_after = (
        int(sum(scrapes[url].since(before[url], "shop_payments_total", status="captured") for url in replicas))
        for scrapes in (at_end, after)
    )
    result = Burst(
        connections=connections,
        seconds=seconds,
        cold_start_s=cold,
        browse_rate=browse_rate if browse else 0.0,
        honour_retry_after=honour_retry_after,
        checkout=from_wrk("checkouts", checkout, 201),
        browse=from_wrk("browsing", browse, 200) if browse else None,
        captured=captured,
        captured_per_second=captured / checkout.seconds if checkout.seconds else 0.0,
        captured_after=captured_after,
        checkout_statuses=since(after, before, checkouts),
        browse_statuses=since(after, before, browsing),
        payment_statuses=dict(sum((Counter(since(after, before, route)) for route in payments), Counter())),
        readiness=readiness,
        cpu_ms_per_captured=cpu.per_captured(used, captured),
        cpu_idle_ms_per_second={name: 1000 * s for name, s in meter.idle.items()} if meter else {},
    )
    if check:
        result.invariants, result.payments = verify(shop, prefix, customers, bodies, initial, started_at)
    return result
