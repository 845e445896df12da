"""What a wrk run reports: our Lua scripts' `done()` prints one JSON line (`WRK_JSON {...}`) with every status
counted, the socket errors, timeouts and latency percentiles; `parse_report` reads it into a `WrkResult`, which
says too whether wrk itself was the bottleneck. `shop_load.generators.wrk` runs wrk and re-exports `WrkError`,
`WrkResult` (a record of `shop_load.core.records`) and `parse_report`.
"""

import json
from typing import Any

from shop_load.core.records import SATURATED_CPU_PER_THREAD, WrkResult

__all__ = ["SATURATED_CPU_PER_THREAD", "WrkError", "WrkResult", "parse_report"]
REPORT_PREFIX = "WRK_JSON "


class WrkError(Exception):
    """wrk is missing, refused its arguments, or exited without its report; the message says which."""


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
        fields = {name: report.pop(name) for name in ("requests", "statuses", "socket_errors", "timeouts")}
        fields |= {name: report.pop(name, 0) for name in ("retry_after_503", "bare_503")}
        fields |= {f"{name}_ms": _ms(report.pop(f"{name}_us", None)) for name in ("p50", "p99", "max")}
        fields |= {"seconds": int(report.pop("duration_us")) / 1e6, "threads": threads, "connections": connections}
        return WrkResult(**fields, generator_cpu_seconds=generator_cpu_seconds, extra=report)  # the rest: extra
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WrkError(f"wrk's report is not what the scripts print: {lines[-1]!r} ({exc})") from exc
