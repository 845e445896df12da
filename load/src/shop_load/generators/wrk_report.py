"""What a wrk run reports: our Lua scripts' `done()` prints one JSON line (`WRK_JSON {...}`) with every status
counted, the socket errors, timeouts and latency percentiles; `parse_report` reads it into a `WrkResult`, which
says too whether wrk itself was the bottleneck. `shop_load.generators.wrk` runs wrk and re-exports `WrkError`,
`WrkResult` and `parse_report`.
"""

import json
from dataclasses import dataclass, field
from typing import Any

REPORT_PREFIX = "WRK_JSON "
SATURATED_CPU_PER_THREAD = 0.9
"""A wrk thread busy this fraction of the wall time was itself the bottleneck (one thread uses one core at most)."""


class WrkError(Exception):
    """wrk is missing, refused its arguments, or exited without its report; the message says which."""


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
