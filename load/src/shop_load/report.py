"""The drill's report: what the customers saw and what happened to the pods, from the raw records; pure functions.

Every time is in seconds since the drill started (one monotonic clock for requests and pod events alike).
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_VERSION = 1

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
    """Seconds since start of each step of the story for the faulted pod (the first one after the injection)."""
    injected = first_mark(marks, "injected")
    start = injected.t if injected else 0.0
    steps: dict[str, float | None] = {}
    for kind in TIMELINE_ORDER:
        mark = first_mark(marks, kind, after=start, pod=target_pod)
        steps[kind] = _round(mark.t, 2) if mark else None
    if steps["ready_again"] is not None:  # Ready again means after the pod went away from traffic or restarted
        went = [steps[k] for k in ("unready", "restarted", "fault_cleared") if steps[k] is not None]
        if not went:
            steps["ready_again"] = None
    if injected is None:
        steps["injected"] = None
    return steps


def recovered_at(steps: Mapping[str, float | None]) -> float | None:
    return steps.get("ready_again")


def per_second(records: Sequence[RequestRecord], end: float) -> list[dict[str, Any]]:
    seconds = max(0, math.ceil(end))
    buckets: list[list[RequestRecord]] = [[] for _ in range(seconds)]
    for record in records:
        index = int(record.t)
        if 0 <= index < seconds:
            buckets[index].append(record)
    rows = []
    for second, bucket in enumerate(buckets):
        latencies = [r.latency_ms for r in bucket]
        checkout = [r.latency_ms for r in bucket if r.endpoint == CHECKOUT_ENDPOINT]
        rows.append(
            {
                "second": second,
                "sent": len(bucket),
                "succeeded": sum(r.ok for r in bucket),
                "failed": sum(not r.ok for r in bucket),
                "p50_ms": _round(percentile(latencies, 50)),
                "p99_ms": _round(percentile(latencies, 99)),
                "checkout_p50_ms": _round(percentile(checkout, 50)),
                "checkout_p99_ms": _round(percentile(checkout, 99)),
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
) -> dict[str, Any]:
    steps = timeline(marks, target_pod)
    checked = list(invariants) if invariants is not None else None
    return {
        "version": REPORT_VERSION,
        "started_at": started_at,
        "duration_s": round(end, 2),
        "settings": dict(settings),
        "target": target_pod,
        "timeline": steps,
        "restarts": restarts,
        "notes": list(notes),
        "requests": {
            "sent": len(records),
            "succeeded": sum(r.ok for r in records),
            "failed": sum(not r.ok for r in records),
            "by_endpoint": by_endpoint(records),
            "per_second": per_second(records, end),
        },
        "checkouts": checkout_summary(checkouts),
        "latency_ms": latency_phases(records, steps["injected"], recovered_at(steps)),
        "marks": [asdict(m) for m in sorted(marks, key=lambda m: m.t)],
        "replicasets": [asdict(s) for s in replicasets],
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


def summary(report: Mapping[str, Any]) -> str:
    settings, steps = report["settings"], report["timeline"]
    checkouts, requests, latency = report["checkouts"], report["requests"], report["latency_ms"]
    title = (
        f"drill: profile {settings.get('profile')}, fault {settings.get('fault')}, mode {settings.get('mode')}, "
        f"{settings.get('rate')} checkouts/s, {report['duration_s']:.0f} s"
    )
    orchestrated = bool(settings.get("orchestrator"))
    rows = [
        (MARK_LABELS.get(kind, kind), _since(steps, kind))
        for kind in steps
        if orchestrated or kind not in {"oom_killed", "killing", "restarted"}
    ]
    restarts = report["restarts"]
    rows.append(("restarts", f"{restarts}" + ("" if orchestrated else " (no orchestrator)")))
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
    phases = [
        (
            phase,
            str(latency[phase]["requests"]),
            str(latency[phase]["failed"]),
            _fmt_ms(latency[phase]["p50_ms"]),
            _fmt_ms(latency[phase]["p99_ms"]),
        )
        for phase in ("before", "during", "after")
    ]
    parts = [
        title,
        "",
        table(rows, ("timeline (since start)", "")),
        "",
        table(traffic, ("what the customers saw", "")),
        "",
        table(phases, ("checkout latency", "requests", "failed", "p50", "p99")),
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
