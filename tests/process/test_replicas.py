"""Storefront spreads requests over several replicas of a service and skips one that is gone."""

from collections.abc import Mapping

import httpx
import pytest

from tests.process.conftest import StartService

pytestmark = pytest.mark.process


def served(url: str) -> float:
    metrics = httpx.get(url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("http_requests_total{") and 'handler="/products"' in line
    )


PAST_THE_CACHE = {"Cache-Control": "no-cache"}
"""Otherwise the storefront answers repeated product lists itself, without asking any replica."""


def test_requests_are_balanced_and_a_dead_replica_is_skipped(
    start_service: StartService, database_urls: Mapping[str, str]
) -> None:
    first = start_service("catalog", DATABASE_URL=database_urls["catalog"])
    second = start_service("catalog", DATABASE_URL=database_urls["catalog"])
    storefront = start_service("storefront", STOREFRONT_CATALOG_URL=f"{first.url},{second.url}")

    for _ in range(10):
        assert httpx.get(storefront.url + "/api/products", headers=PAST_THE_CACHE).status_code == 200
    assert served(first.url) == served(second.url) == 5

    first.process.kill()
    first.process.wait(5)
    for _ in range(10):
        assert httpx.get(storefront.url + "/api/products", headers=PAST_THE_CACHE).status_code == 200
    assert served(second.url) == 15
