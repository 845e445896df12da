"""The drill's timeline as a PNG (matplotlib, Agg backend: no display needed): the load and the fault on one time
axis.

Top: checkouts, the drill's own customers: `POST /api/payments` tries per second by answer (ok: captured, declined
or out of stock; failed: 5xx or no answer, retried with the same key) and the checkouts started per second against
the rate asked for. Middle: browses per second as the storefront counted them (ok, failed), against the rate asked
for. Bottom: checkout latency p50 and p99 per second, and wrk's browse p50/p99 of each phase. Every panel carries
the pod events as vertical marks (injection, unready, liveness failure or OOMKilled, restart, Ready again) and
shades the fault phase.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from shop_load.report.timeline import MARK_LABELS

CLIENT_LAG_SHOWN_MS = 100.0
"""The drill's own event-loop lag is drawn when it reached this: then its latencies include it."""

MARK_STYLES: Mapping[str, tuple[str, str]] = {
    "injected": ("black", "-"),
    "unready": ("tab:orange", "--"),
    "liveness_failed": ("tab:red", "--"),
    "oom_killed": ("darkred", "-."),
    "killing": ("tab:pink", ":"),
    "restarted": ("tab:purple", "-"),
    "fault_cleared": ("tab:gray", "-."),
    "ready_again": ("tab:green", "-"),
}


def _marks(axes: Sequence[Axes], steps: Mapping[str, Any], last_second: float) -> None:
    start, end = steps.get("injected"), steps.get("ready_again")
    if isinstance(start, int | float):
        stop = end if isinstance(end, int | float) else last_second + 1
        for axis in axes:
            axis.axvspan(start, stop, color="tab:red", alpha=0.06, label="_nolegend_")
    for kind, (color, style) in MARK_STYLES.items():
        t = steps.get(kind)
        if isinstance(t, int | float):
            for index, axis in enumerate(axes):
                label = f"{MARK_LABELS[kind]} ({t:.1f} s)" if index == 0 else "_nolegend_"
                axis.axvline(t, color=color, linestyle=style, linewidth=1.6, label=label)


def _stacked(axis: Axes, seconds: Sequence[int], ok: Sequence[float], failed: Sequence[float], what: str) -> None:
    axis.bar(seconds, ok, width=1.0, align="edge", color="tab:green", alpha=0.8, label=f"{what} ok")
    axis.bar(seconds, failed, width=1.0, align="edge", bottom=ok, color="tab:red", label=f"{what} failed")


def _headroom(axis: Axes, heights: Sequence[float], asked: object) -> None:
    """Room above the tallest bar and the rate asked for, so neither hides under the frame."""
    top = max([*heights, asked if isinstance(asked, int | float) else 0.0, 1.0])
    axis.set_ylim(0, top * 1.12)


def render(report: Mapping[str, Any], path: Path) -> Path:
    rows = report["requests"]["per_second"]
    seconds = [row["second"] for row in rows]
    settings = report["settings"]
    browsing = any(r.get("browse_ok") is not None for r in rows)
    figure, (checkouts, browses, latency) = plt.subplots(3, 1, figsize=(13, 9.5), sharex=True, height_ratios=(3, 3, 2))
    try:
        _stacked(
            checkouts,
            seconds,
            [r.get("checkout_ok", r["succeeded"]) for r in rows],
            [r.get("checkout_failed", r["failed"]) for r in rows],
            "POST /api/payments",
        )
        if "checkouts_started" in (rows[0] if rows else {}):
            centers = [s + 0.5 for s in seconds]
            checkouts.plot(
                centers, [r["checkouts_started"] for r in rows], color="black", linewidth=1.2, label="checkouts started"
            )
            tries = [r["checkout_requests"] for r in rows]
            skipped = [r["checkouts_not_started"] for r in rows]
            late = [r.get("checkouts_late", 0) for r in rows]
            if any(skipped):
                checkouts.bar(
                    seconds,
                    skipped,
                    width=1.0,
                    align="edge",
                    bottom=tries,
                    color="tab:orange",
                    label="not started (in-flight bound)",
                )
            if any(late):
                checkouts.bar(
                    seconds,
                    late,
                    width=1.0,
                    align="edge",
                    bottom=[a + b for a, b in zip(tries, skipped, strict=True)],
                    color="gold",
                    label="missed (drill late)",
                )
        if isinstance(settings.get("rate"), int | float):
            checkouts.axhline(settings["rate"], color="gray", linestyle=":", label=f"asked: {settings['rate']:g}/s")
        _headroom(
            checkouts,
            [
                r.get("checkout_requests", r["sent"]) + r.get("checkouts_not_started", 0) + r.get("checkouts_late", 0)
                for r in rows
            ],
            settings.get("rate"),
        )
        checkouts.set_ylabel("checkouts per second")
        checkouts.set_title("checkouts: the drill's customers (tries by answer; retries keep their key)", fontsize=10)

        if browsing:
            _stacked(
                browses,
                seconds,
                [r["browse_ok"] or 0 for r in rows],
                [r["browse_failed"] or 0 for r in rows],
                "GET /api/...",
            )
        else:
            browses.text(0.5, 0.5, "no browsing in this run", ha="center", va="center", transform=browses.transAxes)
        if isinstance(settings.get("browse_rate"), int | float) and settings["browse_rate"]:
            browses.axhline(
                settings["browse_rate"], color="gray", linestyle=":", label=f"asked: {settings['browse_rate']:g}/s"
            )
        _headroom(
            browses, [(r["browse_ok"] or 0) + (r["browse_failed"] or 0) for r in rows], settings.get("browse_rate")
        )
        browses.set_ylabel("browses per second")
        browses.set_title("browses: wrk, as storefront's /metrics counted them", fontsize=10)

        p50 = [(r["second"] + 0.5, r["checkout_p50_ms"]) for r in rows if r["checkout_p50_ms"] is not None]
        p99 = [(r["second"] + 0.5, r["checkout_p99_ms"]) for r in rows if r["checkout_p99_ms"] is not None]
        if p50:
            latency.plot(*zip(*p50, strict=True), color="tab:blue", marker=".", label="checkout p50")
        if p99:
            latency.plot(*zip(*p99, strict=True), color="tab:brown", marker=".", label="checkout p99")
        lag = [(r["second"] + 0.5, r["client_lag_ms"]) for r in rows if r.get("client_lag_ms")]
        if lag and max(v for _, v in lag) >= CLIENT_LAG_SHOWN_MS:
            latency.plot(*zip(*lag, strict=True), color="gray", linestyle="--", label="drill's own lag (max per s)")
        segments = ((report.get("load") or {}).get("browses") or {}).get("wrk") or {}
        browse_values: list[float] = []
        for index, segment in enumerate(segments.get("segments", [])):
            end = segment.get("end_s") if segment.get("end_s") is not None else max(seconds, default=0) + 1
            for key, color, name in (("p50_ms", "tab:cyan", "browse p50"), ("p99_ms", "tab:olive", "browse p99")):
                value = segment.get(key)
                if isinstance(value, int | float):
                    browse_values.append(value)
                    label = f"{name} (wrk, per phase)" if index == 0 else "_nolegend_"
                    latency.hlines(value, segment["start_s"], end, colors=color, linewidth=2.2, label=label)
        latency.set_ylabel("latency (ms)")
        latency.set_xlabel("seconds since the drill started")
        values = [v for _, v in p50 + p99] + browse_values + [v for _, v in lag if v >= CLIENT_LAG_SHOWN_MS]
        if values and max(values) > 20 * max(1.0, min(values)):
            latency.set_yscale("log")
        axes = (checkouts, browses, latency)
        _marks(axes, report["timeline"], max(seconds, default=0))
        for axis in axes:
            axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
            axis.grid(alpha=0.3)
            axis.set_xlim(0, max(seconds, default=0) + 1)
        rate = report["checkouts"]["success_rate"]
        load = f"{settings.get('rate')} checkouts/s" + (
            f" + {settings['browse_rate']} browses/s" if settings.get("browse_rate") else ""
        )
        figure.suptitle(
            f"resilient-shop drill: {settings.get('fault')} on payment under {load}, profile "
            f"{settings.get('profile')}, {settings.get('mode')}"
            + (f"; checkouts answered {rate * 100:.1f} %" if rate is not None else "")
        )
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
    return path
