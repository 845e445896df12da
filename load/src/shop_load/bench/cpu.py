"""What a checkout costs the shop in CPU, from its processes' own counters (Linux's `/proc/<pid>/stat`).

The shop is split into parts (storefront, payment's replicas together, catalog, users, PostgreSQL's postmaster with
its backends, `make run`'s launcher), each named by the pids of its root processes. A part's CPU time is its roots'
own user + system time, every live descendant's, and the time of the children each of them reaped (`cutime`,
`cstime`: a backend that served a connection and exited still counts); a descendant that is another part's root
(the launcher's services) is left, with its own tree, to that part. A burst's cost is the difference of two
snapshots around it, less what the same parts spend idle over as many seconds (measured just before), per captured
checkout.
"""

import contextlib
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

Parts = Mapping[str, Sequence[int]]  # root pids by part
Seconds = Mapping[str, float]  # CPU seconds (or seconds per second) by part
TICKS = os.sysconf("SC_CLK_TCK")


def seconds(parts: Parts, proc: Path = Path("/proc")) -> dict[str, float]:
    """Each part's CPU seconds now: its roots' trees, each without the trees of the other parts' roots."""
    table: dict[int, tuple[int, float]] = {}  # every process: its parent, its own and its reaped children's seconds
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # it ended while it was read
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid (3, 4) ... utime to cstime (14 to 17)
            table[int(stat.parent.name)] = (int(fields[1]), sum(map(int, fields[11:15])) / TICKS)

    def tree(pid: int) -> float:
        below = (c for c, (parent, _) in table.items() if parent == pid and not any(c in p for p in parts.values()))
        return table[pid][1] + sum(map(tree, below)) if pid in table else 0.0

    return {name: sum(map(tree, pids)) for name, pids in parts.items()}


def less_idle(before: Seconds, after: Seconds, idle_per_second: Seconds, elapsed: float) -> dict[str, float]:
    """Each part's CPU seconds from `before` to `after`, less what it spends idle in `elapsed` seconds."""
    return {name: after[name] - before[name] - idle_per_second[name] * elapsed for name in after}


def per_captured(used: Seconds, captured: int) -> dict[str, float] | None:
    """CPU milliseconds per captured checkout, the whole shop's (`total`) first; None when nothing was captured or
    nothing measured."""
    spent = {"total": sum(used.values()), **used}
    return {name: 1000 * value / captured for name, value in spent.items()} if captured and used else None


def postmaster(pgdata: Path) -> tuple[int, int] | None:
    """The pid and port of the PostgreSQL server running on `pgdata`, from the `postmaster.pid` it keeps there
    (its first and fourth lines); None when no server runs there."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def parts(roots: Iterable[tuple[str, int]], pgdata: Path) -> dict[str, list[int]]:
    """Root pids by part, of (part, pid) pairs, and PostgreSQL's postmaster when one runs on `pgdata`; none where
    there is no `/proc` to read them in."""
    server = postmaster(pgdata)
    pairs = [*roots, *([("postgresql", server[0])] if server else [])]
    return {name: [pid for n, pid in pairs if n == name] for name, _ in pairs} if Path("/proc/self").exists() else {}


class Meter:
    """A shop's parts measured over `idle_seconds` of idleness (on creation), then from then on until `stop`."""

    def __init__(self, parts: Parts, idle_seconds: float) -> None:
        self.parts, began, idle = parts, time.monotonic(), seconds(parts)
        time.sleep(idle_seconds)
        self.start, self.began = seconds(parts), time.monotonic()
        self.idle = {name: (self.start[name] - idle[name]) / (self.began - began) for name in parts}

    def stop(self) -> dict[str, float]:
        """Each part's CPU seconds since the idle window ended, less its idle CPU over as long."""
        return less_idle(self.start, seconds(self.parts), self.idle, time.monotonic() - self.began)
