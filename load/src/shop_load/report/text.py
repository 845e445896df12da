"""The drill's report as text: the summary printed at the end of a drill (the load first, then the fault's
timeline, latency and invariants) and the side-by-side comparison of two profiles' reports.
"""

from collections.abc import Sequence

from shop_load.core.records import InvariantResult
from shop_load.report.model import DrillReport, Latency, Load, Settings
from shop_load.report.timeline import MARK_LABELS


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _after(value: float | None, injected: float | None) -> str:
    return "-" if value is None or injected is None else f"+{value - injected:.1f} s"


def _since(value: float | None, injected: float | None) -> str:
    """When a step happened, and how long after the injection (`injected`: None for the injection itself)."""
    if value is None:
        return "-"
    return f"{value:.1f} s" + ("" if injected is None else f"  ({_after(value, injected)})")


def _latency(phase: Latency) -> list[str]:
    return [_n(phase.requests), _n(phase.failed), _ms(phase.p50_ms), _ms(phase.p99_ms)]


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines)


def invariants_table(results: Sequence[InvariantResult]) -> str:
    return table([("PASS" if r.ok else "FAIL", r.name, r.detail) for r in results], ("", "invariant", ""))


def load_rows(load: Load) -> list[tuple[str, str, str]]:
    """The load the drill asked for and what ran, one row per kind of traffic."""
    checkouts, client, seconds = load.checkouts, load.client, load.seconds
    bound = f"; {checkouts.not_started} not started at the bound of {checkouts.max_in_flight} in flight"
    started = f"{checkouts.per_second:g}/s: {checkouts.started} in {seconds:.1f} s"
    sent = f"{checkouts.requests}: one per checkout + {checkouts.retries} retries with the same key"
    rows = [
        ("checkouts started", f"{checkouts.target_per_second:g}/s", started + (bound if checkouts.not_started else "")),
        ("  POST /api/payments sent", "", sent),
    ]
    if client.cpu_seconds is not None and seconds:
        lag = f", loop lag p99 {_ms(client.lag_p99_ms)}, max {_ms(client.lag_max_ms)}"
        late = f"; {client.late_ticks} ticks missed late" if client.late_ticks else ""
        cpu = f"CPU {client.cpu_seconds:.1f} s ({client.cpu_seconds / seconds:.0%} of a core)"
        rows.append(("  the drill's own client", "", cpu + lag + late))
    if load.browses is None:
        return rows
    browse_rate, server, wrk = f"{load.browses.target_per_second:g}/s", load.browses.server, load.browses.wrk
    served = "not sampled"
    if server is not None:
        shed = f" (503: {server.statuses['503']})" if "503" in server.statuses else ""
        served = f"{server.per_second:g}/s: {server.requests} answered, {server.ok} ok, {server.failed} failed{shed}"
    rows.append(("browses (storefront's count)", browse_rate, served))
    if wrk is not None:
        errors = [s.error for s in wrk.segments if s.error]
        ran = (
            f"{wrk.requests} answers in {wrk.seconds:.1f} s, {wrk.socket_errors} socket errors, {wrk.timeouts} "
            f"timeouts, wrk CPU {wrk.generator_cpu_seconds:.1f} s"
            + (f"; 503 without Retry-After: {wrk.bare_503}" if wrk.bare_503 else "")
            + (" (SATURATED)" if wrk.generator_saturated else "")
            + (f"; {errors[0]}" if errors else "")
        )
        rows.append(("  wrk (the browsers)", f"{wrk.connections} conn.", ran))
    return rows


def asked(settings: Settings) -> str:
    """The load asked for: checkouts per second, and browses beside them."""
    return f"{settings.rate} checkouts/s" + (f" + {settings.browse_rate} browses/s" if settings.browse_rate else "")


NOT_SHOWN_BY: dict[str, set[str]] = {
    "kubernetes": set(),
    "container engine": set(),
    "make run": {"oom_killed", "killing"},
}


def summary(report: DrillReport) -> str:
    settings, steps, checkouts, requests = report.settings, report.timeline, report.checkouts, report.requests
    run = f"profile {settings.profile}, fault {settings.fault}, mode {settings.mode}, {asked(settings)}"
    # Only the steps the orchestrator can show: make run kills for liveness and restarts (its reason in the notes)
    # but has no OOM killer and no kill event; without an orchestrator nothing is killed or restarted at all.
    hidden = NOT_SHOWN_BY.get(settings.orchestrator or "", {"oom_killed", "killing", "restarted"})
    rows = [
        (MARK_LABELS[kind], _since(t, None if kind == "injected" else steps.injected))
        for kind, t in steps
        if kind not in hidden
    ]
    rows.append(("restarts", f"{report.restarts}" + ("" if settings.orchestrator else " (no orchestrator)")))
    if (hpa := report.autoscaler) is not None:  # current/desired, min-max, read as the drill ended
        replicas = f"{hpa.current_replicas}/{hpa.desired_replicas}, {hpa.min_replicas}-{hpa.max_replicas}"
        rows.append((f"{hpa.name} replicas (HPA)", replicas))
    rate = checkouts.success_rate
    answered = f"{checkouts.captured} / {checkouts.declined} / {checkouts.out_of_stock}"
    traffic = [
        ("requests sent", str(requests.sent)),
        ("requests succeeded / failed", f"{requests.succeeded} / {requests.failed}"),
        ("checkouts", str(checkouts.total)),
        ("  captured / declined / out of stock", answered),
        ("  failed (gave up) / rejected", f"{checkouts.failed} / {checkouts.rejected}"),
        ("  retried with the same key", str(checkouts.retried)),
        ("checkout success rate", f"{rate * 100:.2f} %" if rate is not None else "-"),
    ]
    phases = [[phase, *_latency(tries)] for phase, tries in report.latency_ms]
    latency_header: tuple[str, ...] = ("latency", "checkout tries", "failed", "p50", "p99")
    if report.browse_latency_ms is not None:
        phases = [row + _latency(seen) for row, (_, seen) in zip(phases, report.browse_latency_ms, strict=True)]
        latency_header += ("browses (wrk)", "failed", "p50", "p99")
    parts = [
        f"drill: {run}, {report.duration_s:.0f} s",
        table(load_rows(report.load), ("the load", "asked", "ran")),
        table(rows, ("timeline (since start)", "")),
        table(traffic, ("what the customers saw", "")),
        table(phases, latency_header),
    ]
    if report.invariants is not None:
        parts.append(invariants_table(report.invariants))
    if report.notes:
        parts.append("\n".join(f"note: {note}" for note in report.notes))
    return "\n\n".join(parts)


def _compared(report: DrillReport) -> dict[str, str]:
    """One report's column of the comparison, by row."""
    browses, rate, steps = report.load.browses, report.checkouts.success_rate, report.timeline
    server = browses.server if browses is not None else None
    since_injection = {
        MARK_LABELS[kind]: _after(t, steps.injected) for kind, t in steps if kind not in {"injected", "fault_cleared"}
    }
    return {
        "mode / fault": f"{report.settings.mode} / {report.settings.fault}",
        "checkouts started per second": f"{report.load.checkouts.per_second:g}/s",
        "browses per second (storefront)": "-" if server is None else f"{server.per_second:g}/s",
        "checkouts": str(report.checkouts.total),
        "checkout success rate": "-" if rate is None else f"{rate * 100:.2f} %",
        "checkouts failed (gave up)": str(report.checkouts.failed),
        "requests failed": f"{report.requests.failed} of {report.requests.sent}",
        **since_injection,
        "restarts": _n(report.restarts),
        **{f"checkout p99 {phase}": _ms(seen.p99_ms) for phase, seen in report.latency_ms},
        "invariants": "-" if report.ok is None else "all hold" if report.ok else "FAILED",
    }


def compare(reports: Sequence[DrillReport]) -> str:
    """Side by side: one column per report (e.g. resilient vs fragile)."""
    columns = [_compared(report) for report in reports]
    rows = [(label, *(column[label] for column in columns)) for label in columns[0]]
    return table(rows, ("", *(report.settings.profile for report in reports)))
