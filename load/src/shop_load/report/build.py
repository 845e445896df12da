"""The drill's report: the load it ran, what the customers saw and what happened to the pods, from the raw
records; pure functions.

Every time is in seconds since the drill started (one monotonic clock for requests, server samples and pod events
alike).
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from shop_load.core.records import (
    FINAL_OUTCOMES,
    Checkout,
    CounterSample,
    InvariantResult,
    Mark,
    ReplicaSetSample,
    RequestRecord,
)
from shop_load.report.timeline import (
    CHECKOUT_ENDPOINT,
    counts_between,
    latency_phases,
    ok_failed,
    per_second,
    percentile,
    recovered_at,
    rounded,
    timeline,
)

REPORT_VERSION = 2


def checkout_summary(checkouts: Sequence[Checkout]) -> dict[str, Any]:
    counts = {name: 0 for name in ("captured", "declined", "out_of_stock", "failed", "rejected", "pending")}
    for checkout in checkouts:
        counts[checkout.outcome] = counts.get(checkout.outcome, 0) + 1
    answered = sum(counts[outcome] for outcome in FINAL_OUTCOMES)
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
            "answered_first_try": sum(c.attempts == 1 and c.outcome in FINAL_OUTCOMES for c in checkouts),
        },
        "client": dict(client) if client is not None else None,
        "browses": None,
    }
    if browsing is None and not browse_samples:
        return load
    served = counts_between(browse_samples or (), start, stop)
    server: dict[str, Any] | None = None
    if served is not None:
        ok, failed = ok_failed(served)
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
        "lag_p99_ms": rounded(percentile(lags, 99)),
        "lag_max_ms": rounded(max(lags, default=None)),
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
