"""Graceful shutdown on a real process: readiness off at once, traffic served through the delay, exit 0."""

import signal
import threading
import time
from collections.abc import Mapping

import httpx
import pytest

from tests.process.conftest import StartService

pytestmark = pytest.mark.process

DELAY = 2.0


def test_sigterm_drains_under_traffic_and_exits_zero(
    start_service: StartService, database_urls: Mapping[str, str]
) -> None:
    catalog = start_service("catalog", DATABASE_URL=database_urls["catalog"], SHUTDOWN_DELAY_SECONDS=str(DELAY))
    results: list[tuple[float, bool]] = []
    stop_at = [float("inf")]

    def customer() -> None:
        with httpx.Client(base_url=catalog.url, timeout=5) as client:
            while time.monotonic() < stop_at[0]:
                started = time.monotonic()
                try:
                    ok = client.get("/products", params={"limit": 5}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                results.append((started, ok))

    workers = [threading.Thread(target=customer) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)

    with httpx.Client(base_url=catalog.url, timeout=1) as probe:
        assert probe.get("/ready").status_code == 200  # the probe's connection is open before the signal
        signalled = time.monotonic()
        catalog.process.send_signal(signal.SIGTERM)
        while (response := probe.get("/ready")).status_code != 503:
            assert time.monotonic() - signalled < 1
        unready_after = time.monotonic() - signalled
        assert response.json()["reason"].startswith("draining")
    stop_at[0] = signalled + DELAY * 0.75
    for worker in workers:
        worker.join()
    exit_code = catalog.process.wait(DELAY + 5)
    exited_after = time.monotonic() - signalled

    before = [ok for started, ok in results if started < signalled]
    during = [ok for started, ok in results if started >= signalled]
    print(
        f"/ready 503 after {unready_after * 1000:.0f} ms; exit {exit_code} after {exited_after:.2f}s; "
        f"{len(before)} requests before SIGTERM, {len(during)} during the drain"
    )
    assert unready_after < 0.1
    assert len(before) > 20
    assert all(before), f"{before.count(False)} requests accepted before SIGTERM failed"
    assert during
    assert all(during), "requests during the shutdown delay must still be served"
    assert exit_code == 0
    assert exited_after < DELAY + 5
