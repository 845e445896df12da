"""The chaos faults on real processes: a leak fails liveness and readiness, hang blocks the loop, crash exits."""

import time
from collections.abc import Mapping

import httpx
import pytest

from tests.process.conftest import StartService

pytestmark = pytest.mark.process

TOKEN = {"X-Chaos-Token": "test-chaos-token-0123456789"}
CHAOS = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": TOKEN["X-Chaos-Token"]}


def status(url: str, timeout: float = 2.0) -> int | None:
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return None


def test_a_leak_fails_the_leaking_process_only_and_clearing_it_recovers_every_time(
    start_service: StartService, database_urls: Mapping[str, str]
) -> None:
    """Twice in a row, as two drills in a row do: clearing returns the leaked memory to the system each time, so the
    process is within its budget, live and ready again."""
    catalog = start_service("catalog", DATABASE_URL=database_urls["catalog"])
    payment = start_service(
        "payment",
        DATABASE_URL=database_urls["payment"],
        PAYMENT_CATALOG_URL=catalog.url,
        MEMORY_BUDGET_BYTES=str(400 * 10**6),
        **CHAOS,
    )
    for episode in (1, 2):
        injected = time.monotonic()
        assert httpx.post(payment.url + "/chaos/leak", json={"mb_per_second": 40}, headers=TOKEN).status_code == 202

        healthz = ready = None
        while time.monotonic() - injected < 20 and (healthz is None or ready is None):
            if ready is None and status(payment.url + "/ready") == 503:
                ready = time.monotonic() - injected
            if healthz is None and status(payment.url + "/healthz") == 503:
                healthz = time.monotonic() - injected
            assert status(catalog.url + "/healthz") == 200
            assert status(catalog.url + "/ready") == 200
            time.sleep(0.2)
        print(f"leak {episode} at 40 MB/s, 400 MB budget: unready after {ready}s, liveness failing after {healthz}s")
        assert ready is not None, "readiness never turned 503"
        assert healthz is not None, "liveness never turned 503"
        assert "over the budget" in httpx.get(payment.url + "/healthz").json()["reason"]

        cleared = httpx.delete(payment.url + "/chaos", headers=TOKEN)
        assert cleared.status_code == 200
        assert cleared.json()["leaked_bytes"] == 0
        payment.wait_ready(timeout=5)
        assert status(payment.url + "/healthz") == 200, f"episode {episode}: {httpx.get(payment.url + '/healthz').text}"
    metrics = httpx.get(payment.url + "/metrics").text
    assert 'shop_chaos_injections_total{fault="leak"} 2.0' in metrics


def test_hang_blocks_the_event_loop_for_its_duration(start_service: StartService) -> None:
    storefront = start_service("storefront", **CHAOS)
    assert httpx.post(storefront.url + "/chaos/hang", json={"seconds": 3}, headers=TOKEN).status_code == 202
    time.sleep(0.3)
    assert status(storefront.url + "/healthz", timeout=1.0) is None  # timed out: a liveness failure
    time.sleep(3)
    assert status(storefront.url + "/healthz") == 200


def test_crash_ends_the_process_with_a_non_zero_code(start_service: StartService) -> None:
    storefront = start_service("storefront", **CHAOS)
    assert httpx.post(storefront.url + "/chaos/crash", headers=TOKEN).status_code == 202
    assert storefront.process.wait(5) == 70


def test_unready_flips_only_readiness(start_service: StartService) -> None:
    storefront = start_service("storefront", **CHAOS)
    assert httpx.post(storefront.url + "/chaos/unready", headers=TOKEN).status_code == 200
    assert status(storefront.url + "/ready") == 503
    assert status(storefront.url + "/healthz") == 200
    assert httpx.get(storefront.url + "/chaos", headers=TOKEN).json()["forced_unready"] is True
    assert httpx.post(storefront.url + "/chaos/ready", headers=TOKEN).status_code == 200
    assert status(storefront.url + "/ready") == 200
