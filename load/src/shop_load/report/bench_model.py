"""The bench's report (`make bench --json`): each measurement next to its ceiling, each burst of the sale, and the
verdict on every bar the bench holds the shop to, with its figures. Statuses are by HTTP status code.

The bars (`Bar`): catalog's and storefront's reads at a share of the bare ceiling; in each burst of the sale, no 5xx
but 503, no answer over the bound, payment ready throughout and the invariants holding afterwards; in the first
burst enough captured per second; in the larger ones every 503 with Retry-After and no fewer captured per second
than in the first.
"""

from typing import Literal

from shop_load.core.records import InvariantResult
from shop_load.report.model import Model, Report

Bar = Literal[
    "catalog-read-ratio",
    "storefront-read-ratio",
    "sale-no-5xx-but-503",
    "sale-answer-bound",
    "sale-captured-rate",
    "sale-retry-after",
    "sale-captured-not-lower",
    "sale-payment-ready",
    "sale-invariants",
]


class Measurement(Model):
    """One run of a load generator against one target: `ok` the answers with the expected status (transactions, for
    pgbench) and `throughput` those per second, latency as the generator saw it, every status as the target counted
    it (`statuses_from`: its own /metrics, or the generator for a target without metrics), `errors` everything
    else (other statuses, socket errors, timeouts, failed transactions). `ratio` is `throughput` over that of
    `ceiling`, the measurement of the same run it is held against. `generator_saturated`: the generator's threads
    were busy 90 % of the run or more, so the generator, not the target, set the pace."""

    name: str
    generator: Literal["wrk", "pgbench"]
    connections: int
    threads: int = 1
    seconds: float
    requests: int
    ok: int
    throughput: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    statuses: dict[int, int]
    statuses_from: Literal["server metrics", "wrk", "pgbench"]
    errors: int
    socket_errors: int = 0
    timeouts: int = 0
    failed: int = 0
    retry_after_503: int = 0
    bare_503: int = 0
    generator_cpu_seconds: float
    generator_saturated: bool
    ceiling: str | None = None
    ratio: float | None = None

    @property
    def generator_cpu_fraction(self) -> float:
        """The generator's CPU time per wall second per thread."""
        return self.generator_cpu_seconds / self.seconds / self.threads if self.seconds else 0.0


class Probe(Model):
    """One service's `/ready` polled during a burst: answers other than 200 (`not_ready`), no answer within 1 s
    (`no_answer`), the first of either; its resident memory when the watch began (the cold process) and at most."""

    polls: int = 0
    not_ready: int = 0
    no_answer: int = 0
    first_failure: str | None = None
    rss_first_bytes: int | None = None
    rss_peak_bytes: int | None = None

    @property
    def flips(self) -> int:
        return self.not_ready + self.no_answer


class Burst(Model):
    """One burst of the sale: `connections` concurrent checkouts for `seconds` after a cold start (`cold_start_s`
    from the services' start until all were ready; None: a shop already running), browsing beside them at
    `browse_rate`, a refused checkout sent again after its Retry-After when `honour_retry_after`. `captured` from
    payment's `shop_payments_total` during the burst, `captured_after` once the shop had answered everything;
    `*_statuses` from the services' own /metrics (`checkout`, `browse`: wrk's view); `payments` the burst's payments
    in payment's database by status, after the invariants finished the pending ones. `cpu_ms_per_captured`: the
    CPU milliseconds the shop spent per captured checkout during the burst (`shop_load.bench.cpu`), in all
    (`total`) and by part, less what the same parts spent idle (`cpu_idle_ms_per_second`, measured just before);
    None where the shop's processes are not known or nothing was captured."""

    connections: int
    seconds: float
    cold_start_s: float | None
    browse_rate: float
    honour_retry_after: bool
    checkout: Measurement
    browse: Measurement | None
    captured: int
    captured_per_second: float
    captured_after: int
    statuses_from: Literal["server metrics"] = "server metrics"
    checkout_statuses: dict[int, int]
    browse_statuses: dict[int, int]
    payment_statuses: dict[int, int]
    readiness: dict[str, Probe]
    payments: dict[str, int] = {}
    invariants: list[InvariantResult] = []
    cpu_ms_per_captured: dict[str, float] | None = None
    cpu_idle_ms_per_second: dict[str, float] = {}


class Verdict(Model):
    """One bar, PASS (`ok`) or FAIL, with the figures in `text`; `burst` the connections of the burst it is about."""

    bar: Bar
    burst: int | None = None
    ok: bool
    text: str


class BenchReport(Report):
    """A bench: `cores` of the machine, the reads' and writes' `connections` and recorded `seconds` each, the
    `measurements` (ceilings first), the sale's `bursts`, the `verdicts` on its bars and `notes`."""

    kind: Literal["bench"] = "bench"
    cores: int | None
    connections: int
    seconds: float
    measurements: list[Measurement] = []
    bursts: list[Burst] = []
    verdicts: list[Verdict] = []
    notes: list[str] = []

    @property
    def invariants_failed(self) -> bool:
        return any(not result.ok for burst in self.bursts for result in burst.invariants)
