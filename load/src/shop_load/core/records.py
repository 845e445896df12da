"""The raw records a run collects and its report is built from: the marks of what happened to the pods, every
request and checkout of the customers, the servers' counter and ReplicaSet samples, each invariant's result, and
what wrk saw (`WrkResult`; `WrkBrowsing`, the drill's browsing, a run of it per phase). Every time is in seconds
since the run started.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field


@dataclass(frozen=True, slots=True)
class Mark:
    t: float
    kind: str
    pod: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    t: float
    """When it was sent."""
    endpoint: str
    status: int | None
    """None: no answer (connection error or timeout)."""
    latency_ms: float
    ok: bool
    """An answer the shop should give: 2xx, a declined card (402) or insufficient stock (409)."""
    error: str | None = None


FINAL_OUTCOMES = frozenset({"captured", "declined", "out_of_stock"})
"""A checkout's outcomes that are the shop's final answer (the others: failed, rejected, pending)."""


@dataclass(slots=True)
class Checkout:
    """One customer's payment attempt under one Idempotency-Key, however many requests it took."""

    key: str
    customer: int
    body: dict[str, Any]
    t: float
    outcome: str = "pending"
    """captured, declined, out_of_stock (final answers), failed (gave up), rejected (refused request)."""
    status: int | None = None
    payment_id: str | None = None
    attempts: int = 0
    finished: float | None = None
    """When the customer got the final answer or gave up."""


@dataclass(frozen=True, slots=True)
class CounterSample:
    """A server's request counts by status, cumulative since the first sample."""

    t: float
    counts: dict[int, float]


@dataclass(frozen=True, slots=True)
class ReplicaSetSample:
    t: float
    name: str
    desired: int
    ready: int
    available: int


@dataclass(frozen=True, slots=True)
class InvariantResult:
    name: str
    description: str
    ok: bool
    detail: str
    problems: list[str] = field(default_factory=list)


MAX_PROBLEMS = 20
"""Problems listed per invariant; the count says how many there were in all."""


def judged(name: str, description: str, problems: list[str], detail: str) -> InvariantResult:
    """Holds (`detail` says what held) when there is no problem; else fails with their count and the first."""
    if not problems:
        return InvariantResult(name, description, True, detail)
    failed = f"{len(problems)} violation(s): {problems[0]}"
    return InvariantResult(name, description, False, failed, problems[:MAX_PROBLEMS])


SATURATED_CPU_PER_THREAD = 0.9
"""A wrk thread busy this fraction of the wall time was itself the bottleneck (one thread uses one core at most)."""


class WrkResult(BaseModel):
    """One wrk run: what it sent and saw, as wrk counted it (servers' own metrics may count more: requests still
    in flight when wrk stops are not in `requests`). `throughput` and `generator_saturated` are computed from the
    rest: written into a report, ignored when it is read."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    requests: int
    """Responses received (any status)."""
    seconds: float
    """Wall time of the run as wrk measured it."""
    statuses: dict[int, int]
    socket_errors: int
    """Connect, read and write errors: connections refused, reset or closed mid-request."""
    timeouts: int
    """Responses that came later than the run's `timeout_seconds` (their latency is not in the percentiles)."""
    generator_cpu_seconds: float
    """CPU time (user + system) wrk itself used."""
    p50_ms: float | None = None
    """None: no answer in time (the percentiles of a browsing's segments do not add up: there, None too)."""
    p99_ms: float | None = None
    max_ms: float | None = None
    threads: int = 1
    connections: int = 0
    retry_after_503: int = 0
    """503 answers that carried a Retry-After header."""
    bare_503: int = 0
    """503 answers without one."""
    extra: dict[str, Any] = Field(default_factory=dict, exclude=True)
    """Anything else the script reported (left out of reports)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def throughput(self) -> float:
        """Responses per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def generator_saturated(self) -> bool:
        """wrk itself was the bottleneck: its threads were busy at least 90 % of the run."""
        busy = self.generator_cpu_seconds / self.seconds / self.threads if self.seconds > 0 else 0.0
        return busy >= SATURATED_CPU_PER_THREAD

    def count(self, *statuses: int) -> int:
        return sum(self.statuses.get(status, 0) for status in statuses)


class WrkSegment(BaseModel):
    """One run of wrk, for one phase of the drill; `result` None when wrk gave none (`error` says why)."""

    phase: str
    start_s: float
    end_s: float | None = None
    result: WrkResult | None = None
    error: str | None = None


class WrkBrowsing(WrkResult):
    """The drill's browsing: wrk at `rate` requests/s over `paths` paths of `url`, one segment per phase; its figures
    are the segments' added up (percentiles do not add up: they are the segments' own)."""

    generator: Literal["wrk"] = "wrk"
    url: str
    rate: float
    paths: int
    segments: list[WrkSegment]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def generator_saturated(self) -> bool:
        """wrk was the bottleneck in one segment at least."""
        return any(segment.result is not None and segment.result.generator_saturated for segment in self.segments)
