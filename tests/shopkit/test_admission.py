"""Admission control and deadlines: a service sheds what it cannot take at once, never holds a request past its
deadline, passes what is left of it downstream, and keeps answering its probes while busy."""

import asyncio
import time
from collections.abc import Mapping

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.types import Message

from shop_devtools.processes import free_port
from shop_payment.main import create_app as create_payment
from shop_payment.settings import PaymentSettings
from shopkit import ServiceSettings, SessionDep, create_app, create_client, send_with_retries, state_of
from shopkit import http as shopkit_http
from shopkit.http import MAX_RETRY_AFTER_SECONDS, BulkheadFull
from shopkit.server import KEEP_ALIVE_SECONDS
from tests.conftest import client_for, running

PROBLEM_BASE = "https://resilient-shop.dev/problems/"


def slow_app(release: asyncio.Event, **settings: object) -> FastAPI:
    router = APIRouter()

    @router.get("/slow")
    async def slow() -> dict[str, str]:
        await release.wait()
        return {"status": "done"}

    return create_app(ServiceSettings(**settings), title="slow", routers=[router])  # type: ignore[arg-type]


async def test_a_full_service_sheds_at_once_with_retry_after_and_keeps_its_probes() -> None:
    release = asyncio.Event()
    app = slow_app(release, max_in_flight=2)
    async with running(app), client_for(app, "slow") as client:
        admitted = [asyncio.create_task(client.get("/slow")) for _ in range(2)]
        await asyncio.sleep(0.05)

        started = time.monotonic()
        shed = await client.get("/slow")
        assert time.monotonic() - started < 0.5
        assert shed.status_code == 503
        assert shed.headers["content-type"] == "application/problem+json"
        assert shed.headers["retry-after"] == "1"
        assert shed.json()["type"] == PROBLEM_BASE + "overloaded"
        for probe in ("/healthz", "/ready", "/metrics"):
            assert (await client.get(probe)).status_code == 200, probe
        assert 'shop_requests_shed_total{reason="overloaded"}' in (await client.get("/metrics")).text

        release.set()
        assert [r.status_code for r in await asyncio.gather(*admitted)] == [200, 200]
        assert (await client.get("/slow")).status_code == 200  # the slots are free again


@pytest.mark.parametrize(
    ("own_timeout", "header", "expected"),
    [(0.3, None, 0.3), (5.0, "200", 0.2), (0.3, "60000", 0.3)],
    ids=["own deadline", "the caller's shorter budget", "a caller cannot lengthen it"],
)
async def test_a_request_is_answered_503_at_its_deadline(
    own_timeout: float, header: str | None, expected: float
) -> None:
    app = slow_app(asyncio.Event(), request_timeout_seconds=own_timeout)
    headers = {"X-Request-Timeout-Ms": header} if header else {}
    async with running(app), client_for(app, "slow") as client:
        started = time.monotonic()
        response = await client.get("/slow", headers=headers)
        took = time.monotonic() - started

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == PROBLEM_BASE + "deadline-exceeded"
    assert expected <= took < expected + 0.3


def echo_budget_app() -> FastAPI:
    echo = FastAPI()

    @echo.get("/echo")
    async def budget(request: Request) -> Mapping[str, str | None]:
        return {"budget_ms": request.headers.get("x-request-timeout-ms")}

    @echo.get("/shed")
    async def shed() -> JSONResponse:
        return JSONResponse({"status": 503}, status_code=503, headers={"Retry-After": "1"})

    return echo


def calling_app(**settings: object) -> FastAPI:
    router = APIRouter()

    @router.get("/call/{path}")
    async def call(path: str, request: Request) -> JSONResponse:
        upstream = state_of(request).upstreams["echo"]
        response = await send_with_retries(upstream, upstream.build_request("GET", f"/{path}"))
        return JSONResponse(response.json(), status_code=response.status_code)

    return create_app(
        ServiceSettings(**settings),  # type: ignore[arg-type]
        title="caller",
        routers=[router],
        upstreams={"echo": "http://echo"},
        transports={"echo": httpx.ASGITransport(app=echo_budget_app())},
    )


async def test_calls_downstream_carry_what_is_left_of_the_deadline() -> None:
    app = calling_app(request_timeout_seconds=3.0)
    async with running(app), client_for(app, "caller") as client:
        own = (await client.get("/call/echo")).json()["budget_ms"]
        given = (await client.get("/call/echo", headers={"X-Request-Timeout-Ms": "1000"})).json()["budget_ms"]

    assert 2500 <= int(own) <= 2750  # 3 s less the margin kept for the answer to travel back
    assert 500 <= int(given) <= 750


async def test_a_shedding_upstream_is_not_retried_and_its_retry_after_is_passed_on() -> None:
    app = calling_app()
    calls: list[httpx.Request] = []
    async with running(app), client_for(app, "caller") as client:

        async def record(request: httpx.Request) -> None:
            calls.append(request)

        state_of(app).upstreams["echo"].event_hooks["request"].append(record)
        response = await client.get("/call/shed")

    assert response.status_code == 503
    assert len(calls) == 1


async def test_readiness_does_not_wait_behind_a_busy_pool(database_urls: Mapping[str, str]) -> None:
    """Every pooled connection checked out (the state of a service under a burst): still ready."""
    app = create_payment(PaymentSettings(database_url=database_urls["payment"], db_pool_size=1))
    async with running(app), client_for(app, "payment") as client:
        assert (await client.get("/ready")).status_code == 200
        held = [await state_of(app).database.engine.connect()]  # DB_POOL_SIZE=1: every pooled connection
        try:
            started = time.monotonic()
            ready = await client.get("/ready")
            assert time.monotonic() - started < 1
            assert ready.status_code == 200, ready.text
        finally:
            for connection in held:
                await connection.close()


async def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after() -> None:
    router = APIRouter()

    @router.get("/count")
    async def count(session: SessionDep) -> int:
        return int(await session.scalar(text("SELECT 1")) or 0)

    nobody_listens = f"postgresql://shop:shop@127.0.0.1:{free_port()}/shop"
    app = create_app(ServiceSettings(database_url=nobody_listens), title="dbless", routers=[router])
    async with running(app), client_for(app, "dbless") as client:
        response = await client.get("/count")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == PROBLEM_BASE + "database-unavailable"
    assert "127.0.0.1" not in response.text


async def test_a_client_that_leaves_while_sending_its_body_is_a_499_not_a_500() -> None:
    router = APIRouter()

    @router.post("/upload")
    async def upload(request: Request) -> int:
        return len(await request.body())

    app = create_app(ServiceSettings(), title="upload", routers=[router])
    sent: list[Message] = []
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"items": [', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:  # as uvicorn: once the client is gone, every receive says so
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/upload",
        "raw_path": b"/upload",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "app": app,
    }
    async with running(app):
        await app(scope, receive, send)
        metrics = (await client_for(app, "upload").get("/metrics")).text

    assert sent[0]["status"] == 499
    assert 'http_requests_total{handler="/upload",method="POST",status="499"} 1.0' in metrics
    assert 'http_requests_total{handler="/upload",method="POST",status="500"}' not in metrics


async def test_a_bulkhead_bounds_the_calls_to_one_service_and_frees_a_slot_per_answer_read() -> None:
    release = asyncio.Event()
    upstream = FastAPI()

    @upstream.get("/slow")
    async def slow() -> dict[str, str]:
        await release.wait()
        return {"status": "done"}

    async with create_client(
        "http://upstream", timeout=5, transport=httpx.ASGITransport(app=upstream), max_connections=2, pool_timeout=0.2
    ) as client:
        busy = [asyncio.create_task(client.get("/slow")) for _ in range(2)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(httpx.PoolTimeout):
            await client.get("/slow")
        assert 0.2 <= time.monotonic() - started < 0.5

        release.set()
        assert [r.status_code for r in await asyncio.gather(*busy)] == [200, 200]
        answers = await asyncio.gather(*(client.get("/slow") for _ in range(6)))  # slots came back
        assert [r.status_code for r in answers] == [200] * 6


async def test_a_full_bulkhead_says_to_come_back_later_the_longer_the_queue_ahead() -> None:
    """Retry-After from the queue and the rate slots came free: the first of many refused waits longest, the last
    one 1 s; never longer than a kept-alive connection stays open while the client waits."""
    release = asyncio.Event()
    upstream = FastAPI()

    @upstream.get("/quick")
    async def quick() -> dict[str, str]:
        return {"status": "done"}

    @upstream.get("/slow")
    async def slow() -> dict[str, str]:
        await release.wait()
        return {"status": "done"}

    async def refused_after(client: httpx.AsyncClient) -> int:
        with pytest.raises(BulkheadFull) as refused:
            await client.get("/slow")
        return refused.value.retry_after

    async with create_client(
        "http://upstream", timeout=5, transport=httpx.ASGITransport(app=upstream), max_connections=1, pool_timeout=0.3
    ) as client:
        for _ in range(2):  # two slots came free in the last 2 s: 1 per second
            assert (await client.get("/quick")).status_code == 200
        held = asyncio.create_task(client.get("/slow"))
        await asyncio.sleep(0.05)
        waits = await asyncio.gather(*(refused_after(client) for _ in range(7)))
        release.set()
        assert (await held).status_code == 200

    assert waits == sorted(waits, reverse=True), "each refused later had fewer ahead of it"
    assert waits[0] == MAX_RETRY_AFTER_SECONDS < KEEP_ALIVE_SECONDS
    assert waits[-1] == 1


async def test_a_bulkhead_remembers_only_the_last_window_of_freed_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate behind Retry-After is over a short window; what fell out of it is dropped as answers come, not only
    when a request is refused, so a process that never refuses does not keep a timestamp per answer forever."""
    monkeypatch.setattr(shopkit_http, "FREED_WINDOW_SECONDS", 0.05)
    upstream = FastAPI()

    @upstream.get("/quick")
    async def quick() -> dict[str, str]:
        return {"status": "done"}

    async with create_client("http://upstream", timeout=5, transport=httpx.ASGITransport(app=upstream)) as client:
        for _ in range(20):
            assert (await client.get("/quick")).status_code == 200
        await asyncio.sleep(0.1)
        assert (await client.get("/quick")).status_code == 200
        bulkhead = client._transport
        assert isinstance(bulkhead, shopkit_http.BulkheadTransport)
        assert len(bulkhead._freed) == 1
