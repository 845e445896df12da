"""shop_devtools.chaos, the one client of the chaos API (make run's drill, the container proof, `make leak` and the
drill on a cluster), against shopkit's own chaos router in process: the requests it sends are the ones shopkit
takes, and each refusal becomes a `ChaosRefused` that says what to do."""

import asyncio

import httpx
import pytest

from shop_devtools.chaos import Chaos, ChaosRefused, leak_body, over_http
from shopkit import ServiceSettings, create_app
from tests.conftest import client_for, running

CHAOS_TOKEN = "devtools-chaos-token-0123456789"
URL = "http://payment"


def enabled() -> ServiceSettings:
    return ServiceSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN)


async def test_a_leak_is_injected_shown_and_cleared() -> None:
    app = create_app(enabled(), title="payment", routers=[])
    async with running(app), client_for(app, "payment") as client:
        chaos = Chaos(over_http(client, URL), CHAOS_TOKEN, URL)
        assert (await chaos.status())["leak"]["active"] is False
        assert await chaos.leak(100, max_mb=40) == "POST /chaos/leak {'mb_per_second': 100.0, 'max_mb': 40}"
        shown = await chaos.status()
        assert shown["leak"] == {"active": True, "mb_per_second": 100.0, "max_mb": 40}
        async with asyncio.timeout(5):
            while not (await chaos.status())["leaked_bytes"]:
                await asyncio.sleep(0.02)
        await chaos.clear()
        assert await chaos.status() == {
            "leak": {"active": False, "mb_per_second": 0.0, "max_mb": None},
            "leaked_bytes": 0,
            "forced_unready": False,
        }


async def test_the_other_faults_and_their_bodies_are_what_shopkit_takes() -> None:
    app = create_app(enabled(), title="payment", routers=[])
    async with running(app), client_for(app, "payment") as client:
        chaos = Chaos(over_http(client, URL), CHAOS_TOKEN, URL)
        assert await chaos.inject("unready") == "POST /chaos/unready"
        assert (await chaos.status())["forced_unready"] is True
        await chaos.clear()
        assert (await chaos.status())["forced_unready"] is False
        assert await chaos.inject("leak", leak_body(8)) == "POST /chaos/leak {'mb_per_second': 8.0}"
        await chaos.clear()


def test_a_leak_without_a_cap_sends_none() -> None:
    assert leak_body(3) == {"mb_per_second": 3.0}
    assert leak_body(40, 512) == {"mb_per_second": 40.0, "max_mb": 512}


async def test_a_wrong_or_missing_token_is_refused_with_what_to_do() -> None:
    app = create_app(enabled(), title="payment", routers=[])
    async with running(app), client_for(app, "payment") as client:
        for token in ("wrong", ""):
            chaos = Chaos(over_http(client, URL), token, URL)
            with pytest.raises(ChaosRefused, match=r"http://payment refused the chaos token \(40[13]\): pass the"):
                await chaos.leak(3)


async def test_chaos_disabled_is_refused_with_what_to_do() -> None:
    app = create_app(ServiceSettings(), title="payment", routers=[])
    async with running(app), client_for(app, "payment") as client:
        chaos = Chaos(over_http(client, URL), CHAOS_TOKEN, URL)
        with pytest.raises(ChaosRefused, match=r"chaos is disabled at http://payment \(GET /chaos answered 404\): "):
            await chaos.status()


async def test_a_bad_body_is_refused_with_the_answer() -> None:
    app = create_app(enabled(), title="payment", routers=[])
    async with running(app), client_for(app, "payment") as client:
        chaos = Chaos(over_http(client, URL), CHAOS_TOKEN, URL)
        with pytest.raises(ChaosRefused, match=r"POST /chaos/hang at http://payment answered 422: .*seconds"):
            await chaos.inject("hang", {"seconds": 0})


async def test_nothing_answering_is_refused() -> None:
    async with httpx.AsyncClient() as client:
        chaos = Chaos(over_http(client, "http://127.0.0.1:9", timeout=2), CHAOS_TOKEN, "http://127.0.0.1:9")
        with pytest.raises(ChaosRefused, match=r"http://127.0.0.1:9 does not answer \(ConnectError\)"):
            await chaos.clear()
