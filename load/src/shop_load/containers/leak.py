"""The container proof's leak: the stock raised for the run through the storefront's `/ops/restock` as the
operator, the drill's paced customers through storefront, a leak in one payment container after the warm-up, its
timeline from the engine's events and the probes, a further fault once it recovered, and the checks after (the
restock, the drill's invariants and the provider's books).
"""

import argparse
import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import httpx
import psycopg

from shop_devtools.chaos import Chaos, over_http
from shop_load.containers.shop import Shop
from shop_load.core import stock
from shop_load.core.customers import Shoppers
from shop_load.core.ops import Operator
from shop_load.core.records import FINAL_OUTCOMES
from shop_load.invariants.ledger import Ledger, verify

"""A checkout's final answers; `failed` (gave up) and `rejected` are not."""


@dataclass
class Timeline:
    injected: float | None = None
    liveness_failed: float | None = None
    unhealthy: float | None = None
    oom_killed: float | None = None
    died: float | None = None
    restarted: float | None = None
    ready_again: float | None = None
    restart_count: int = 0
    oom_killed_state: bool = False
    exit_code: int | None = None

    def relative(self) -> dict[str, float | None]:
        base = self.injected
        times = {k: v for k, v in asdict(self).items() if k not in {"restart_count", "oom_killed_state", "exit_code"}}
        return {k: None if v is None or base is None else round(v - base, 2) for k, v in times.items()}


def record_event(timeline: Timeline, at: float, action: str) -> None:
    """One `docker events` action of the leaking container onto the timeline (oom, die, start, health status)."""
    if timeline.injected is None or at < timeline.injected:
        return
    if action == "oom" and timeline.oom_killed is None:
        timeline.oom_killed = at
    elif action == "die" and timeline.died is None:
        timeline.died = at
    elif action == "start" and timeline.restarted is None:
        timeline.restarted = at
    elif action == "health_status: unhealthy" and timeline.unhealthy is None:
        timeline.unhealthy = at


@dataclass
class Traffic:
    """What the paced customers did (the drill's own `Shoppers`), and the ledger the invariants are checked from."""

    shoppers: Shoppers
    ledger: Ledger
    problems: list[str] = field(default_factory=list)
    """What went wrong before the customers came (the restock)."""


async def restock(client: httpx.AsyncClient, operator: Operator, level: int) -> list[str]:
    """Every product to at least `level` through `POST /ops/restock`; the problems seen (none when the inventory it
    answers shows every product at `level` or more)."""
    try:
        restocked = await operator.restock(client, level)
    except httpx.HTTPError as exc:
        return [f"restock: {exc}"]
    short = [str(row["sku"]) for row in restocked.inventory if int(row["stock"]) < level]
    print(f"e2e    | restocked through /ops/restock: {len(restocked.raised)} products raised to {level}", flush=True)
    return [f"restock: {', '.join(short)} still below {level} units"] if short else []


Then = Callable[[Callable[[], float]], Awaitable[None]]
"""A further fault, run with the customers' clock once the leak has recovered, while they go on checking out."""


async def scenario(shop: Shop, args: argparse.Namespace, timeline: Timeline, then: Then | None = None) -> Traffic:
    """The drill's paced customers through storefront; the leak after the warm-up; after recovery + cool-down,
    `then` and another cool-down; stop."""
    base, victim = shop.url("storefront"), shop.url("payment-a")
    started = time.monotonic()
    shoppers = Shoppers(base, clock=lambda: time.monotonic() - started, rate=args.rate, retry_for=args.patience)
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        products = await shop.operator.inventory(client)
        level = math.ceil(stock.units_needed(args.rate, args.max_seconds) / max(1, len(products)))  # for the run
        problems = await restock(client, shop.operator, level)
        await shoppers.prepare(client, 12)
        ledger = Ledger(
            base_url=base,
            started_at=datetime.now(UTC).isoformat(),
            reservation_ttl_seconds=300,
            customers=shoppers.customers,
            checkouts=shoppers.checkouts,
            initial_inventory=await shop.operator.inventory(client),
        )
        traffic = asyncio.create_task(shoppers.run(client, stop))
        traffic_started, reported = time.monotonic(), 0.0  # the warm-up counts from the first checkout
        while True:
            elapsed = time.monotonic() - traffic_started
            if timeline.injected is None and elapsed >= args.warmup:
                await Chaos(over_http(client, victim), shop.chaos_token, victim).leak(args.leak_mb_per_second)
                timeline.injected = time.time()
                print(f"e2e    | leak injected into payment-a at {args.leak_mb_per_second} MB/s", flush=True)
            try:
                healthz = (await client.get(victim + "/healthz", timeout=1)).status_code
                ready = (await client.get(victim + "/ready", timeout=1)).status_code
            except httpx.HTTPError:
                healthz = ready = 0
            if timeline.injected and timeline.liveness_failed is None and healthz == 503:
                timeline.liveness_failed = time.time()
            if timeline.restarted and timeline.ready_again is None and ready == 200:
                timeline.ready_again = time.time()
            if time.time() - (timeline.ready_again or float("inf")) >= args.cooldown or elapsed >= args.max_seconds:
                break
            if elapsed - reported >= 5:
                reported = elapsed
                answered = sum(1 for c in shoppers.checkouts if c.outcome in FINAL_OUTCOMES)
                print(f"e2e    | {elapsed:5.1f}s  checkouts {len(shoppers.checkouts)}  answered {answered}", flush=True)
            await asyncio.sleep(0.25)
        if then is not None and timeline.ready_again is not None:
            await then(shoppers.clock)
            await asyncio.sleep(args.cooldown)
        stop.set()
        await traffic
    return Traffic(shoppers, ledger, problems)


def check_provider_books(database_url: str) -> list[str]:
    """Below the API: no payment left pending, and the provider charged each payment once, as it was recorded."""
    problems = []
    with psycopg.connect(database_url) as conn:
        deadline = time.monotonic() + 20
        while conn.execute("SELECT count(*) FROM payments WHERE status = 'pending'").fetchone() != (0,):
            if time.monotonic() > deadline:
                problems.append("payments still pending 20 s after the run")
                break
            time.sleep(0.5)
        rows = conn.execute(
            "SELECT p.id::text, p.status, c.outcome, p.amount_cents = c.amount_cents"
            " FROM payments p LEFT JOIN provider_charges c ON c.payment_id = p.id"
        ).fetchall()
    for payment_id, status, outcome, same_amount in rows:
        if (status, outcome) not in {("captured", "approved"), ("declined", "declined")} or not same_amount:
            problems.append(f"payment {payment_id} is {status} but the provider says {outcome}")
    return problems


def check_invariants(shop: Shop, traffic: Traffic) -> list[str]:
    """The restock, the drill's invariants against the API, and the provider's books in the database."""
    problems = traffic.problems + check_provider_books(shop.database_urls["payment"])
    for result in asyncio.run(verify(traffic.ledger, shop.operator)):
        problems += [f"{result.name}: {problem}" for problem in result.problems]
    return problems
