"""The recovery page's data from real service processes, found by their addresses as under compose: each
replica's probes and memory as it answers them, a fault injected through the storefront's `/ops/chaos` with the
chaos token it alone holds, and the timeline that follows, a crash and a new process on the same address (the
engine's restart) included."""

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from shop_devtools.topology import CALLEES_FIRST
from shop_storefront.recovery.watch import SEEN_RESTART
from tests.conftest import CREDENTIALS
from tests.process.conftest import ServiceProcess, StartService, wiring

pytestmark = pytest.mark.process

CHAOS = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": "recovery-process-test-chaos-token"}


@pytest.fixture
def shop(start_service: StartService, database_urls: Mapping[str, str]) -> dict[str, ServiceProcess]:
    started: dict[str, ServiceProcess] = {}
    for service in CALLEES_FIRST:
        budget = {"MEMORY_BUDGET_BYTES": str(400 * 2**20)} if service.name == "payment" else {}
        started[service.name] = start_service(
            service.name, **wiring(service.name, database_urls, started), **CHAOS, **budget
        )
    return started


def until(client: httpx.Client, check: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = client.get("/recovery/state").json()
        if check(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def replica(state: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in state["replicas"] if r["name"] == name)
    return found


def test_a_fault_injected_from_the_page_shows_in_the_replica_and_on_the_timeline(
    shop: Mapping[str, ServiceProcess],
) -> None:
    with httpx.Client(base_url=shop["storefront"].url, trust_env=False, timeout=10) as client:
        login = client.post("/recovery/session", json={"credential": CREDENTIALS["OPERATOR_CREDENTIAL"]})
        assert login.status_code == 204
        first = client.get("/recovery/state").json()
        assert first["target"] == "compose"
        assert {r["name"]: (r["live"], r["ready"]) for r in first["replicas"]} == {
            name: (True, True) for name in ("storefront", "catalog", "users", "payment")
        }
        assert replica(first, "payment")["budget_bytes"] == int(400 * 2**20 * 0.8)
        assert replica(first, "payment")["limit_bytes"] == 400 * 2**20, "MEMORY_BUDGET_BYTES stands for the limit"
        assert first["database"]["state"] == "up"

        assert client.post("/ops/chaos/payment/unready").status_code == 200
        unready = until(client, lambda state: replica(state, "payment")["ready"] is False)
        assert (replica(unready, "payment")["ready_detail"], replica(unready, "payment")["live"]) == (
            "forced unready",
            True,
        )

        leak = client.post("/ops/chaos/payment/leak", json={"mb_per_second": 64, "max_mb": 64})
        assert leak.status_code == 202, leak.text
        leaking = until(client, lambda state: replica(state, "payment")["leaked_bytes"] >= 64 * 2**20)
        assert replica(leaking, "payment")["memory_bytes"] > replica(first, "payment")["memory_bytes"] + 60 * 2**20

        assert client.post("/ops/chaos/payment/clear").status_code == 200
        cleared = until(client, lambda state: replica(state, "payment")["ready"] is True)
    assert [(e["replica"], e["kind"], e["detail"]) for e in cleared["timeline"]] == [
        ("payment", "fault injected", "unready"),
        ("payment", "unready", "forced unready"),
        ("payment", "fault injected", "leak"),
        ("payment", "fault cleared", "clear"),
        ("payment", "ready again", ""),
    ]


def test_a_crash_and_a_new_process_on_the_same_address_are_a_restart(shop: Mapping[str, ServiceProcess]) -> None:
    """Compose's restart, played: the crashed process answers nothing for a while, then the engine's new one
    answers at the same address. The page tells the gap, the restart and the count, with no socket of the engine."""
    payment = shop["payment"]
    with httpx.Client(base_url=shop["storefront"].url, trust_env=False, timeout=10) as client:
        login = client.post("/recovery/session", json={"credential": CREDENTIALS["OPERATOR_CREDENTIAL"]})
        assert login.status_code == 204
        assert replica(client.get("/recovery/state").json(), "payment")["restarts"] is None, "none seen yet"
        assert client.post("/ops/chaos/payment/crash").status_code == 202
        payment.process.wait(10)
        down = until(client, lambda state: replica(state, "payment")["ready"] is False)
        assert replica(down, "payment")["memory_bytes"] is None
        payment.child.start()  # what make run's launcher does to a replica that died, on its port
        payment.wait_ready()
        back = until(client, lambda state: replica(state, "payment")["ready"] is True)
    assert (replica(back, "payment")["restarts"], replica(back, "payment")["last_reason"]) == (1, SEEN_RESTART)
    assert [(e["kind"], e["detail"].split(" (")[0]) for e in back["timeline"] if e["replica"] == "payment"] == [
        ("fault injected", "crash"),
        ("liveness failing", "not answering"),
        ("unready", "not answering"),
        ("restarted", "a new process"),
        ("ready again", ""),
    ]
