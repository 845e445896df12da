"""wrk, the native HTTP load generator, as a typed runner: the bench and the drill drive load with it so that
the client is never the bottleneck (and say so when it is: `WrkResult.generator_saturated`).

The Lua scripts ship beside this module (`shop_load/generators/wrk/*.lua`): `get` (plain GETs) and `checkout` (POSTs of
a JSON body with a fresh `Idempotency-Key` per request and the customers' bearer tokens in turn). Both take an
optional `rate` (requests per second over all connections, paced with wrk's `delay()`), count every status in
`response()`, sum the counts of all threads in `done()` and print them there as one JSON line, with the latency
percentiles, which `WrkRun.result()` parses. Parameters reach the scripts as environment variables
(`params={"rate": "50"}` is `WRK_RATE=50`).

    result = shop_load.generators.wrk.run("http://127.0.0.1:9000/products?limit=20", connections=64, seconds=10)
    result.throughput, result.p99_ms, result.statuses, result.generator_saturated
"""

import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TypedDict, Unpack

from shop_load.generators.wrk_report import WrkError, WrkResult, parse_report

__all__ = [
    "SCRIPTS", "WrkError", "WrkOptions", "WrkResult", "WrkRun", "require_wrk", "run", "start",
]  # fmt: skip

SCRIPTS = Path(__file__).with_name("wrk")
"""The shipped Lua scripts: `get.lua`, `checkout.lua` and their shared `report.lua`."""
TIMEOUT_SECONDS = 10.0
"""A response later than this counts as a timeout unless a run says otherwise (`timeout_seconds`)."""


def require_wrk() -> str:
    """The path of the wrk executable, or a `WrkError` that says how to install it."""
    if (path := shutil.which("wrk")) is None:
        raise WrkError(
            "wrk (the native HTTP load generator) is not on PATH: install it with `apt-get install wrk`"
            " (Debian/Ubuntu) or `brew install wrk` (macOS)"
        )
    return path


def _script_path(script: str) -> Path:
    path = Path(script) if script.endswith(".lua") else SCRIPTS / f"{script}.lua"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in SCRIPTS.glob("*.lua") if p.stem != "report"))
        raise WrkError(f"no wrk script {script!r} (shipped: {shipped})")
    return path


def _duration(seconds: float) -> str:
    """wrk reads whole seconds only: a run or timeout is rounded up to the next second, one at least."""
    return f"{max(1, math.ceil(seconds))}s"


class WrkRun:
    """A wrk process running in the background; `result()` waits for it and parses its report."""

    def __init__(self, args: list[str], env: Mapping[str, str], *, seconds: float, threads: int, connections: int):
        self.args, self.threads, self.connections, self._seconds = args, threads, connections, seconds
        # wrk's output, kept in files (not pipes, which nobody drains while it runs) until result() reads them
        self._stdout: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._lock = threading.Lock()
        self._result: WrkResult | None = None
        self._reaped: tuple[int, float] | None = None
        self._started = time.monotonic()
        self._process = subprocess.Popen(args, env=dict(env), stdout=self._stdout, stderr=self._stderr)

    def stop(self) -> None:
        """Ends the run early; wrk still prints its report (for `result()`)."""
        self._signal(signal.SIGINT)

    def _signal(self, signum: int) -> None:
        # os.kill, not Popen.send_signal: that one polls, and a child reaped by waitpid has no resource usage left
        with self._lock:
            if self._process.returncode is None:
                os.kill(self._process.pid, signum)

    def _reap(self, *, block: bool) -> tuple[int, float] | None:
        """(exit code, CPU seconds) once wrk has exited; reaped here with wait4 to read its resource usage."""
        with self._lock:
            if self._reaped is None:
                pid, status, usage = os.wait4(self._process.pid, 0 if block else os.WNOHANG)
                if pid == 0:
                    return None
                self._process.returncode = os.waitstatus_to_exitcode(status)
                self._reaped = self._process.returncode, usage.ru_utime + usage.ru_stime
            return self._reaped

    def _reaped_by(self, deadline: float) -> tuple[int, float] | None:
        """`_reap` once wrk has exited, polling until `deadline`; None if it is still running then."""
        while (reaped := self._reap(block=False)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return reaped

    def result(self, timeout: float | None = None) -> WrkResult:
        """Waits for wrk (at most `timeout` seconds past the run's own length, 30 by default) and parses its report."""
        if self._result is not None:
            return self._result
        reaped = self._reaped_by(self._started + self._seconds + (30 if timeout is None else timeout))
        if reaped is None:
            self.stop()
            if self._reaped_by(time.monotonic() + 5) is None:
                self._signal(signal.SIGKILL)
                self._reap(block=True)
            raise WrkError(f"wrk did not finish in time: {' '.join(self.args)}")
        code, cpu_seconds = reaped
        stdout, stderr = self._read(self._stdout), self._read(self._stderr)
        if code != 0:
            raise WrkError(f"wrk exited with {code}: {stderr.strip() or stdout.strip()}")
        try:
            self._result = parse_report(
                stdout, generator_cpu_seconds=cpu_seconds, threads=self.threads, connections=self.connections
            )
        except WrkError as exc:
            raise WrkError(f"{exc}; wrk said: {(stderr + stdout).strip()[-2000:]}") from None
        return self._result

    @staticmethod
    def _read(file: IO[bytes]) -> str:
        with file:
            file.seek(0)
            return file.read().decode(errors="replace")


class WrkOptions(TypedDict, total=False):
    """`start`'s optional arguments, which `run` passes on to it."""

    threads: int
    script: str
    params: Mapping[str, str] | None
    timeout_seconds: float


def start(
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    script: str = "get",
    params: Mapping[str, str] | None = None,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> WrkRun:
    """Starts wrk against `url` with `connections` kept-alive connections for `seconds` (whole seconds: wrk
    rounds nothing, so this rounds up), in the background.

    `script` is a shipped script (`get`, `checkout`) or the path of a `.lua` file; `params` become its
    environment (`WRK_<NAME>`). A response later than `timeout_seconds` counts as a timeout.
    """
    if connections < threads:
        raise WrkError(f"wrk needs at least one connection per thread ({connections} connections, {threads} threads)")
    args = [
        require_wrk(),
        "--threads", str(threads),
        "--connections", str(connections),
        "--duration", _duration(seconds),
        "--timeout", _duration(timeout_seconds),
        "--script", str(_script_path(script)),
        url,
    ]  # fmt: skip
    own = {"scripts": str(SCRIPTS), "connections": str(connections), "run_id": uuid.uuid4().hex[:12]}
    env = {**os.environ, **{f"WRK_{name.upper()}": value for name, value in {**own, **(params or {})}.items()}}
    return WrkRun(args, env, seconds=seconds, threads=threads, connections=connections)


def run(url: str, *, connections: int, seconds: float, **options: Unpack[WrkOptions]) -> WrkResult:
    """`start(...)` and wait for its result (at most `timeout_seconds` + 30 s past the run's own length)."""
    wait = options.get("timeout_seconds", TIMEOUT_SECONDS) + 30
    return start(url, connections=connections, seconds=seconds, **options).result(timeout=wait)
