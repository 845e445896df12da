"""shopkit.probes: the memory budget from the cgroup or the setting, liveness and readiness of a service with and
without its database."""

from collections.abc import Mapping
from pathlib import Path

import pytest

from shopkit import ServiceSettings, create_app, state_of
from shopkit.probes import cgroup_memory_limit, memory_budget
from tests.conftest import client_for, running


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


async def test_probes_of_a_healthy_service_without_database() -> None:
    app = create_app(ServiceSettings(), title="t", routers=[])
    async with running(app), client_for(app, "t") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/ready")).json() == {"status": "ready"}
        metrics = (await client.get("/metrics")).text
        assert "shop_resident_memory_bytes" in metrics
        state_of(app).probes.draining = True
        assert (await client.get("/ready")).json() == {"status": "unready", "reason": "draining: shutting down"}
        assert (await client.get("/healthz")).status_code == 200


async def test_readiness_follows_the_database_and_migrations(database_urls: Mapping[str, str]) -> None:
    from shop_catalog.main import create_app as create_catalog
    from shop_catalog.settings import CatalogSettings

    app = create_catalog(CatalogSettings(database_url=database_urls["catalog"]))
    async with running(app), client_for(app, "catalog") as client:
        assert (await client.get("/ready")).status_code == 200
        async with state_of(app).database.engine.begin() as conn:
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
