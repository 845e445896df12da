"""Real service processes (uvicorn under `python -m shop_<service>`), for what only a process can show:
signals, memory, crashes. Every process a test starts is killed at the end, whatever happened."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shop_devtools.pg import free_port
from shop_devtools.topology import BY_NAME, CALLEES_FIRST, Service


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds from now until `/ready` answers 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


StartService = Callable[..., ServiceProcess]


def launch(name: str, logs: Path, **env: str) -> ServiceProcess:
    """`python -m shop_<name>` on a free port, its output in `logs`; the caller stops it."""
    port = free_port()
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_FORMAT": "json", **env}
    log_path = logs / f"{name}-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", BY_NAME[name].module], env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    return ServiceProcess(name, port, process, log_path, env)


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    started: list[ServiceProcess] = []

    def start(name: str, *, wait: bool = True, **env: str) -> ServiceProcess:
        service = launch(name, tmp_path, **env)
        started.append(service)
        if wait:
            service.wait_ready()
        return service

    try:
        yield start
    finally:
        for service in started:
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait(5)


def wiring(service: Service, database_urls: Mapping[str, str], started: Mapping[str, ServiceProcess]) -> dict[str, str]:
    """What `make run` tells a service of the shop: its database, and where the (started) services it calls are."""
    env = {"DATABASE_URL": database_urls[service.name]} if service.has_database else {}
    return env | {service.upstream_setting(upstream): started[upstream].url for upstream in service.upstreams}


def start_shop(
    start_service: StartService, database_urls: Mapping[str, str], *, provider_latency_ms: int = 0
) -> dict[str, ServiceProcess]:
    """The four services wired as `make run` wires them, on `database_urls`."""
    started: dict[str, ServiceProcess] = {}
    for service in CALLEES_FIRST:
        env = wiring(service, database_urls, started)
        if service.name == "payment":
            env["PAYMENT_PROVIDER_LATENCY_MS"] = str(provider_latency_ms)
        started[service.name] = start_service(service.name, **env)
    return started


@pytest.fixture
def shop(start_service: StartService, database_urls: Mapping[str, str]) -> dict[str, ServiceProcess]:
    """The whole shop on fresh databases; the provider answers at once."""
    return start_shop(start_service, database_urls)
