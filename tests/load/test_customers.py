"""The drill's paced customers against a shop played by an httpx mock: retries keep their key and honour
Retry-After, patience is bounded, the in-flight bound is reported, several clients share the checkouts."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from shop_load.core.customers import Customer, Shoppers, ShopUnavailable

ITEMS: list[dict[str, Any]] = [{"sku": "KB-ERGO-01", "stock": 500}, {"sku": "MS-VERT-02", "stock": 500}]
PRODUCTS = {"items": ITEMS, "total": 2}

Answer = Callable[[httpx.Request, int], Awaitable[httpx.Response]]


def shop(answer: Answer, seen: list[httpx.Request]) -> httpx.MockTransport:
    tries: dict[str, int] = {}

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.startswith("/api/products"):
            return httpx.Response(200, json=PRODUCTS)
        key = request.headers["Idempotency-Key"]
        tries[key] = tries.get(key, 0) + 1
        return await answer(request, tries[key])

    return httpx.MockTransport(handle)


def shed(retry_after: str = "1") -> httpx.Response:
    return httpx.Response(503, json={"status": 503, "title": "Overloaded"}, headers={"Retry-After": retry_after})


def captured(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": f"p-{request.headers['Idempotency-Key']}", "status": "captured"})


def shoppers(**options: float) -> Shoppers:
    started = time.monotonic()
    customers = Shoppers("http://shop", lambda: time.monotonic() - started, seed=7, **options)  # type: ignore[arg-type]
    customers.customers = [Customer("a@example.com", "token-a")]
    customers.products = list(ITEMS)
    return customers


def test_a_shed_checkout_is_retried_with_its_key_after_retry_after_until_answered() -> None:
    async def answer(request: httpx.Request, attempt: int) -> httpx.Response:
        return shed("1") if attempt <= 2 else captured(request)

    seen: list[httpx.Request] = []
    customers = shoppers(retry_after_cap=0.2, view_product=False)

    async def main() -> float:
        async with httpx.AsyncClient(base_url="http://shop", transport=shop(answer, seen)) as client:
            started = time.monotonic()
            await customers.checkout(client)
            return time.monotonic() - started

    took = asyncio.run(main())
    [checkout] = customers.checkouts
    payments = [r for r in seen if r.method == "POST"]
    assert (checkout.outcome, checkout.attempts, checkout.status) == ("captured", 3, 201)
    assert {r.headers["Idempotency-Key"] for r in payments} == {checkout.key}
    assert [json.loads(r.content) for r in payments] == [checkout.body] * 3
    assert took >= 2 * 0.2, "Retry-After (capped at 0.2 s here) was waited for each time"
    assert checkout.finished is not None
    assert not any(r.url.path.startswith("/api/products/") for r in seen), "no product view: wrk browses"


def test_a_customer_gives_up_after_its_patience() -> None:
    async def answer(request: httpx.Request, attempt: int) -> httpx.Response:
        return shed("0")

    seen: list[httpx.Request] = []
    customers = shoppers(retry_for=0.6)

    async def main() -> None:
        async with httpx.AsyncClient(base_url="http://shop", transport=shop(answer, seen)) as client:
            await customers.checkout(client)

    started = time.monotonic()
    asyncio.run(main())
    [checkout] = customers.checkouts
    assert checkout.outcome == "failed"
    assert 3 <= checkout.attempts <= 6, "backoff 0.2 s doubling: a handful of tries in 0.6 s, not a storm"
    assert time.monotonic() - started < 2


def test_the_in_flight_bound_is_reported_and_the_clients_take_turns() -> None:
    release = asyncio.Event()

    async def answer(request: httpx.Request, attempt: int) -> httpx.Response:
        await release.wait()
        return captured(request)

    seen_a: list[httpx.Request] = []
    seen_b: list[httpx.Request] = []
    customers = shoppers(rate=50, max_in_flight=5, view_product=False)

    async def main() -> None:
        transports = [shop(answer, seen_a), shop(answer, seen_b)]
        clients = [httpx.AsyncClient(base_url="http://shop", transport=t) for t in transports]
        stop = asyncio.Event()
        run = asyncio.create_task(customers.run(clients, stop))
        await asyncio.sleep(0.5)
        stop.set()
        release.set()
        await run
        for client in clients:
            await client.aclose()

    asyncio.run(main())
    posted_a, posted_b = ([r for r in seen if r.method == "POST"] for seen in (seen_a, seen_b))
    assert len(customers.checkouts) == 5 == len(posted_a) + len(posted_b)
    assert (len(posted_a), len(posted_b)) == (3, 2), "new checkouts go to the clients in turn"
    assert 15 <= len(customers.not_started) <= 21, "the other ticks of 0.5 s at 50/s found the bound reached"
    assert all(c.outcome == "captured" for c in customers.checkouts)
    assert customers.late == []


def test_prepared_customers_keep_their_user_id_and_token() -> None:
    users: dict[str, str] = {}

    async def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        if request.url.path == "/api/users":
            users[body["email"]] = f"user-{len(users)}"
            return httpx.Response(201, json={"id": users[body["email"]], "email": body["email"]})
        if request.url.path == "/api/tokens":
            return httpx.Response(200, json={"access_token": "token-of-" + users[body["email"]]})
        return httpx.Response(200, json=PRODUCTS)

    customers = Shoppers("http://shop", time.monotonic)

    async def main() -> None:
        async with httpx.AsyncClient(base_url="http://shop", transport=httpx.MockTransport(handle)) as client:
            await customers.prepare(client, 3)

    asyncio.run(main())
    assert sorted(c.user_id for c in customers.customers) == ["user-0", "user-1", "user-2"]
    assert all(c.token == "token-of-" + c.user_id and users[c.email] == c.user_id for c in customers.customers)
    assert customers.products == ITEMS


def prepare_one(shed_registrations: int, tries: list[str]) -> Shoppers:
    """`prepare` of one customer against a shop whose first `shed_registrations` registrations answer 503 with
    Retry-After; `tries` gets the email of each registration sent."""

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/users":
            tries.append(json.loads(request.content)["email"])
            return shed("0") if len(tries) <= shed_registrations else httpx.Response(201, json={"id": "user-0"})
        if request.url.path == "/api/tokens":
            return httpx.Response(200, json={"access_token": "token"})
        return httpx.Response(200, json=PRODUCTS)

    async def main() -> None:
        async with httpx.AsyncClient(base_url="http://shop", transport=httpx.MockTransport(handle)) as client:
            await customers.prepare(client, 1)

    customers = Shoppers("http://shop", time.monotonic)
    asyncio.run(main())
    return customers


def test_preparing_retries_a_registration_the_shop_answered_503_with_retry_after() -> None:
    """A restarted database leaves each pool a dead connection whose first statement answers 503 with Retry-After
    (a second drill in a row against the shop in containers met it): prepare sends the same registration again."""
    tries: list[str] = []
    customers = prepare_one(1, tries)
    assert [c.user_id for c in customers.customers] == ["user-0"]
    assert len(tries) == 2
    assert len(set(tries)) == 1, "the same customer, registered again"
    tries.clear()
    with pytest.raises(ShopUnavailable, match="answered 503"):
        prepare_one(3, tries)
    assert len(tries) == 3, "a few tries, then it gives up"
