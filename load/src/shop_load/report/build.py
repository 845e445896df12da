"""The drill's report (`DrillReport`): the load it ran, what the customers saw and what happened to the pods, from
the raw records; pure functions.

Every time is in seconds since the drill started (one monotonic clock for requests, server samples and pod events
alike).
"""

from collections import Counter
from collections.abc import Sequence
from typing import Any

from shop_load.core import records
from shop_load.core.customers import Shoppers
from shop_load.report import model, timeline

BROWSES_SOURCE = "storefront http_requests_total{handler=/api/{path:path},method=GET}, sampled every second"


def checkout_summary(checkouts: Sequence[records.Checkout]) -> model.Checkouts:
    outcomes = Counter(c.outcome for c in checkouts)
    answered = sum(outcomes[outcome] for outcome in records.FINAL_OUTCOMES)
    return model.Checkouts(
        total=len(checkouts),
        **{name: outcomes[name] for name in ("captured", "declined", "out_of_stock", "failed", "rejected", "pending")},
        retried=sum(c.attempts > 1 for c in checkouts),
        success_rate=round(answered / len(checkouts), 4) if checkouts else None,
    )


def counted(rows: Sequence[records.RequestRecord]) -> dict[str, Any]:
    """Requests sent, succeeded and failed, and by status (or the error of a request without an answer)."""
    statuses = Counter(str(r.status) if r.status is not None else (r.error or "no answer") for r in rows)
    ok = sum(r.ok for r in rows)
    return {"sent": len(rows), "succeeded": ok, "failed": len(rows) - ok, "statuses": dict(sorted(statuses.items()))}


def load_summary(
    settings: model.Settings,
    shoppers: Shoppers,
    window: tuple[float, float],
    wrk: records.WrkBrowsing | None,
    browse_samples: Sequence[records.CounterSample],
    client_lag: Sequence[tuple[float, float]],
    client_cpu_seconds: float | None,
) -> model.Load:
    """The load the drill ran, asked for and achieved, between `window` (when the customers started and stopped):
    checkouts from the drill's own customers, browses as the storefront counted them and as wrk saw them, and the
    drill's own process meanwhile (CPU, how late its event loop woke up, ticks it missed)."""
    start, stop = window
    checkouts, seconds = shoppers.checkouts, max(stop - start, 1e-9)
    tries = sum(r.endpoint == timeline.CHECKOUT_ENDPOINT for r in shoppers.records)
    server = None
    if (served := timeline.counts_between(browse_samples, start, stop)) is not None:
        ok, failed = timeline.ok_failed(served)
        server = model.ServedBrowses(
            source=BROWSES_SOURCE,
            requests=round(ok + failed),
            ok=round(ok),
            failed=round(failed),
            per_second=round((ok + failed) / seconds, 1),
            statuses={str(status): round(n) for status, n in sorted(served.items()) if round(n)},
        )
    lags = [ms for t, ms in client_lag if start <= t <= stop]
    browsed = wrk is not None or bool(browse_samples)
    return model.Load(
        window_s=(round(start, 2), round(stop, 2)),
        seconds=round(stop - start, 2),
        checkouts=model.CheckoutLoad(
            target_per_second=settings.rate,
            started=len(checkouts),
            per_second=round(len(checkouts) / seconds, 1),
            not_started=len(shoppers.not_started),
            max_in_flight=settings.max_in_flight,
            requests=tries,
            retries=tries - len(checkouts),
            answered_first_try=sum(c.attempts == 1 and c.outcome in records.FINAL_OUTCOMES for c in checkouts),
        ),
        client=model.Client(
            cpu_seconds=timeline.rounded(client_cpu_seconds, 2),
            lag_p99_ms=timeline.rounded(timeline.percentile(lags, 99)),
            lag_max_ms=timeline.rounded(max(lags, default=None)),
            late_ticks=len(shoppers.late),
        ),
        browses=model.Browses(target_per_second=settings.browse_rate, server=server, wrk=wrk) if browsed else None,
    )


def wrk_latency(result: records.WrkResult | None) -> model.Latency:
    """wrk's figures of one phase; failed: a 4xx or 5xx answer, a socket error or a time-out."""
    if result is None:
        return model.Latency()
    failed = sum(n for status, n in result.statuses.items() if status >= 400) + result.socket_errors + result.timeouts
    return model.Latency(requests=result.requests, failed=failed, p50_ms=result.p50_ms, p99_ms=result.p99_ms)


def build_report(
    *,
    settings: model.Settings,
    shoppers: Shoppers,
    marks: Sequence[records.Mark],
    replicasets: list[records.ReplicaSetSample],
    invariants: list[records.InvariantResult] | None,
    end: float,
    target_pod: str | None,
    restarts: int | None,
    notes: list[str],
    started_at: str,
    load_window: tuple[float, float],
    browsing: records.WrkBrowsing | None,
    browse_samples: Sequence[records.CounterSample],
    client_lag: Sequence[tuple[float, float]],
    client_cpu_seconds: float | None,
    autoscaler: dict[str, Any] | None = None,
) -> model.DrillReport:
    """The report of a drill from what it recorded: what its customers (`shoppers`) sent and saw, what the target
    saw (`marks`, ...), wrk's browsing (`browsing`), the storefront's counts (`browse_samples`) and payment's HPA
    (`autoscaler`)."""
    sent, steps = shoppers.records, timeline.timeline(marks, target_pod)
    endpoints = {e: [r for r in sent if r.endpoint == e] for e in sorted({r.endpoint for r in sent})}
    browsed = model.Phases(**{s.phase: wrk_latency(s.result) for s in browsing.segments}) if browsing else None
    return model.DrillReport(
        started_at=started_at,
        duration_s=round(end, 2),
        settings=settings,
        load=load_summary(settings, shoppers, load_window, browsing, browse_samples, client_lag, client_cpu_seconds),
        target=target_pod,
        timeline=steps,
        restarts=restarts,
        notes=notes,
        requests=model.Requests(
            **counted(sent),
            by_endpoint={e: model.EndpointCounts(**counted(rows)) for e, rows in endpoints.items()},
            per_second=timeline.per_second(shoppers, end, browse_samples, client_lag),
        ),
        checkouts=checkout_summary(shoppers.checkouts),
        latency_ms=timeline.latency_phases(sent, steps.injected, steps.ready_again),
        browse_latency_ms=browsed,
        marks=sorted(marks, key=lambda m: m.t),
        replicasets=replicasets,
        autoscaler=autoscaler,
        invariants=invariants,
        ok=None if invariants is None else all(i.ok for i in invariants),
    )
