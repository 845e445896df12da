"""The reports' one model: what the drill (on every target, containers included) and the bench write as JSON,
versioned, validated when read, its JSON Schema published in `docs/report.schema.json` (`make report-schema`).

Every time is in seconds since the run started; `_ms` is milliseconds, `_s` seconds. None means not measured (no
request in that second or phase, no cluster, no invariants checked).
"""

from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shop_load.core.drill_args import DrillConfig
from shop_load.core.records import InvariantResult, Mark, ReplicaSetSample, WrkBrowsing

REPORT_VERSION: Final = 3
"""Goes up whenever a field changes meaning, appears or goes away; a reader refuses another version."""


class Model(BaseModel):
    """A part of a report: every field declared, none extra."""

    model_config = ConfigDict(extra="forbid")


class Report(Model):
    """What every report starts with: its version."""

    version: Literal[3] = REPORT_VERSION


class ReportError(Exception):
    """A file that is not a report this code reads (another version, another kind, not JSON); says which."""


R = TypeVar("R", bound=Report)


def read_report(path: Path, kind: type[R]) -> R:
    """The report in `path`, validated; a `ReportError` naming the file and its first problem when it is not one of
    this version and kind (a report of another version fails on `version`, the first field)."""
    try:
        return kind.model_validate_json(path.read_text())
    except ValidationError as exc:
        where, problem = ".".join(map(str, exc.errors()[0]["loc"])), exc.errors()[0]["msg"]
        raise ReportError(f"{path}: not a {kind.__name__} of version {REPORT_VERSION} ({where}: {problem})") from None


class Settings(DrillConfig):
    """The drill's options (its chaos token left out), and what they came to once the target was chosen: `mode`
    local, kubernetes or containers, `fault_phase_s` the longest the fault phase could last, `fault_body` what the
    chaos endpoint was sent, `orchestrator` what restarts a dead payment process (kubernetes, container engine,
    make run, or None), `payment_urls` the local payment replicas; `browse_connections` is wrk's, resolved."""

    chaos_token: str | None = Field(None, exclude=True)
    mode: str
    fault_phase_s: float
    fault_body: dict[str, Any] | None
    orchestrator: str | None
    payment_urls: list[str]


class CheckoutLoad(Model):
    """Checkouts asked for and started, the ones a tick found the in-flight bound reached for (`not_started`), and
    the `POST /api/payments` they took (one per checkout, the rest retries with the same key)."""

    target_per_second: float
    started: int
    per_second: float
    not_started: int
    max_in_flight: int
    requests: int
    retries: int
    answered_first_try: int


class Client(Model):
    """The drill's own process while the load ran: CPU, how late its event loop woke up, ticks it missed. A busy
    machine makes the client late, and then its latencies include that lateness."""

    cpu_seconds: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    late_ticks: int


class ServedBrowses(Model):
    """The browses as the storefront counted them (`source`), by status."""

    source: str
    requests: int
    ok: int
    failed: int
    per_second: float
    statuses: dict[str, int]


class Browses(Model):
    """The browsing asked for, as the storefront served it (None: not sampled) and as wrk saw it."""

    target_per_second: float
    server: ServedBrowses | None
    wrk: WrkBrowsing | None


class Load(Model):
    """The load the drill ran between `window_s` (when the customers started and stopped)."""

    window_s: tuple[float, float]
    seconds: float
    checkouts: CheckoutLoad
    client: Client
    browses: Browses | None


class Timeline(Model):
    """When each step of the faulted pod's story happened (the first after the injection); None: not seen.
    `ready_again` is the recovery."""

    injected: float | None = None
    unready: float | None = None
    liveness_failed: float | None = None
    oom_killed: float | None = None
    killing: float | None = None
    restarted: float | None = None
    fault_cleared: float | None = None
    ready_again: float | None = None


class EndpointCounts(Model):
    """The customers' requests to one endpoint, by status (or the error of a request without an answer)."""

    sent: int
    succeeded: int
    failed: int
    statuses: dict[str, int]


class Second(Model):
    """One second of the load: every request of the customers, the checkouts started and not started at the bound
    (or missed, the drill late), the `POST /api/payments` tries by answer, the browses the storefront counted
    (None where it was not sampled) and the drill's own event-loop lag."""

    second: int
    sent: int
    succeeded: int
    failed: int
    p50_ms: float | None
    p99_ms: float | None
    checkouts_started: int
    checkouts_not_started: int
    checkouts_late: int
    checkout_requests: int
    checkout_ok: int
    checkout_failed: int
    checkout_p50_ms: float | None
    checkout_p99_ms: float | None
    browse_ok: float | None
    browse_failed: float | None
    client_lag_ms: float | None


class Requests(EndpointCounts):
    """Every request of the customers, by status; `by_endpoint` the same of each endpoint, `per_second` second by
    second."""

    by_endpoint: dict[str, EndpointCounts]
    per_second: list[Second]


class Checkouts(Model):
    """The checkouts by outcome: captured, declined, out of stock (the shop's answers), failed (the customer gave
    up), rejected (a refused request), pending; `success_rate` the share answered."""

    total: int
    captured: int
    declined: int
    out_of_stock: int
    failed: int
    rejected: int
    pending: int
    retried: int
    success_rate: float | None


class Latency(Model):
    """Requests, failures and latency of one phase (None: wrk gave no result for it)."""

    requests: int | None = None
    failed: int | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None


class Phases(Model):
    """Before the injection, from it until Ready again, after that."""

    before: Latency
    during: Latency
    after: Latency


class Autoscaler(Model):
    """payment's HorizontalPodAutoscaler as the drill ended."""

    name: str
    current_replicas: int
    desired_replicas: int
    min_replicas: int
    max_replicas: int


class DrillReport(Report):
    """A drill: the load it ran, what the customers saw (`checkouts`; `latency_ms` of the checkout's requests,
    `browse_latency_ms` wrk's), what happened to the target (`timeline`, `marks`, `restarts`, `replicasets`,
    `autoscaler`) and the invariants checked after it (`ok`: all hold; None: not checked)."""

    kind: Literal["drill"] = "drill"
    started_at: str
    duration_s: float
    settings: Settings
    load: Load
    target: str | None
    timeline: Timeline
    restarts: int | None
    notes: list[str]
    requests: Requests
    checkouts: Checkouts
    latency_ms: Phases
    browse_latency_ms: Phases | None
    marks: list[Mark]
    replicasets: list[ReplicaSetSample]
    autoscaler: Autoscaler | None
    invariants: list[InvariantResult] | None
    ok: bool | None
