"""The shop as real processes for the drill, Locust and the bench: catalog, users, payment and storefront under
uvicorn (`start_service` from the process tests), chaos enabled, a small memory budget so a leak is seen fast."""

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shop_devtools.topology import CALLEES_FIRST
from tests.process.conftest import ServiceProcess, StartService, start_service, wiring

__all__ = ["CHAOS_TOKEN", "FIXTURES", "ROOT", "RealShop", "load_recording", "run_python", "start_service"]

CHAOS_TOKEN = "load-test-chaos-token-0123456789"
MEMORY_BUDGET_BYTES = 250 * 10**6
FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[2]


def run_python(args: list[str], *, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    """`python <args>` from the checkout's root with `env` over this environment; its output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
    started: dict[str, ServiceProcess] = {}
    for service in CALLEES_FIRST:
        env = wiring(service.name, database_urls, started) | chaos
        if service.name == "payment":
            env["PAYMENT_PROVIDER_LATENCY_MS"] = "20"
        started[service.name] = start_service(service.name, wait=False, **env)
    for process in started.values():
        process.wait_ready(timeout=60)
    return RealShop(**started, database_urls=database_urls)
