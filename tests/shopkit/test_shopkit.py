"""shopkit's building blocks: settings, memory budget, probes, problem+json, request ids."""

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from pydantic import ValidationError

from shop_payment.settings import PaymentSettings
from shopkit import ServiceSettings, create_app, driver_url
from shopkit.probes import cgroup_memory_limit, memory_budget
from tests.conftest import client_for, running


def test_shared_settings_are_unprefixed_and_service_settings_prefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOS_ENABLED", "true")
    monkeypatch.setenv("CHAOS_TOKEN", "a-long-random-token")
    monkeypatch.setenv("MEMORY_BUDGET_BYTES", "400000000")
    monkeypatch.setenv("PAYMENT_PROVIDER_LATENCY_MS", "500")
    monkeypatch.setenv("PROVIDER_LATENCY_MS", "1")
    settings = PaymentSettings()
    assert settings.chaos_enabled
    assert settings.memory_budget_bytes == 400_000_000
    assert settings.provider_latency_ms == 500
    assert settings.port == 8083


def test_chaos_needs_a_token_and_production_refuses_placeholders() -> None:
    with pytest.raises(ValidationError, match="CHAOS_TOKEN"):
        ServiceSettings(chaos_enabled=True)
    with pytest.raises(ValidationError, match="placeholder"):
        ServiceSettings(environment="production", chaos_enabled=True, chaos_token="changeme")
    assert ServiceSettings(environment="development", chaos_enabled=True, chaos_token="changeme").chaos_enabled


@pytest.mark.parametrize(
    ("v2", "v1", "expected"),
    [
        ("536870912\n", None, 536_870_912),
        ("max\n", None, None),
        (None, "268435456\n", 268_435_456),
        (None, "9223372036854771712\n", None),
        (None, None, None),
    ],
    ids=["v2 limit", "v2 unlimited", "v1 limit", "v1 unlimited", "no cgroup"],
)
def test_cgroup_memory_limit(tmp_path: Path, v2: str | None, v1: str | None, expected: int | None) -> None:
    v2_file, v1_file = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    if v2 is not None:
        v2_file.write_text(v2)
    if v1 is not None:
        v1_file.write_text(v1)
    assert cgroup_memory_limit(v2_file, v1_file) == expected


def test_memory_budget_prefers_the_explicit_setting() -> None:
    assert memory_budget(400_000_000, 0.8, 1_000_000_000) == 320_000_000
    assert memory_budget(None, 0.5, 1_000_000_000) == 500_000_000
    assert memory_budget(None, 0.8, None) is None


def test_driver_url() -> None:
    assert driver_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert driver_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError, match="postgresql"):
        driver_url("mysql://u@h/db")


boom = APIRouter()


@boom.get("/boom")
async def explode() -> None:
    raise RuntimeError("secret internal detail: password=hunter2")


async def test_unexpected_errors_are_a_bare_500_problem_and_probes_answer() -> None:
    app = create_app(ServiceSettings(memory_budget_bytes=1), title="t", routers=[boom])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom", headers={"X-Request-ID": "req-123"})
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "hunter2" not in response.text
        assert "Traceback" not in response.text
        assert response.headers["x-request-id"] == "req-123"
        healthz = await client.get("/healthz")
        assert healthz.status_code == 503  # a 1-byte budget: every process is over it
        assert "over the budget" in healthz.json()["reason"]
        assert (await client.get("/ready")).status_code == 503
        assert (await client.get("/nowhere")).headers["content-type"] == "application/problem+json"


async def test_probes_of_a_healthy_service_without_database() -> None:
    app = create_app(ServiceSettings(), title="t", routers=[])
    async with running(app), client_for(app, "t") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/ready")).json() == {"status": "ready"}
        metrics = (await client.get("/metrics")).text
        assert "shop_resident_memory_bytes" in metrics
        app.state.probes.draining = True
        assert (await client.get("/ready")).json() == {"status": "unready", "reason": "draining: shutting down"}
        assert (await client.get("/healthz")).status_code == 200


async def test_readiness_follows_the_database_and_migrations(database_urls: Mapping[str, str]) -> None:
    from shop_catalog.main import create_app as create_catalog
    from shop_catalog.settings import CatalogSettings

    app = create_catalog(CatalogSettings(database_url=database_urls["catalog"]))
    async with running(app), client_for(app, "catalog") as client:
        assert (await client.get("/ready")).status_code == 200
        async with app.state.engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        not_ready = await client.get("/ready")
        assert not_ready.status_code == 503
        assert "migrations not applied" in not_ready.json()["reason"]

    unreachable = create_catalog(CatalogSettings(database_url="postgresql://x:y@127.0.0.1:9/none"))
    async with running(unreachable), client_for(unreachable, "catalog") as client:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert "database unavailable" in response.json()["reason"]
        assert (await client.get("/healthz")).status_code == 200


CHAOS_TOKEN = "in-process-chaos-token-42"
CHAOS_PATHS = [
    ("POST", "/chaos/leak"),
    ("POST", "/chaos/hang"),
    ("POST", "/chaos/crash"),
    ("POST", "/chaos/unready"),
    ("POST", "/chaos/ready"),
    ("GET", "/chaos"),
    ("DELETE", "/chaos"),
]


@pytest.mark.parametrize(("method", "path"), CHAOS_PATHS)
async def test_chaos_is_not_mounted_unless_enabled(method: str, path: str) -> None:
    app = create_app(ServiceSettings(), title="t", routers=[])
    async with running(app), client_for(app, "t") as client:
        response = await client.request(method, path, headers={"X-Chaos-Token": CHAOS_TOKEN})
        assert response.status_code == 404


@pytest.mark.parametrize(("method", "path"), CHAOS_PATHS)
async def test_chaos_needs_the_right_token(method: str, path: str) -> None:
    app = create_app(ServiceSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN), title="t", routers=[])
    async with running(app), client_for(app, "t") as client:
        assert (await client.request(method, path)).status_code == 401
        assert (await client.request(method, path, headers={"X-Chaos-Token": "wrong"})).status_code == 403
        assert "/chaos" not in (await client.get("/openapi.json")).text
        assert app.state.probes.forced_unready is False


async def test_a_capped_leak_grows_then_stops_and_clearing_frees_it() -> None:
    app = create_app(ServiceSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN), title="t", routers=[])
    headers = {"X-Chaos-Token": CHAOS_TOKEN}
    async with running(app), client_for(app, "t") as client:
        started = await client.post("/chaos/leak", json={"mb_per_second": 100, "max_mb": 30}, headers=headers)
        assert started.status_code == 202
        for _ in range(50):
            state = (await client.get("/chaos", headers=headers)).json()
            if not state["leak"]["active"]:
                break
            await asyncio.sleep(0.05)
        assert not state["leak"]["active"]
        assert 25 * 2**20 <= state["leaked_bytes"] <= 30 * 2**20
        assert "shop_chaos_leaked_bytes" in (await client.get("/metrics")).text
        assert (await client.delete("/chaos", headers=headers)).json()["leaked_bytes"] == 0


async def test_bad_chaos_bodies_are_422() -> None:
    app = create_app(ServiceSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN), title="t", routers=[])
    headers = {"X-Chaos-Token": CHAOS_TOKEN}
    async with running(app), client_for(app, "t") as client:
        for body in ({"mb_per_second": -1}, {"mb_per_second": "fast"}, {"max_mb": 0}, {"unknown": 1}):
            assert (await client.post("/chaos/leak", json=body, headers=headers)).status_code == 422
        assert (await client.post("/chaos/hang", json={"seconds": 0}, headers=headers)).status_code == 422
        assert app.state.chaos.leak_task is None


async def test_a_streamed_oversized_body_is_a_413_problem() -> None:
    app = create_app(ServiceSettings(max_body_bytes=1024), title="t", routers=[boom])

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    async with running(app), client_for(app, "t") as client:
        response = await client.post("/boom", content=chunks())
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/body-too-large")
