"""The drill's report as text: the summary printed at the end of a drill (the load first, then the fault's
timeline, latency and invariants) and the side-by-side comparison of two profiles' reports.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from shop_load.report.timeline import MARK_LABELS, TIMELINE_KEYS


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
