"""The drill on its time axis, from the raw records; pure functions: the faulted pod's story from the marks, a
server's counts between two instants, one row per second of the load, and the checkout's latency before, during
and after the fault.
"""

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from shop_load.core.customers import Shoppers
from shop_load.core.records import CounterSample, Mark, RequestRecord
from shop_load.report.model import Latency, Phases, Second, Timeline

MARK_LABELS: Mapping[str, str] = {
    "injected": "fault injected",
    "unready": "unready",
    "readiness_failed": "readiness probe failed",
    "liveness_failed": "liveness failed",
    "killing": "killed by the kubelet",
    "oom_killed": "OOMKilled",
    "terminated": "container terminated",
    "restarted": "restarted",
    "ready_again": "Ready again",
    "fault_cleared": "fault cleared by the drill",
    "process_gone": "process gone",
}
"""The pod events of the timeline, in the order of the article's story; `replicaset` samples are not marks."""

CHECKOUT_ENDPOINT = "POST /api/payments"
"""Latency before/during/after is the checkout's: the request the fault is about."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def first_mark(marks: Iterable[Mark], kind: str, *, after: float = -math.inf, pod: str | None = None) -> Mark | None:
    found = [m for m in marks if m.kind == kind and m.t >= after and (pod is None or m.pod in (pod, None))]
    return min(found, key=lambda m: m.t) if found else None


def timeline(marks: Sequence[Mark], target_pod: str | None) -> Timeline:
    """Seconds since start of each step of the story for the faulted pod (the first one after the injection).

    Ready again is the recovery: the first Ready after the restart or after the drill cleared the fault when there
    was one, else after the pod went unready (a readiness flap while the fault is still in the pod is not it)."""
    injected = first_mark(marks, "injected")
    start = injected.t if injected else 0.0
    found = {kind: first_mark(marks, kind, after=start, pod=target_pod) for kind in Timeline.model_fields}
    anchors = [mark.t for kind in ("restarted", "fault_cleared") if (mark := found[kind]) is not None]
    went = max(anchors) if anchors else (found["unready"].t if found["unready"] is not None else None)
    found["ready_again"] = None if went is None else first_mark(marks, "ready_again", after=went, pod=target_pod)
    return Timeline(**{kind: rounded(mark.t, 2) if mark else None for kind, mark in found.items()})


def cumulative_at(samples: Sequence[CounterSample], t: float) -> dict[int, float] | None:
    """The counts at `t`, linear between the samples around it; None outside the sampled time."""
    if not samples or t < samples[0].t or t > samples[-1].t:
        return None
    index = bisect.bisect_left([sample.t for sample in samples], t)
    after = samples[index]
    if after.t == t or index == 0:
        return dict(after.counts)
    before = samples[index - 1]
    share = (t - before.t) / (after.t - before.t)
    old, new = defaultdict(float, before.counts), defaultdict(float, after.counts)  # a status not counted yet: 0
    return {status: old[status] + share * (new[status] - old[status]) for status in old.keys() | new.keys()}


def counts_between(samples: Sequence[CounterSample], start: float, stop: float) -> dict[int, float] | None:
    """What the server counted between `start` and `stop` (clamped to the sampled time), by status."""
    if not samples:
        return None
    start, stop = max(start, samples[0].t), min(stop, samples[-1].t)
    first, last = cumulative_at(samples, start), cumulative_at(samples, stop)
    if first is None or last is None or stop <= start:
        return None
    old, new = defaultdict(float, first), defaultdict(float, last)
    return {status: new[status] - old[status] for status in old.keys() | new.keys()}


def ok_failed(counts: Mapping[int, float]) -> tuple[float, float]:
    ok = sum(n for status, n in counts.items() if status < 400)
    return ok, sum(counts.values()) - ok


def per_second(
    shoppers: Shoppers, end: float, browse: Sequence[CounterSample] = (), client_lag: Sequence[tuple[float, float]] = ()
) -> list[Second]:
    """One row per second: every request of the customers (`sent`, `succeeded`, `failed`, latencies), the
    checkouts (started, not started at the concurrency bound, `POST /api/payments` tries by answer), the browses as
    the storefront counted them (None where it was not sampled; a second half covered counts) and the drill's own
    event-loop lag."""
    buckets: defaultdict[int, list[RequestRecord]] = defaultdict(list)
    for record in shoppers.records:
        buckets[int(record.t)].append(record)
    started, skipped = Counter(int(c.t) for c in shoppers.checkouts), Counter(map(int, shoppers.not_started))
    missed = Counter(map(int, shoppers.late))
    lag: dict[int, float] = {}  # the most of each second
    for t, ms in client_lag:
        lag[int(t)] = max(lag.get(int(t), 0.0), ms)
    rows = []
    for second in range(max(0, math.ceil(end))):
        bucket = buckets[second]
        tries = [r for r in bucket if r.endpoint == CHECKOUT_ENDPOINT]
        counted = None  # a second half covered by the samples counts
        if browse and min(second + 1, browse[-1].t) - max(second, browse[0].t) >= 0.5:
            counted = counts_between(browse, second, second + 1)
        ok, failed = ok_failed(counted) if counted is not None else (None, None)
        rows.append(
            Second(
                second=second,
                sent=len(bucket),
                succeeded=sum(r.ok for r in bucket),
                failed=sum(not r.ok for r in bucket),
                p50_ms=quantile(bucket, 50),
                p99_ms=quantile(bucket, 99),
                checkouts_started=started[second],
                checkouts_not_started=skipped[second],
                checkouts_late=missed[second],
                checkout_requests=len(tries),
                checkout_ok=sum(r.ok for r in tries),
                checkout_failed=sum(not r.ok for r in tries),
                checkout_p50_ms=quantile(tries, 50),
                checkout_p99_ms=quantile(tries, 99),
                browse_ok=rounded(ok),
                browse_failed=rounded(failed),
                client_lag_ms=rounded(lag.get(second)),
            )
        )
    return rows


def quantile(records: Sequence[RequestRecord], q: float) -> float | None:
    """The `q` percentile of the records' latency in ms, rounded."""
    return rounded(percentile([r.latency_ms for r in records], q))


def latency_phases(records: Sequence[RequestRecord], injected: float | None, recovered: float | None) -> Phases:
    """p50/p99 of the checkout requests (`POST /api/payments`, whatever their answer, a time-out included) sent
    before the injection, between it and recovery, and after recovery."""
    start, stop = (math.inf if t is None else t for t in (injected, recovered))
    phases: dict[str, list[RequestRecord]] = {"before": [], "during": [], "after": []}
    for record in records:
        if record.endpoint == CHECKOUT_ENDPOINT:
            phases["before" if record.t < start else "during" if record.t < stop else "after"].append(record)
    return Phases(**{name: latency(rows) for name, rows in phases.items()})


def latency(records: Sequence[RequestRecord]) -> Latency:
    """How many of the records there are, how many failed, and their latency's p50 and p99."""
    failed = sum(not r.ok for r in records)
    return Latency(requests=len(records), failed=failed, p50_ms=quantile(records, 50), p99_ms=quantile(records, 99))
