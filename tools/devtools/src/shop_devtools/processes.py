"""The one launcher of the shop's processes: `make run`, the bench and the process tests all start a service here
(`spawn`: `python -m shop_<service>`, each replica an `Instance`), wire it as `make run` does (`wiring`: its
database, its upstreams and its credentials), wait until it is ready (`wait_until_ready`) and stop it
(`stop_children`). Output goes to the launcher's log (relayed line by line, `make run`) or to a file (the bench,
the tests). The container proof starts the same services as containers through the engine, with the same `wiring`
and the same `readiness`.

Each service runs in its own session (`start_new_session=True`): Ctrl-C in the terminal reaches the launcher alone,
which then stops the services in order (SIGTERM, then SIGKILL after 10 s). On Linux each service also asks the
kernel to SIGKILL it when the launcher dies (`PR_SET_PDEATHSIG`), so even a SIGKILLed launcher leaves no service
holding a port.
"""

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import httpx

from shop_devtools.restarts import RestartPolicy
from shop_devtools.topology import SERVICES, Service

LOCAL_HOST = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.2
REPLICATED = "payment"
"""The one service `PAYMENT_REPLICAS` multiplies (the one the drill's faults are about)."""

log = logging.getLogger("shop_devtools.run")

NAME_WIDTH = max(len(service.name) for service in SERVICES)


@dataclass(frozen=True)
class Instance:
    """One process of a service: `payment`, or `payment-1`, `payment-2`, ... when it runs several."""

    service: Service
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.port}"


class LaunchError(Exception):
    """Something prevents the shop from running; the message says what, for a human."""


@dataclass
class Child:
    """One process of a service, started (`start`) and, after a death, started again with the same environment and
    output."""

    instance: Instance
    env: Mapping[str, str]
    output: Path | None = None
    """Where its output goes (appended); None: a pipe, relayed to the launcher's log by `relay`."""
    process: "subprocess.Popen[bytes]" = field(init=False)
    relay: threading.Thread | None = None
    started_at: float = 0.0
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None
    """When a dead process is due to start again."""
    death_reason: str | None = None
    """Why the launcher itself stopped the running process (`failed liveness`), None if it did not."""
    restarts: int = 0
    last_reason: str = ""
    """Why it was last started again, for `run.json`: the kubelet's restart count and last state."""

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def url(self) -> str:
        return self.instance.url

    def start(self) -> None:
        """Starts the process; a piped output is relayed to the launcher's log, line by line, until it closes it."""
        self.process = start_process(self.instance.service.module, self.env, output=self.output)
        self.started_at, self.restart_at, self.death_reason = time.monotonic(), None, None
        if self.process.stdout is not None:
            self.relay = threading.Thread(target=self._relay, args=(self.process.stdout,), daemon=True)
            self.relay.start()

    def _relay(self, stream: IO[bytes]) -> None:
        """Relays the output in blocks, at most one every 50 ms: what came meanwhile is read at once, an unfinished
        last line completed. Reading each line as it came woke this thread for each, which cost the launcher more CPU
        than the service spent writing the line. Read unbuffered, so that a read takes what the pipe holds (at most
        its 64 KiB: a service writing more than 1.3 MB/s would wait) and completing a line takes only its end."""
        with stream, open(stream.fileno(), "rb", buffering=0, closefd=False) as pipe:
            while block := pipe.read(1 << 16):
                for line in (block if block.endswith(b"\n") else block + pipe.readline()).splitlines():
                    log.info("%s", line.decode(errors="replace").rstrip(), extra={"source": self.name})
                time.sleep(0.05)


_DIE_WITH_PARENT = """\
import ctypes, os, runpy, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: SIGKILL this process when the launcher dies
if os.getppid() != int(sys.argv[3]):  # it died before the line above
    sys.exit(70)
module, sys.argv = sys.argv[2], sys.argv[:1] + sys.argv[4:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def _command(module: str, args: Sequence[str]) -> list[str]:
    """`python -m <module> <args>`; on Linux through a first step that asks the kernel to SIGKILL the process when
    the launcher dies, taken in the child itself (a `preexec_fn` is unsafe once the relay threads run). `ps` still
    shows `-m <module>`. The kernel watches the thread that starts the process: start them from the main thread."""
    if not sys.platform.startswith("linux"):
        return [sys.executable, "-m", module, *args]
    return [sys.executable, "-c", _DIE_WITH_PARENT, "-m", module, str(os.getpid()), *args]


def start_process(
    module: str, env: Mapping[str, str], *, output: Path | None = None, args: Sequence[str] = ()
) -> "subprocess.Popen[bytes]":
    """`python -m <module>` in its own session, dying with the launcher; its output piped (`output` None) or
    appended to `output`."""
    with output.open("ab") if output else contextlib.nullcontext(subprocess.PIPE) as sink:
        argv = _command(module, args)
        return subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )


def spawn(instance: Instance, env: Mapping[str, str], *, output: Path | None = None) -> Child:
    """Starts one process of a service."""
    child = Child(instance, env, output)
    child.start()
    log.info("started %s (pid %d) on %s", instance.name, child.process.pid, instance.url)
    return child


def wiring(
    service: Service, database_urls: Mapping[str, str], urls: Mapping[str, str], credentials: Mapping[str, str]
) -> dict[str, str]:
    """What the shop tells a service: its database (`DATABASE_URL`), where each service it calls is (`urls`: a
    URL, or comma-separated URLs of replicas, by service name) and the shop's own credentials it reads, of
    `credentials` (by name: `shop_devtools.credentials.NAMES`), none other."""
    env = {"DATABASE_URL": database_urls[service.name]} if service.has_database else {}
    env |= {service.upstream_setting(upstream): urls[upstream] for upstream in service.upstreams}
    return env | {name: credentials[name] for name in service.credentials}


class Running(Protocol):
    """A started process the launcher can wait for and stop: a service's `Child`, or the bench's bare app."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    process: "subprocess.Popen[bytes]"


def stop_children(children: Sequence[Running]) -> None:
    """SIGTERM to every service's process group, SIGKILL to those still there after STOP_TIMEOUT_SECONDS; then the
    rest of their output relayed."""
    running = [child for child in children if child.process.poll() is None]
    for child in running:
        signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in running:
        wait_or_kill(child, deadline)
    for relay in [child.relay for child in children if isinstance(child, Child) and child.relay]:
        relay.join(timeout=2)
    if running:
        log.info("services stopped")


def wait_or_kill(child: Running, deadline: float) -> None:
    """Waits for a process told to stop until `deadline` (monotonic), then SIGKILLs its group and reaps it."""
    try:
        child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %.0f s; killing it", child.name, STOP_TIMEOUT_SECONDS)
        signal_group(child, signal.SIGKILL)
        child.process.wait()


def signal_group(child: Running, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signum)  # the child leads its own group (start_new_session)


def wait_until_ready(children: Sequence[Running], timeout: float, poll: float = POLL_SECONDS) -> float:
    """Polls each one's `/ready` until every one answers 200; the seconds that took. `LaunchError` when one dies
    first (it has never been ready: a restart would not help) or `timeout` passes (the message says what each last
    answered)."""
    started = time.monotonic()
    waiting = list(children)
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while True:
            for child in children:
                if (code := child.process.poll()) is not None:
                    raise LaunchError(f"{child.name} {describe_exit(code)} before it was ready; stopping the shop")
            reasons = {child.name: readiness(client, child.url) for child in waiting}
            waiting = [child for child in waiting if reasons[child.name]]
            if not waiting:
                return time.monotonic() - started
            if time.monotonic() > started + timeout:
                details = "; ".join(f"{child.name}: {reasons[child.name]}" for child in waiting)
                raise LaunchError(f"not ready after {timeout:.0f} s ({details})")
            time.sleep(poll)


def readiness(client: httpx.Client, base_url: str) -> str:
    """'' when the service is ready, else why not."""
    return answer(client, f"{base_url}/ready")


def answer(client: httpx.Client, url: str, timeout: float | None = None) -> str:
    """'' for a 2xx or 3xx (as the kubelet judges an HTTP probe), else what came instead."""
    try:
        response = client.get(url, timeout=timeout or client.timeout)
    except httpx.HTTPError as exc:
        return "timed out" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
    return "" if response.status_code < 400 else f"{response.status_code} {response.text[:200]}"


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((LOCAL_HOST, 0))
        return int(sock.getsockname()[1])


def ports_in_use(ports: Iterable[int]) -> list[int]:
    """Those of `ports` something already listens on at 127.0.0.1."""
    busy = []
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and PostgreSQL do
            try:
                sock.bind((LOCAL_HOST, port))
            except OSError:
                busy.append(port)
    return busy


def describe_exit(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
