"""shopkit's response cache, inside a real shopkit app: what is stored, when it stops being served, and that a hit
is still counted and keeps its headers."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query, Response
from prometheus_client import REGISTRY
from starlette.middleware import Middleware

from shopkit import CachedResponse, ResponseCache, ResponseCacheMiddleware, ServiceSettings, create_app
from tests.conftest import client_for, running


@dataclass
class Route:
    """What the route behind the cache does, and how often it ran."""

    calls: int = 0
    status: int = 200
    cache_control: str = "public, max-age=1"
    delay: float = 0.0
    during: list[ResponseCache] = field(default_factory=list)
    """Caches to invalidate while the answer is being built (a change that happens during the build)."""


def build(cache: ResponseCache, route: Route) -> FastAPI:
    router = APIRouter()

    @router.get("/items")
    async def items(response: Response, limit: Annotated[int, Query(ge=1, le=10)] = 5) -> dict[str, int]:
        route.calls += 1
        if route.delay:
            await asyncio.sleep(route.delay)
        for changed in route.during:
            changed.invalidate()
        response.status_code = route.status
        response.headers["Cache-Control"] = route.cache_control
        return {"limit": limit, "call": route.calls}

    @router.get("/other")
    async def other() -> dict[str, int]:
        route.calls += 1
        return {"call": route.calls}

    middleware = [Middleware(ResponseCacheMiddleware, cache=cache, paths={"/items"})]
    return create_app(ServiceSettings(), title="cached", routers=[router], middleware=middleware)


@pytest.fixture
def route() -> Route:
    return Route()


@pytest.fixture
def cache() -> ResponseCache:
    return ResponseCache(max_age=60)


@pytest.fixture
async def client(cache: ResponseCache, route: Route) -> AsyncIterator[httpx.AsyncClient]:
    app = build(cache, route)
    async with running(app), client_for(app, "cached") as opened:
        yield opened


def requests_counted() -> float:
    labels = {"handler": "/items", "method": "GET", "status": "200"}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_a_hit_is_the_stored_answer_with_its_headers_and_is_still_counted(
    client: httpx.AsyncClient, route: Route
) -> None:
    first = await client.get("/items?limit=3")
    counted = requests_counted()
    second = await client.get("/items?limit=3")

    assert route.calls == 1
    assert second.status_code == 200
    assert second.content == first.content == b'{"limit":3,"call":1}'
    for header in ("content-type", "content-length", "cache-control"):
        assert second.headers[header] == first.headers[header]
    assert second.headers["x-request-id"] != first.headers["x-request-id"]  # the outer middleware still runs
    assert "age" not in second.headers
    assert requests_counted() == counted + 1


async def test_the_key_is_path_and_raw_query(client: httpx.AsyncClient, route: Route) -> None:
    await client.get("/items?limit=3")
    await client.get("/items?limit=4")
    await client.get("/items?limit=3&x=1")
    await client.get("/items?limit=3")
    await client.get("/other")
    await client.get("/other")
    assert route.calls == 5


async def test_invalidate_makes_the_next_read_run_the_route(
    client: httpx.AsyncClient, cache: ResponseCache, route: Route
) -> None:
    await client.get("/items")
    cache.invalidate()
    assert len(cache) == 0
    assert (await client.get("/items")).json()["call"] == 2
    assert (await client.get("/items")).json()["call"] == 2


async def test_an_answer_built_while_the_version_changed_is_not_stored(
    client: httpx.AsyncClient, cache: ResponseCache, route: Route
) -> None:
    route.during = [cache]
    assert (await client.get("/items")).status_code == 200
    route.during = []
    assert (await client.get("/items")).json()["call"] == 2
    assert (await client.get("/items")).json()["call"] == 2


async def test_entries_expire_after_max_age(cache: ResponseCache, route: Route) -> None:
    cache.max_age = 0.2
    app = build(cache, route)
    async with running(app), client_for(app, "cached") as client:
        await client.get("/items")
        await client.get("/items")
        assert route.calls == 1
        await asyncio.sleep(0.25)
        await client.get("/items")
        assert route.calls == 2


async def test_no_cache_from_the_client_goes_to_the_route_and_refreshes_the_entry(
    client: httpx.AsyncClient, route: Route
) -> None:
    await client.get("/items")
    for directive in ("no-cache", "max-age=0, no-cache", "no-store"):
        response = await client.get("/items", headers={"Cache-Control": directive})
        assert response.json()["call"] == route.calls
    assert route.calls == 4
    assert (await client.get("/items")).json()["call"] == 4


@pytest.mark.parametrize("status", [201, 404, 500, 503])
async def test_answers_other_than_200_are_not_stored(client: httpx.AsyncClient, route: Route, status: int) -> None:
    route.status = status
    for _ in range(2):
        assert (await client.get("/items")).status_code == status
    assert route.calls == 2


async def test_an_invalid_query_is_answered_by_the_route_every_time(
    client: httpx.AsyncClient, cache: ResponseCache
) -> None:
    for _ in range(2):
        response = await client.get("/items?limit=0")
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    assert len(cache) == 0


@pytest.mark.parametrize("cache_control", ["no-store", "private, max-age=60", "no-cache"])
async def test_an_answer_that_forbids_storing_is_not_stored(
    client: httpx.AsyncClient, route: Route, cache_control: str
) -> None:
    route.cache_control = cache_control
    await client.get("/items")
    await client.get("/items")
    assert route.calls == 2


async def test_a_suspended_cache_serves_and_stores_nothing(
    client: httpx.AsyncClient, cache: ResponseCache, route: Route
) -> None:
    await client.get("/items")
    cache.suspend()
    await client.get("/items")
    await client.get("/items")
    assert route.calls == 3
    assert len(cache) == 0
    cache.resume()
    await client.get("/items")
    await client.get("/items")
    assert route.calls == 4


async def test_concurrent_misses_of_one_key_run_the_route_once(client: httpx.AsyncClient, route: Route) -> None:
    route.delay = 0.1
    answers = await asyncio.gather(*(client.get("/items") for _ in range(10)))
    assert {answer.status_code for answer in answers} == {200}
    assert {answer.content for answer in answers} == {b'{"limit":5,"call":1}'}
    assert route.calls == 1


async def test_waiters_run_the_route_themselves_when_the_first_answer_cannot_be_stored(
    client: httpx.AsyncClient, route: Route
) -> None:
    route.delay, route.status = 0.1, 503
    answers = await asyncio.gather(*(client.get("/items") for _ in range(3)))
    assert {answer.status_code for answer in answers} == {503}
    assert route.calls == 3


async def test_following_the_answers_max_age_bounds_the_lifetime_and_adds_age(route: Route) -> None:
    cache = ResponseCache(max_age=60, follow_max_age=True)
    app = build(cache, route)
    async with running(app), client_for(app, "cached") as client:
        route.cache_control = "public, max-age=1"
        await client.get("/items")
        hit = await client.get("/items")
        assert route.calls == 1
        assert hit.headers["age"] == "0"
        await asyncio.sleep(1.05)
        await client.get("/items")
        assert route.calls == 2

        route.cache_control = "public"  # no max-age: a shared cache keeps nothing
        await client.get("/items?limit=2")
        await client.get("/items?limit=2")
        assert route.calls == 4


def test_the_oldest_entries_make_room_within_max_bytes() -> None:
    cache = ResponseCache(max_age=60, max_bytes=250)
    for n in range(4):
        entry = CachedResponse(headers=(), body=bytes(100), stored_at=0, expires_at=100)
        assert cache.store(("/items", b"n=%d" % n), entry, cache.version)
    assert len(cache) == 2
    assert cache.get(("/items", b"n=0"), 1) is None
    assert cache.get(("/items", b"n=3"), 1) is not None
    assert not cache.store(("/items", b"big"), CachedResponse((), bytes(300), 0, 100), cache.version)


async def test_the_handler_label_is_the_route_template_on_hits_and_misses_alike(client: httpx.AsyncClient) -> None:
    def counted(handler: str, status: str) -> float:
        labels = {"handler": handler, "method": "GET", "status": status}
        return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0

    before = {key: counted(*key) for key in [("/items", "200"), ("/items", "422"), ("none", "404")]}
    for path in ("/items", "/items", "/items?limit=0", "/nothing-here", "/nothing-here"):
        await client.get(path)
    assert counted("/items", "200") == before["/items", "200"] + 2
    assert counted("/items", "422") == before["/items", "422"] + 1
    assert counted("none", "404") == before["none", "404"] + 2
