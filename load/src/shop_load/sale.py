"""The sale (SPEC §8): a cold start, then at once a burst of concurrent checkouts through the storefront, with
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

Then the drill's invariants (`shop_load.invariants`) on this burst's payments, read from payment's database by
their key prefix and checked through the public API as the drill checks its own: every payment is found with its
status, its key sent again gives the same payment, each customer's list holds exactly their keys' payments, and
stock + held + sold is conserved; plus one more from the database: the provider charged every captured payment
once, with its amount, and no payment that was not captured.
"""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from shop_load import invariants, wrk
from shop_load.customers import Customer
from shop_load.records import Checkout, InvariantResult
from shop_load.sale_readiness import ProbeCount, ReadinessWatch
from shop_load.scrape import Scrape, scrape

API_HANDLER = "/api/{path:path}"
"""Storefront's one gateway route: checkouts are its POSTs, browsing its GETs."""
PAYMENTS_HANDLER = "/payments"
BROWSE_PATH = "/api/products?limit=20"
ANSWER_BOUND_SECONDS = 10.0
"""No answer of the sale may take longer (issue 9, acceptance 1): wrk counts later ones as timeouts."""
SETTLE_SECONDS = 20.0
VERIFY_SETTLE_SECONDS = 10.0
"""How long the invariants finish pending payments (a lease is 5 s) and wait for held stock to come back."""
RESERVATION_TTL_SECONDS = 300.0
"""catalog's default hold (CATALOG_RESERVATION_TTL_SECONDS)."""

CHARGES_DESCRIPTION = "the provider charged every captured payment once with its amount, and nothing else"


@dataclass
class SaleShop:
    storefront: str
    payment: str
    catalog: str
    payment_database_url: str


@dataclass
class Shopper:
    customer: Customer
    user_id: str


@dataclass
class BurstResult:
    connections: int
    seconds: float
    cold_start_seconds: float | None
    """From the services' start to all of them ready; None: the shop was already running (not a cold start)."""
    browse_rate: float
    honour_retry_after: bool
    """After a 503 with Retry-After, a connection waited that long (at most 5 s) before its next checkout."""
    checkout: wrk.WrkResult
    browse: wrk.WrkResult | None
    captured: int
    """payment's captured payments during the burst (to the end of wrk's run)."""
    captured_after: int
    """... and until the shop had answered everything."""
    checkout_statuses: dict[int, int]
    browse_statuses: dict[int, int]
    payment_statuses: dict[int, int]
    readiness: dict[str, ProbeCount]
    payments: dict[str, int] = field(default_factory=dict)
    """This burst's payments in the database, by status, after the invariants finished every pending one."""
    invariants: list[InvariantResult] = field(default_factory=list)

    @property
    def captured_per_second(self) -> float:
        return self.captured / self.checkout.seconds if self.checkout.seconds else 0.0

    @property
    def server_errors_but_503(self) -> dict[int, int]:
        return {s: n for s, n in self.checkout_statuses.items() if s >= 500 and s != 503}

    def as_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "seconds": self.seconds,
            "cold_start_seconds": self.cold_start_seconds,
            "browse_rate": self.browse_rate,
            "honour_retry_after": self.honour_retry_after,
            "captured": self.captured,
            "captured_per_second": self.captured_per_second,
            "captured_after": self.captured_after,
            "checkout_statuses": {str(s): n for s, n in self.checkout_statuses.items()},
            "browse_statuses": {str(s): n for s, n in self.browse_statuses.items()},
            "payment_statuses": {str(s): n for s, n in self.payment_statuses.items()},
            "statuses_from": "storefront's and payment's own /metrics (http_requests_total)",
            "checkout": self.checkout.as_json(),
            "browse": self.browse.as_json() if self.browse else None,
            "readiness": {name: {**vars(count), "flips": count.flips} for name, count in self.readiness.items()},
            "payments": self.payments,
            "invariants": [asdict(result) for result in self.invariants],
        }


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


def _key_body(key: str, bodies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    index = int(key.rsplit("-b", 1)[1])
    return dict(bodies[index])


def _payments(database_url: str, prefix: str) -> list[tuple[str, str, str, str]]:
    """(payment id, user id, key, status) of every payment whose key starts with `prefix`."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id::text, user_id::text, idempotency_key, status FROM payments WHERE idempotency_key LIKE %s",
            (prefix + "-%",),
        ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def check_charges(database_url: str, prefix: str) -> InvariantResult:
    """From payment's database: each captured payment of the burst has one approved charge of its amount; no
    approved charge belongs to a payment that is not captured."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT p.id::text, p.status, p.amount_cents, c.outcome, c.amount_cents"
            " FROM payments p LEFT JOIN provider_charges c ON c.payment_id = p.id"
            " WHERE p.idempotency_key LIKE %s",
            (prefix + "-%",),
        ).fetchall()
    problems = []
    captured = 0
    for payment_id, status, amount, outcome, charged in rows:
        if status == "captured":
            captured += 1
            if outcome != "approved" or charged != amount:
                problems.append(f"captured payment {payment_id} ({amount} cents) has charge {outcome} {charged}")
        elif outcome == "approved":
            problems.append(f"payment {payment_id} is {status} but the provider charged {charged} cents")
    name = "provider_charges_match"
    if problems:
        return InvariantResult(
            name, CHARGES_DESCRIPTION, False, f"{len(problems)} violation(s): {problems[0]}", problems[:20]
        )
    return InvariantResult(name, CHARGES_DESCRIPTION, True, f"{captured} captured payments, one approved charge each")


def verify(
    shop: SaleShop,
    prefix: str,
    shoppers: Sequence[Shopper],
    bodies: Sequence[Mapping[str, Any]],
    initial_inventory: list[dict[str, Any]],
    started_at: datetime,
) -> tuple[list[InvariantResult], dict[str, int]]:
    """The drill's invariants on the burst's payments (found in the database by key), then the provider's books."""
    index_of = {shopper.user_id: i for i, shopper in enumerate(shoppers)}
    checkouts = []
    for payment_id, user_id, key, status in _payments(shop.payment_database_url, prefix):
        answered = invariants.ANSWERED.get(status)
        checkouts.append(
            Checkout(
                key,
                index_of[user_id],
                _key_body(key, bodies),
                0.0,
                outcome=status if answered else "pending",
                status=answered,
                payment_id=payment_id,
            )
        )
    ledger = invariants.Ledger(
        shop.storefront,
        started_at.isoformat(),
        RESERVATION_TTL_SECONDS,
        customers=[shopper.customer for shopper in shoppers],
        checkouts=checkouts,
        initial_inventory=initial_inventory,
    )
    results = asyncio.run(invariants.verify(ledger, settle_seconds=VERIFY_SETTLE_SECONDS))
    results.append(check_charges(shop.payment_database_url, prefix))
    statuses: dict[str, int] = {}
    for _, _, _, status in _payments(shop.payment_database_url, prefix):
        statuses[status] = statuses.get(status, 0) + 1
    return results, statuses


async def _inventory(storefront: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=storefront, timeout=10) as client:
        return await invariants.inventory(client)


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
    `connections` concurrent checkouts and the browsing for `seconds`; then its invariants unless `check` is off."""
    prefix = f"sale{connections}-{uuid.uuid4().hex[:8]}"
    tokens = workdir / f"{prefix}.tokens"
    tokens.write_text("".join(s.customer.token + "\n" for s in shoppers))
    bodies_file = workdir / f"{prefix}.bodies"
    bodies_file.write_text("".join(_json_line(b) for b in bodies))
    initial = asyncio.run(_inventory(shop.storefront))
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
