"""The drill's report: the load it ran, what the customers saw and what happened to the pods, from the raw
records; pure functions.

Every time is in seconds since the drill started (one monotonic clock for requests, server samples and pod events
alike).
"""

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_VERSION = 2

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

TIMELINE_KEYS = ("injected", "unready", "liveness_failed", "oom_killed", "killing", "restarted", "ready_again")
TIMELINE_ORDER = (*TIMELINE_KEYS[:-1], "fault_cleared", "ready_again")
CHECKOUT_ENDPOINT = "POST /api/payments"
"""Latency before/during/after is the checkout's: the request the fault is about."""


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


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def first_mark(marks: Iterable[Mark], kind: str, *, after: float = -math.inf, pod: str | None = None) -> Mark | None:
    found = [m for m in marks if m.kind == kind and m.t >= after and (pod is None or m.pod in (pod, None))]
    return min(found, key=lambda m: m.t) if found else None


def timeline(marks: Sequence[Mark], target_pod: str | None) -> dict[str, float | None]:
    """Seconds since start of each step of the story for the faulted pod (the first one after the injection).

    Ready again is the recovery: the first Ready after the restart or after the drill cleared the fault when there
    was one, else after the pod went unready (a readiness flap while the fault is still in the pod is not it)."""
    injected = first_mark(marks, "injected")
    start = injected.t if injected else 0.0
    found: dict[str, Mark | None] = {}
    for kind in TIMELINE_ORDER:
        found[kind] = first_mark(marks, kind, after=start, pod=target_pod)
    anchors = [mark.t for kind in ("restarted", "fault_cleared") if (mark := found[kind]) is not None]
    went = max(anchors) if anchors else (found["unready"].t if found["unready"] is not None else None)
    found["ready_again"] = None if went is None else first_mark(marks, "ready_again", after=went, pod=target_pod)
    steps: dict[str, float | None] = {kind: _round(mark.t, 2) if mark else None for kind, mark in found.items()}
    if injected is None:
        steps["injected"] = None
    return steps


def recovered_at(steps: Mapping[str, float | None]) -> float | None:
    return steps.get("ready_again")


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
    statuses = before.counts.keys() | after.counts.keys()
    return {
        status: before.counts.get(status, 0.0)
        + share * (after.counts.get(status, 0.0) - before.counts.get(status, 0.0))
        for status in statuses
    }


def counts_between(samples: Sequence[CounterSample], start: float, stop: float) -> dict[int, float] | None:
    """What the server counted between `start` and `stop` (clamped to the sampled time), by status."""
    if not samples:
        return None
    start, stop = max(start, samples[0].t), min(stop, samples[-1].t)
    first, last = cumulative_at(samples, start), cumulative_at(samples, stop)
    if first is None or last is None or stop <= start:
        return None
    return {status: last.get(status, 0.0) - first.get(status, 0.0) for status in first.keys() | last.keys()}


def _ok_failed(counts: Mapping[int, float]) -> tuple[float, float]:
    ok = sum(n for status, n in counts.items() if status < 400)
    return ok, sum(counts.values()) - ok


def per_second(
    records: Sequence[RequestRecord],
    end: float,
    *,
    checkouts: Sequence[Checkout] = (),
    not_started: Sequence[float] = (),
    browse: Sequence[CounterSample] | None = None,
    late: Sequence[float] = (),
    client_lag: Sequence[tuple[float, float]] = (),
) -> list[dict[str, Any]]:
    """One row per second: every request of the customers (`sent`, `succeeded`, `failed`, latencies), the
    checkouts (started, not started at the concurrency bound, `POST /api/payments` tries by answer) and the
    browses as the storefront counted them (None where it was not sampled; a second half covered counts)."""
    seconds = max(0, math.ceil(end))
    buckets: list[list[RequestRecord]] = [[] for _ in range(seconds)]
    for record in records:
        index = int(record.t)
        if 0 <= index < seconds:
            buckets[index].append(record)
    started, skipped, missed = [0] * seconds, [0] * seconds, [0] * seconds
    marks = [(c.t, started) for c in checkouts] + [(t, skipped) for t in not_started] + [(t, missed) for t in late]
    for t, counts in marks:
        if 0 <= int(t) < seconds:
            counts[int(t)] += 1
    lag: list[float | None] = [None] * seconds
    for t, ms in client_lag:
        if 0 <= int(t) < seconds:
            lag[int(t)] = max(lag[int(t)] or 0.0, ms)
    rows = []
    for second, bucket in enumerate(buckets):
        latencies = [r.latency_ms for r in bucket]
        tries = [r for r in bucket if r.endpoint == CHECKOUT_ENDPOINT]
        checkout = [r.latency_ms for r in tries]
        browse_ok = browse_failed = None
        if browse:
            window = (max(second, browse[0].t), min(second + 1, browse[-1].t))
            counted = counts_between(browse, second, second + 1) if window[1] - window[0] >= 0.5 else None
            if counted is not None:
                ok, failed = _ok_failed(counted)
                browse_ok, browse_failed = round(ok, 1), round(failed, 1)
        rows.append(
            {
                "second": second,
                "sent": len(bucket),
                "succeeded": sum(r.ok for r in bucket),
                "failed": sum(not r.ok for r in bucket),
                "p50_ms": _round(percentile(latencies, 50)),
                "p99_ms": _round(percentile(latencies, 99)),
                "checkouts_started": started[second],
                "checkouts_not_started": skipped[second],
                "checkouts_late": missed[second],
                "checkout_requests": len(tries),
                "checkout_ok": sum(r.ok for r in tries),
                "checkout_failed": sum(not r.ok for r in tries),
                "checkout_p50_ms": _round(percentile(checkout, 50)),
                "checkout_p99_ms": _round(percentile(checkout, 99)),
                "browse_ok": browse_ok,
                "browse_failed": browse_failed,
                "client_lag_ms": _round(lag[second]),
            }
        )
    return rows


def latency_phases(records: Sequence[RequestRecord], injected: float | None, recovered: float | None) -> dict[str, Any]:
    """p50/p99 of the checkout requests (`POST /api/payments`, whatever their answer, a time-out included) sent
    before the injection, between it and recovery, and after recovery."""
    start = injected if injected is not None else math.inf
    stop = recovered if recovered is not None else math.inf
    phases: dict[str, list[RequestRecord]] = {"before": [], "during": [], "after": []}
    for record in records:
        if record.endpoint != CHECKOUT_ENDPOINT:
            continue
        phase = "before" if record.t < start else "during" if record.t < stop else "after"
        phases[phase].append(record)
    result = {}
    for name, bucket in phases.items():
        latencies = [r.latency_ms for r in bucket]
        result[name] = {
            "requests": len(bucket),
            "failed": sum(not r.ok for r in bucket),
            "p50_ms": _round(percentile(latencies, 50)),
            "p99_ms": _round(percentile(latencies, 99)),
        }
    return result


def checkout_summary(checkouts: Sequence[Checkout]) -> dict[str, Any]:
    counts = {name: 0 for name in ("captured", "declined", "out_of_stock", "failed", "rejected", "pending")}
    for checkout in checkouts:
        counts[checkout.outcome] = counts.get(checkout.outcome, 0) + 1
    answered = counts["captured"] + counts["declined"] + counts["out_of_stock"]
    total = len(checkouts)
    return {
        "total": total,
        **counts,
        "retried": sum(c.attempts > 1 for c in checkouts),
        "success_rate": round(answered / total, 4) if total else None,
    }


def by_endpoint(records: Sequence[RequestRecord]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for endpoint in sorted({r.endpoint for r in records}):
        rows = [r for r in records if r.endpoint == endpoint]
        statuses: dict[str, int] = {}
        for r in rows:
            key = str(r.status) if r.status is not None else (r.error or "no answer")
            statuses[key] = statuses.get(key, 0) + 1
        result[endpoint] = {
            "sent": len(rows),
            "succeeded": sum(r.ok for r in rows),
            "failed": sum(not r.ok for r in rows),
            "statuses": dict(sorted(statuses.items())),
        }
    return result


ANSWERED_OUTCOMES = frozenset({"captured", "declined", "out_of_stock"})


def load_summary(
    settings: Mapping[str, Any],
    records: Sequence[RequestRecord],
    checkouts: Sequence[Checkout],
    not_started: Sequence[float],
    window: tuple[float, float],
    browsing: Mapping[str, Any] | None,
    browse_samples: Sequence[CounterSample] | None,
    client: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The load the drill ran, asked for and achieved, between `window` (when the customers started and stopped):
    checkouts from the drill's own customers, browses as the storefront counted them and as wrk saw them."""
    start, stop = window
    seconds = max(stop - start, 1e-9)
    tries = [r for r in records if r.endpoint == CHECKOUT_ENDPOINT]
    load: dict[str, Any] = {
        "window_s": [round(start, 2), round(stop, 2)],
        "seconds": round(stop - start, 2),
        "checkouts": {
            "target_per_second": settings.get("rate"),
            "started": len(checkouts),
            "per_second": round(len(checkouts) / seconds, 1),
            "not_started": len(not_started),
            "max_in_flight": settings.get("max_in_flight"),
            "requests": len(tries),
            "retries": len(tries) - len(checkouts),
            "answered_first_try": sum(c.attempts == 1 and c.outcome in ANSWERED_OUTCOMES for c in checkouts),
        },
        "client": dict(client) if client is not None else None,
        "browses": None,
    }
    if browsing is None and not browse_samples:
        return load
    served = counts_between(browse_samples or (), start, stop)
    server: dict[str, Any] | None = None
    if served is not None:
        ok, failed = _ok_failed(served)
        server = {
            "source": "storefront http_requests_total{handler=/api/{path:path},method=GET}, sampled every second",
            "requests": round(ok + failed),
            "ok": round(ok),
            "failed": round(failed),
            "per_second": round((ok + failed) / seconds, 1),
            "statuses": {str(status): round(n) for status, n in sorted(served.items()) if round(n)},
        }
    load["browses"] = {"target_per_second": settings.get("browse_rate"), "server": server, "wrk": browsing}
    return load


def client_summary(
    window: tuple[float, float],
    late: Sequence[float],
    client_lag: Sequence[tuple[float, float]],
    cpu_seconds: float | None,
) -> dict[str, Any]:
    """The drill's own process while the load ran: CPU, how late its event loop woke up, ticks it missed. A busy
    machine makes the client late, and then its latencies include that lateness."""
    lags = [ms for t, ms in client_lag if window[0] <= t <= window[1]]
    return {
        "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 2),
        "lag_p99_ms": _round(percentile(lags, 99)),
        "lag_max_ms": _round(max(lags, default=None)),
        "late_ticks": len(late),
    }


def browse_latency(browsing: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """wrk's figures of each phase (before the fault, during it, after recovery)."""
    if not browsing:
        return None
    phases: dict[str, Any] = {}
    for segment in browsing.get("segments", []):
        failed = sum(n for status, n in segment.get("statuses", {}).items() if int(status) >= 400)
        phases[segment["phase"]] = {
            "requests": segment.get("requests"),
            "failed": failed + segment.get("socket_errors", 0) + segment.get("timeouts", 0)
            if "requests" in segment
            else None,
            "p50_ms": segment.get("p50_ms"),
            "p99_ms": segment.get("p99_ms"),
        }
    return phases


def build_report(
    *,
    settings: Mapping[str, Any],
    records: Sequence[RequestRecord],
    checkouts: Sequence[Checkout],
    marks: Sequence[Mark],
    replicasets: Sequence[ReplicaSetSample],
    invariants: Sequence[InvariantResult] | None,
    end: float,
    target_pod: str | None,
    restarts: int | None,
    notes: Sequence[str],
    started_at: str,
    not_started: Sequence[float] = (),
    load_window: tuple[float, float] | None = None,
    browsing: Mapping[str, Any] | None = None,
    browse_samples: Sequence[CounterSample] | None = None,
    late: Sequence[float] = (),
    client_lag: Sequence[tuple[float, float]] = (),
    client_cpu_seconds: float | None = None,
    autoscaler: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    steps = timeline(marks, target_pod)
    checked = list(invariants) if invariants is not None else None
    window = load_window or (min((c.t for c in checkouts), default=0.0), end)
    return {
        "version": REPORT_VERSION,
        "started_at": started_at,
        "duration_s": round(end, 2),
        "settings": dict(settings),
        "load": load_summary(
            settings,
            records,
            checkouts,
            not_started,
            window,
            browsing,
            browse_samples,
            client_summary(window, late, client_lag, client_cpu_seconds),
        ),
        "target": target_pod,
        "timeline": steps,
        "restarts": restarts,
        "notes": list(notes),
        "requests": {
            "sent": len(records),
            "succeeded": sum(r.ok for r in records),
            "failed": sum(not r.ok for r in records),
            "by_endpoint": by_endpoint(records),
            "per_second": per_second(
                records,
                end,
                checkouts=checkouts,
                not_started=not_started,
                browse=browse_samples,
                late=late,
                client_lag=client_lag,
            ),
        },
        "checkouts": checkout_summary(checkouts),
        "latency_ms": latency_phases(records, steps["injected"], recovered_at(steps)),
        "browse_latency_ms": browse_latency(browsing),
        "marks": [asdict(m) for m in sorted(marks, key=lambda m: m.t)],
        "replicasets": [asdict(s) for s in replicasets],
        "autoscaler": dict(autoscaler) if autoscaler is not None else None,
        "invariants": [asdict(i) for i in checked] if checked is not None else None,
        "ok": all(i.ok for i in checked) if checked is not None else None,
    }


# Text output


def _fmt_t(value: object) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "-"


def _fmt_ms(value: object) -> str:
    return f"{value:.0f} ms" if isinstance(value, int | float) else "-"


def _since(steps: Mapping[str, Any], kind: str) -> str:
    value, injected = steps.get(kind), steps.get("injected")
    if not isinstance(value, int | float):
        return "-"
    if isinstance(injected, int | float) and kind != "injected":
        return f"{value:.1f} s  (+{value - injected:.1f} s)"
    return f"{value:.1f} s"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(text.rstrip() for text in out)


def _per_s(value: object) -> str:
    return f"{value:g}/s" if isinstance(value, int | float) else "-"


def load_rows(load: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The load the drill asked for and what ran, one row per kind of traffic."""
    checkouts, browses = load["checkouts"], load.get("browses")
    seconds = load["seconds"]
    bound = (
        f"; {checkouts['not_started']} not started at the bound of {checkouts['max_in_flight']} in flight"
        if checkouts.get("not_started")
        else ""
    )
    rows = [
        (
            "checkouts started",
            _per_s(checkouts.get("target_per_second")),
            f"{checkouts['per_second']:g}/s: {checkouts['started']} in {seconds:.1f} s{bound}",
        ),
        (
            "  POST /api/payments sent",
            "",
            f"{checkouts['requests']}: one per checkout + {checkouts['retries']} retries with the same key",
        ),
    ]
    client = load.get("client") or {}
    if isinstance(cpu := client.get("cpu_seconds"), int | float) and seconds:
        lag = f", loop lag p99 {_fmt_ms(client.get('lag_p99_ms'))}, max {_fmt_ms(client.get('lag_max_ms'))}"
        late = f"; {client['late_ticks']} ticks missed late" if client.get("late_ticks") else ""
        rows.append(("  the drill's own client", "", f"CPU {cpu:.1f} s ({cpu / seconds:.0%} of a core){lag}{late}"))
    if browses is None:
        return rows
    server, generator = browses.get("server"), browses.get("wrk")
    if server is not None:
        shed = server["statuses"].get("503")
        rows.append(
            (
                "browses (storefront's count)",
                _per_s(browses.get("target_per_second")),
                f"{server['per_second']:g}/s: {server['requests']} answered, {server['ok']} ok, "
                f"{server['failed']} failed" + (f" (503: {shed})" if shed else ""),
            )
        )
    else:
        rows.append(("browses (storefront's count)", _per_s(browses.get("target_per_second")), "not sampled"))
    if generator:
        errors = [s.get("error") for s in generator.get("segments", []) if s.get("error")]
        rows.append(
            (
                "  wrk (the browsers)",
                f"{generator['connections']} conn.",
                f"{generator['requests']} answers in {generator['seconds']:.1f} s, {generator['socket_errors']} socket "
                f"errors, {generator['timeouts']} timeouts, wrk CPU {generator['generator_cpu_seconds']:.1f} s"
                + (f"; 503 without Retry-After: {generator['bare_503']}" if generator.get("bare_503") else "")
                + (" (SATURATED)" if generator.get("generator_saturated") else "")
                + (f"; {errors[0]}" if errors else ""),
            )
        )
    return rows


def summary(report: Mapping[str, Any]) -> str:
    settings, steps = report["settings"], report["timeline"]
    checkouts, requests, latency = report["checkouts"], report["requests"], report["latency_ms"]
    load = report.get("load")
    browse_rate = settings.get("browse_rate")
    title = (
        f"drill: profile {settings.get('profile')}, fault {settings.get('fault')}, mode {settings.get('mode')}, "
        f"{settings.get('rate')} checkouts/s"
        + (f" + {browse_rate} browses/s" if browse_rate else "")
        + f", {report['duration_s']:.0f} s"
    )
    orchestrator = settings.get("orchestrator")  # "kubernetes", "make run" (it restarts dead processes) or none
    kubelet = orchestrator in {True, "kubernetes"}  # True: a report of an older drill
    rows = [
        (MARK_LABELS.get(kind, kind), _since(steps, kind))
        for kind in steps
        if kubelet or kind not in {"oom_killed", "killing", "restarted"}
    ]
    restarts = report["restarts"]
    rows.append(("restarts", f"{restarts}" + ("" if orchestrator else " (no orchestrator)")))
    if hpa := report.get("autoscaler"):  # current/desired, min-max, read as the drill ended
        rows.append(
            (
                f"{hpa['name']} replicas (HPA)",
                f"{hpa['current_replicas']}/{hpa['desired_replicas']}, {hpa['min_replicas']}-{hpa['max_replicas']}",
            )
        )
    rate = checkouts["success_rate"]
    traffic = [
        ("requests sent", str(requests["sent"])),
        ("requests succeeded / failed", f"{requests['succeeded']} / {requests['failed']}"),
        ("checkouts", str(checkouts["total"])),
        (
            "  captured / declined / out of stock",
            f"{checkouts['captured']} / {checkouts['declined']} / {checkouts['out_of_stock']}",
        ),
        ("  failed (gave up) / rejected", f"{checkouts['failed']} / {checkouts['rejected']}"),
        ("  retried with the same key", str(checkouts["retried"])),
        ("checkout success rate", f"{rate * 100:.2f} %" if rate is not None else "-"),
    ]
    browse = report.get("browse_latency_ms") or {}
    phases = []
    for phase in ("before", "during", "after"):
        row = [
            phase,
            str(latency[phase]["requests"]),
            str(latency[phase]["failed"]),
            _fmt_ms(latency[phase]["p50_ms"]),
            _fmt_ms(latency[phase]["p99_ms"]),
        ]
        if browse:
            seen = browse.get(phase) or {}
            row += [
                str(seen.get("requests", "-")),
                str(seen.get("failed", "-")),
                _fmt_ms(seen.get("p50_ms")),
                _fmt_ms(seen.get("p99_ms")),
            ]
        phases.append(tuple(row))
    latency_header: tuple[str, ...] = ("latency", "checkout tries", "failed", "p50", "p99")
    if browse:
        latency_header += ("browses (wrk)", "failed", "p50", "p99")
    parts = [title, ""]
    if load is not None:
        parts += [table(load_rows(load), ("the load", "asked", "ran")), ""]
    parts += [
        table(rows, ("timeline (since start)", "")),
        "",
        table(traffic, ("what the customers saw", "")),
        "",
        table(phases, latency_header),
    ]
    if report["invariants"] is not None:
        invariant_rows = [("PASS" if i["ok"] else "FAIL", i["name"], i["detail"]) for i in report["invariants"]]
        parts += ["", table(invariant_rows, ("", "invariant", ""))]
    if report["notes"]:
        parts += ["", *(f"note: {note}" for note in report["notes"])]
    return "\n".join(parts)


def compare(reports: Sequence[Mapping[str, Any]]) -> str:
    """Side by side: one column per report (e.g. resilient vs fragile)."""

    def row(label: str, get: Any) -> list[str]:
        cells = [label]
        for report in reports:
            try:
                cells.append(get(report))
            except (KeyError, TypeError):
                cells.append("-")
        return cells

    def since_injection(kind: str) -> Any:
        def get(report: Mapping[str, Any]) -> str:
            steps = report["timeline"]
            value, injected = steps.get(kind), steps.get("injected")
            if isinstance(value, int | float) and isinstance(injected, int | float):
                return f"+{value - injected:.1f} s"
            return "-"

        return get

    rows = [
        row("mode / fault", lambda r: f"{r['settings']['mode']} / {r['settings']['fault']}"),
        row("checkouts started per second", lambda r: f"{r['load']['checkouts']['per_second']:g}/s"),
        row("browses per second (storefront)", lambda r: f"{r['load']['browses']['server']['per_second']:g}/s"),
        row("checkouts", lambda r: str(r["checkouts"]["total"])),
        row("checkout success rate", lambda r: f"{r['checkouts']['success_rate'] * 100:.2f} %"),
        row("checkouts failed (gave up)", lambda r: str(r["checkouts"]["failed"])),
        row("requests failed", lambda r: f"{r['requests']['failed']} of {r['requests']['sent']}"),
        *(row(f"{MARK_LABELS[k]}", since_injection(k)) for k in TIMELINE_KEYS[1:]),
        row("restarts", lambda r: str(r["restarts"]) if r["restarts"] is not None else "-"),
        *(
            row(f"checkout p99 {phase}", lambda r, phase=phase: _fmt_ms(r["latency_ms"][phase]["p99_ms"]))
            for phase in ("before", "during", "after")
        ),
        row(
            "invariants",
            lambda r: "-" if r["invariants"] is None else ("all hold" if r["ok"] else "FAILED"),
        ),
    ]
    header = ["", *(str(r["settings"].get("profile", f"run {i + 1}")) for i, r in enumerate(reports))]
    return table([tuple(r) for r in rows], tuple(header))
