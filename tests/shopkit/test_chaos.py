"""shopkit.chaos: mounted only when enabled, behind its token; a capped leak; bad bodies are 422."""

import asyncio
import subprocess
import sys

import pytest

from shopkit import ServiceSettings, create_app, state_of
from tests.conftest import client_for, running

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
        assert state_of(app).probes.forced_unready is False


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
        chaos = state_of(app).chaos
        assert chaos is not None
        assert chaos.leak_task is None


LEAK_TWICE = """
import asyncio
from shopkit.chaos import ChaosState, LeakRequest
from shopkit.probes import ProbeState, resident_memory_bytes

async def main() -> None:
    chaos, kept = ChaosState(ProbeState()), []
    for _ in range(3):
        chaos.start_leak(LeakRequest(mb_per_second=80, max_mb=200))
        while chaos.leak_task is not None and not chaos.leak_task.done():
            kept.append(bytes(2000))  # what a serving process allocates meanwhile, and keeps
            await asyncio.sleep(0.005)
        peak = resident_memory_bytes()
        chaos.clear()
        print(peak // 2**20, resident_memory_bytes() // 2**20)

asyncio.run(main())
"""


def test_clearing_gives_the_leaked_memory_back_every_time() -> None:
    """A second and third leak in the same process, with other allocations living on meanwhile, leave as the first
    did: a process brought back within its budget stays within it (two drills in a row)."""
    result = subprocess.run([sys.executable, "-c", LEAK_TWICE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    episodes = [tuple(map(int, line.split())) for line in result.stdout.splitlines()]
    assert len(episodes) == 3
    for peak, after in episodes:
        assert peak - after >= 180, f"resident MiB at the peak and after clearing: {episodes}"
