"""Real service processes (uvicorn under `python -m shop_<service>`), for what only a process can show:
signals, memory, crashes. They are started, wired, waited for and stopped by `make run`'s launcher
(`shop_devtools.processes`), each with its output in a file. Every process a test starts is killed at the end,
whatever happened."""

import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shop_devtools import processes
from shop_devtools.processes import free_port
from shop_devtools.topology import BY_NAME, CALLEES_FIRST
from tests.conftest import CREDENTIALS


@dataclass
class ServiceProcess:
    child: processes.Child
    log_path: Path
    name: str
    """The service's name, or what a test calls this replica."""
    env: dict[str, str] = field(default_factory=dict)
    """What the test set, over the launcher's defaults."""

    @property
    def port(self) -> int:
        return self.child.instance.port

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.child.process

    @property
    def url(self) -> str:
        return self.child.url

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds from now until `/ready` answers 200."""
        try:
            return processes.wait_until_ready([self.child], timeout, poll=0.05)
        except processes.LaunchError as error:
            raise AssertionError(f"{error}:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        processes.stop_children([self.child])


StartService = Callable[..., ServiceProcess]


def launch(name: str, logs: Path, **env: str) -> ServiceProcess:
    """`python -m shop_<name>` on a free port, its output in `logs`; the caller stops it."""
    instance = processes.Instance(BY_NAME[name], name, free_port())
    full_env = {**os.environ, "HOST": processes.LOCAL_HOST, "PORT": str(instance.port), "LOG_FORMAT": "json", **env}
    log_path = logs / f"{name}-{instance.port}.log"
    return ServiceProcess(processes.spawn(instance, full_env, output=log_path), log_path, name, env)


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
            processes.signal_group(service.child, signal.SIGKILL)
            service.process.wait(5)


def wiring(service: str, database_urls: Mapping[str, str], started: Mapping[str, ServiceProcess]) -> dict[str, str]:
    """What `make run` tells a service of the shop: its database, where the (started) services it calls are, and
    the test session's credentials it reads."""
    urls = {name: each.url for name, each in started.items()}
    return processes.wiring(BY_NAME[service], database_urls, urls, CREDENTIALS)


def start_shop(
    start_service: StartService, database_urls: Mapping[str, str], *, provider_latency_ms: int = 0
) -> dict[str, ServiceProcess]:
    """The four services wired as `make run` wires them, on `database_urls`."""
    started: dict[str, ServiceProcess] = {}
    for service in CALLEES_FIRST:
        env = wiring(service.name, database_urls, started)
        if service.name == "payment":
            env["PAYMENT_PROVIDER_LATENCY_MS"] = str(provider_latency_ms)
        started[service.name] = start_service(service.name, **env)
    return started


@pytest.fixture
def shop(start_service: StartService, database_urls: Mapping[str, str]) -> dict[str, ServiceProcess]:
    """The whole shop on fresh databases; the provider answers at once."""
    return start_shop(start_service, database_urls)
