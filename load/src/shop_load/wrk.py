"""wrk, the native HTTP load generator, as a typed runner: the bench and the drill drive load with it so that
the client is never the bottleneck (and say so when it is: `WrkResult.generator_saturated`).

The Lua scripts ship beside this module (`shop_load/wrk/*.lua`): `get` (plain GETs) and `checkout` (POSTs of
a JSON body with a fresh `Idempotency-Key` per request and the customers' bearer tokens in turn). Both take an
optional `rate` (requests per second over all connections, paced with wrk's `delay()`), count every status in
`response()`, sum the counts of all threads in `done()` and print them there as one JSON line, with the latency
percentiles, which `WrkRun.result()` parses. Parameters reach the scripts as environment variables
(`params={"rate": "50"}` is `WRK_RATE=50`).

    result = shop_load.wrk.run("http://127.0.0.1:9000/products?limit=20", connections=64, seconds=10)
    result.throughput, result.p99_ms, result.statuses, result.generator_saturated
"""

import json
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["SCRIPTS", "WrkError", "WrkResult", "WrkRun", "parse_report", "require_wrk", "run", "start"]

SCRIPTS = Path(__file__).with_name("wrk")
"""The shipped Lua scripts: `get.lua`, `checkout.lua` and their shared `report.lua`."""

REPORT_PREFIX = "WRK_JSON "
SATURATED_CPU_PER_THREAD = 0.9
"""A wrk thread busy this fraction of the wall time was itself the bottleneck (one thread uses one core at most)."""


class WrkError(Exception):
    """wrk is missing, refused its arguments, or exited without its report; the message says which."""


def require_wrk() -> str:
    """The path of the wrk executable, or a `WrkError` that says how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(
            "wrk (the native HTTP load generator) is not on PATH: install it with `apt-get install wrk`"
            " (Debian/Ubuntu) or `brew install wrk` (macOS)"
        )
    return path


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: what it sent and saw, as wrk counted it (servers' own metrics may count more: requests still
    in flight when wrk stops are not in `requests`)."""

    requests: int
    """Responses received (any status)."""
    seconds: float
    """Wall time of the run as wrk measured it."""
    statuses: dict[int, int]
    socket_errors: int
    """Connect, read and write errors: connections refused, reset or closed mid-request."""
    timeouts: int
    """Responses that came later than the run's `timeout_seconds` (their latency is not in the percentiles)."""
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    generator_cpu_seconds: float
    """CPU time (user + system) wrk itself used."""
    threads: int = 1
    connections: int = 0
    retry_after_503: int = 0
    """503 answers that carried a Retry-After header."""
    bare_503: int = 0
    """503 answers without one."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Anything else the script reported."""

    @property
    def throughput(self) -> float:
        """Responses per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def generator_cpu_fraction(self) -> float:
        """wrk's CPU time per wall second per thread: 1.0 = every wrk thread busy all the time."""
        return self.generator_cpu_seconds / self.seconds / self.threads if self.seconds > 0 else 0.0

    @property
    def generator_saturated(self) -> bool:
        """wrk itself was the bottleneck: its threads were busy at least 90 % of the run."""
        return self.generator_cpu_fraction >= SATURATED_CPU_PER_THREAD

    def count(self, *statuses: int) -> int:
        return sum(self.statuses.get(status, 0) for status in statuses)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": self.seconds,
            "throughput": self.throughput,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "socket_errors": self.socket_errors,
            "timeouts": self.timeouts,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "retry_after_503": self.retry_after_503,
            "bare_503": self.bare_503,
            "threads": self.threads,
            "connections": self.connections,
            "generator_cpu_seconds": self.generator_cpu_seconds,
            "generator_saturated": self.generator_saturated,
        }


def _ms(microseconds: Any) -> float | None:
    return None if microseconds is None else float(microseconds) / 1000


def parse_report(
    stdout: str, *, generator_cpu_seconds: float = 0.0, threads: int = 1, connections: int = 0
) -> WrkResult:
    """The result in wrk's output: the JSON line our scripts' `done()` prints (the last one, if several)."""
    lines = [line for line in stdout.splitlines() if line.startswith(REPORT_PREFIX)]
    if not lines:
        raise WrkError(f"wrk printed no {REPORT_PREFIX.strip()} line (was it run with a shop_load script?)")
    try:
        report: dict[str, Any] = json.loads(lines[-1].removeprefix(REPORT_PREFIX))
        known = {
            "requests", "duration_us", "statuses", "socket_errors", "timeouts",
            "p50_us", "p99_us", "max_us", "retry_after_503", "bare_503",
        }  # fmt: skip
        return WrkResult(
            requests=int(report["requests"]),
            seconds=int(report["duration_us"]) / 1e6,
            statuses={int(status): int(count) for status, count in report["statuses"].items()},
            socket_errors=int(report["socket_errors"]),
            timeouts=int(report["timeouts"]),
            p50_ms=_ms(report.get("p50_us")),
            p99_ms=_ms(report.get("p99_us")),
            max_ms=_ms(report.get("max_us")),
            generator_cpu_seconds=generator_cpu_seconds,
            threads=threads,
            connections=connections,
            retry_after_503=int(report.get("retry_after_503", 0)),
            bare_503=int(report.get("bare_503", 0)),
            extra={key: value for key, value in report.items() if key not in known},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WrkError(f"wrk's report is not what the scripts print: {lines[-1]!r} ({exc})") from exc


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
        self.args = args
        self.threads = threads
        self.connections = connections
        self._seconds = seconds
        # wrk's output, kept in files (not pipes, which nobody drains while it runs) until result() reads them
        self._stdout: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._lock = threading.Lock()
        self._result: WrkResult | None = None
        self._reaped: tuple[int, float] | None = None
        self._started = time.monotonic()
        self._process = subprocess.Popen(args, env=dict(env), stdout=self._stdout, stderr=self._stderr)

    @property
    def pid(self) -> int:
        return self._process.pid

    def running(self) -> bool:
        with self._lock:
            return self._process.returncode is None

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

    def result(self, timeout: float | None = None) -> WrkResult:
        """Waits for wrk (at most `timeout` seconds past the run's own length, 30 by default) and parses its report."""
        if self._result is not None:
            return self._result
        deadline = self._started + self._seconds + (30 if timeout is None else timeout)
        reaped = self._reap(block=False)
        while reaped is None:
            if time.monotonic() > deadline:
                self.stop()
                grace = time.monotonic() + 5
                while self._reap(block=False) is None and time.monotonic() < grace:
                    time.sleep(0.05)
                if self.running():
                    self._signal(signal.SIGKILL)
                    self._reap(block=True)
                raise WrkError(f"wrk did not finish in time: {' '.join(self.args)}")
            time.sleep(0.05)
            reaped = self._reap(block=False)
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
        file.seek(0)
        text = file.read().decode(errors="replace")
        file.close()
        return text


def start(
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    script: str = "get",
    params: Mapping[str, str] | None = None,
    timeout_seconds: float = 10,
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
    env = {
        **os.environ,
        "WRK_SCRIPTS": str(SCRIPTS),
        "WRK_CONNECTIONS": str(connections),
        "WRK_RUN_ID": uuid.uuid4().hex[:12],
        **{f"WRK_{name.upper()}": value for name, value in (params or {}).items()},
    }
    return WrkRun(args, env, seconds=seconds, threads=threads, connections=connections)


def run(
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    script: str = "get",
    params: Mapping[str, str] | None = None,
    timeout_seconds: float = 10,
) -> WrkResult:
    """`start(...)` and wait for its result."""
    return start(
        url,
        connections=connections,
        seconds=seconds,
        threads=threads,
        script=script,
        params=params,
        timeout_seconds=timeout_seconds,
    ).result(timeout=timeout_seconds + 30)
