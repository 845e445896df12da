"""The shop as real processes for the drill, Locust and the bench: catalog, users, payment and storefront under
uvicorn (`start_service` from the process tests), chaos enabled, a small memory budget so a leak is seen fast."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.process.conftest import ServiceProcess, StartService, start_service

__all__ = ["CHAOS_TOKEN", "FIXTURES", "RealShop", "load_recording", "start_service"]

CHAOS_TOKEN = "load-test-chaos-token-0123456789"
MEMORY_BUDGET_BYTES = 250 * 10**6
FIXTURES = Path(__file__).parent / "fixtures"


def load_recording(name: str) -> dict[str, Any]:
    recording: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return recording


@dataclass
class RealShop:
    catalog: ServiceProcess
    users: ServiceProcess
    payment: ServiceProcess
    storefront: ServiceProcess
    database_urls: Mapping[str, str]


@pytest.fixture
def real_shop(start_service: StartService, database_urls: Mapping[str, str]) -> RealShop:
    chaos = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": CHAOS_TOKEN, "MEMORY_BUDGET_BYTES": str(MEMORY_BUDGET_BYTES)}
    catalog = start_service("catalog", wait=False, DATABASE_URL=database_urls["catalog"], **chaos)
    users = start_service("users", wait=False, DATABASE_URL=database_urls["users"], **chaos)
    payment = start_service(
        "payment",
        wait=False,
        DATABASE_URL=database_urls["payment"],
        PAYMENT_CATALOG_URL=catalog.url,
        PAYMENT_USERS_URL=users.url,
        PAYMENT_PROVIDER_LATENCY_MS="20",
        **chaos,
    )
    storefront = start_service(
        "storefront",
        wait=False,
        STOREFRONT_CATALOG_URL=catalog.url,
        STOREFRONT_USERS_URL=users.url,
        STOREFRONT_PAYMENT_URL=payment.url,
        **chaos,
    )
    for process in (catalog, users, payment, storefront):
        process.wait_ready(timeout=60)
    return RealShop(catalog, users, payment, storefront, database_urls)
