"""The sale: a cold start, then at once a burst of concurrent checkouts through the storefront, with
browsing beside it. Played by `make bench` (`shop_load.bench`), one burst per `--burst`.

A burst is `connections` wrk connections POSTing `/api/payments` as fast as they are answered, for `seconds`
(each request a new checkout: a fresh Idempotency-Key, a customer's token and a one-line basket; after a 503 with
Retry-After the connection waits as long, at most 5 s, as clients honouring the header do, unless
`honour_retry_after` is off), while a second wrk browses
`/api/products?limit=20` at a paced rate and one thread per service polls `/ready` every 200 ms.
Measured:

- captured/s: the increase of payment's own `shop_payments_total{status="captured"}` during the burst, per second;
- every status of the checkouts and of the browsing, from storefront's own `http_requests_total`, read before the
  burst and again once the shop has answered everything it was still working on (so requests wrk gave up on when
  its run ended count too), and payment's own statuses of `POST /payments` the same way;
- p50/p99/max as wrk saw them (an answer later than 10 s counts as a wrk timeout), and how many 503s carried
  `Retry-After`;
- readiness flips: polls of `/ready` that did not answer 200 within 1 s.

Then (`shop_load.bench.sale_invariants`) the drill's invariants (`shop_load.invariants`) on this burst's payments,
read from payment's database by their key prefix and checked through the storefront as the drill checks its own:
every payment is found with its status, its key sent again gives the same payment, each customer's list holds
exactly their keys' payments (the public API), and stock + held + sold is conserved (`/ops/inventory`, as the
operator, read before the burst and after); plus one more from the database: the provider
charged every captured payment once, with its amount, and no payment that was not captured.
"""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from shop_load.bench.sale_invariants import verify
from shop_load.bench.sale_readiness import ReadinessWatch
from shop_load.bench.sale_records import BurstResult, SaleShop, Shopper
from shop_load.core.scrape import Scrape, scrape
from shop_load.generators import wrk

__all__ = ["ANSWER_BOUND_SECONDS", "API_HANDLER", "BROWSE_PATH", "PAYMENTS_HANDLER", "SETTLE_SECONDS", "burst"]

API_HANDLER = "/api/{path:path}"
"""Storefront's one gateway route: checkouts are its POSTs, browsing its GETs."""
PAYMENTS_HANDLER = "/payments"
BROWSE_PATH = "/api/products?limit=20"
ANSWER_BOUND_SECONDS = 10.0
"""No answer of the sale may take longer (one of the bench's bars): wrk counts later ones as timeouts."""
SETTLE_SECONDS = 20.0
"""How long the shop may take to answer what it was still working on once wrk stopped."""


def _settled(shop: SaleShop, *, deadline: float) -> tuple[Scrape, Scrape]:
    """Storefront's and payment's metrics once their counts stop moving: every request in flight answered."""
    last: tuple[dict[int, int], ...] | None = None
    while True:
        storefront, payment = scrape(shop.storefront), scrape(shop.payment)
        now = (
            storefront.statuses(handler=API_HANDLER, method="POST"),
            storefront.statuses(handler=API_HANDLER, method="GET"),
            payment.statuses(handler=PAYMENTS_HANDLER, method="POST"),
        )
        if now == last or time.monotonic() > deadline:
            return storefront, payment
        last = now
        time.sleep(1.0)


async def _inventory(shop: SaleShop) -> list[dict[str, Any]]:
    """The inventory before the burst, through the storefront's `/ops/inventory` as the operator."""
    assert shop.operator is not None
    async with httpx.AsyncClient(base_url=shop.storefront, timeout=10) as client:
        return await shop.operator.inventory(client)


def burst(
    shop: SaleShop,
    shoppers: Sequence[Shopper],
    bodies: Sequence[Mapping[str, Any]],
    workdir: Path,
    *,
    connections: int,
    seconds: float,
    browse_connections: int,
    browse_rate: float,
    cold_start: Callable[[], float] | None,
    honour_retry_after: bool = True,
    check: bool = True,
) -> BurstResult:
    """One burst: `cold_start()` (restarts the services, returns the seconds until they were ready), then at once
    `connections` concurrent checkouts and the browsing for `seconds`; then its invariants unless `check` is off
    (they need the payment database and the operator: `shop.operator`)."""
    prefix = f"sale{connections}-{uuid.uuid4().hex[:8]}"
    tokens = workdir / f"{prefix}.tokens"
    tokens.write_text("".join(s.customer.token + "\n" for s in shoppers))
    bodies_file = workdir / f"{prefix}.bodies"
    bodies_file.write_text("".join(_json_line(b) for b in bodies))
    initial = asyncio.run(_inventory(shop)) if check else []
    started_at = datetime.now(UTC)
    cold = cold_start() if cold_start else None
    before_storefront, before_payment = scrape(shop.storefront), scrape(shop.payment)
    ready_urls = {"payment": shop.payment, "catalog": shop.catalog, "storefront": shop.storefront}
    with ReadinessWatch(ready_urls) as watch:
        checkout_run = wrk.start(
            shop.storefront + "/api/payments",
            connections=connections,
            seconds=seconds,
            script="checkout",
            params={
                "tokens_file": str(tokens),
                "bodies_file": str(bodies_file),
                "key_prefix": prefix,
                "retry_after": "1" if honour_retry_after else "0",
            },
            timeout_seconds=ANSWER_BOUND_SECONDS,
        )
        browse_run = None
        if browse_connections and browse_rate > 0:
            try:
                browse_run = wrk.start(
                    shop.storefront + BROWSE_PATH,
                    connections=browse_connections,
                    seconds=seconds,
                    params={"rate": f"{browse_rate:g}"},
                    timeout_seconds=ANSWER_BOUND_SECONDS,
                )
            except BaseException:
                checkout_run.stop()
                raise
        try:
            checkout = checkout_run.result()
        finally:
            if browse_run is not None:
                with contextlib.suppress(wrk.WrkError):
                    browse_run.stop()
        browse = browse_run.result() if browse_run else None
        at_end = scrape(shop.payment)
        after_storefront, after_payment = _settled(shop, deadline=time.monotonic() + SETTLE_SECONDS)
        readiness = watch.stop()
    result = BurstResult(
        connections=connections,
        seconds=seconds,
        cold_start_seconds=cold,
        browse_rate=browse_rate if browse else 0.0,
        honour_retry_after=honour_retry_after,
        checkout=checkout,
        browse=browse,
        captured=int(at_end.since(before_payment, "shop_payments_total", status="captured")),
        captured_after=int(after_payment.since(before_payment, "shop_payments_total", status="captured")),
        checkout_statuses=after_storefront.statuses_since(before_storefront, handler=API_HANDLER, method="POST"),
        browse_statuses=after_storefront.statuses_since(before_storefront, handler=API_HANDLER, method="GET"),
        payment_statuses=after_payment.statuses_since(before_payment, handler=PAYMENTS_HANDLER, method="POST"),
        readiness=readiness,
    )
    if check:
        result.invariants, result.payments = verify(shop, prefix, shoppers, bodies, initial, started_at)
    return result


def _json_line(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":")) + "\n"
