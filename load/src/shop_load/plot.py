"""The drill's timeline as a PNG (matplotlib, Agg backend: no display needed).

Top: requests per second (every request of the customers), succeeded and failed, stacked. Bottom: checkout
latency (`POST /api/payments`) p50 and p99 per second. Both carry the pod events as vertical marks (injection,
unready, liveness failure or OOMKilled, restart, Ready again) and shade the fault phase.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from shop_load.report import MARK_LABELS

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


def render(report: Mapping[str, Any], path: Path) -> Path:
    rows = report["requests"]["per_second"]
    seconds = [row["second"] for row in rows]
    settings = report["settings"]
    figure, (traffic, latency) = plt.subplots(2, 1, figsize=(12, 7), sharex=True, height_ratios=(3, 2))
    try:
        traffic.bar(seconds, [r["succeeded"] for r in rows], width=1.0, align="edge", color="tab:green", label="ok")
        traffic.bar(
            seconds,
            [r["failed"] for r in rows],
            width=1.0,
            align="edge",
            bottom=[r["succeeded"] for r in rows],
            color="tab:red",
            label="failed",
        )
        traffic.set_ylabel("requests per second")
        p50 = [(r["second"] + 0.5, r["checkout_p50_ms"]) for r in rows if r["checkout_p50_ms"] is not None]
        p99 = [(r["second"] + 0.5, r["checkout_p99_ms"]) for r in rows if r["checkout_p99_ms"] is not None]
        if p50:
            latency.plot(*zip(*p50, strict=True), color="tab:blue", marker=".", label="checkout p50")
        if p99:
            latency.plot(*zip(*p99, strict=True), color="tab:brown", marker=".", label="checkout p99")
        latency.set_ylabel("checkout latency (ms)")
        latency.set_xlabel("seconds since the drill started")
        if p99 and max(v for _, v in p99) > 20 * max(1.0, min(v for _, v in p50 or p99)):
            latency.set_yscale("log")
        steps = report["timeline"]
        start, end = steps.get("injected"), steps.get("ready_again")
        if isinstance(start, int | float):
            stop = end if isinstance(end, int | float) else max(seconds, default=start) + 1
            for axis in (traffic, latency):
                axis.axvspan(start, stop, color="tab:red", alpha=0.06, label="_nolegend_")
        for kind, (color, style) in MARK_STYLES.items():
            t = steps.get(kind)
            if isinstance(t, int | float):
                label = f"{MARK_LABELS[kind]} ({t:.1f} s)"
                traffic.axvline(t, color=color, linestyle=style, linewidth=1.6, label=label)
                latency.axvline(t, color=color, linestyle=style, linewidth=1.6, label="_nolegend_")
        traffic.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        latency.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        for axis in (traffic, latency):
            axis.grid(alpha=0.3)
            axis.set_xlim(0, max(seconds, default=0) + 1)
        rate = report["checkouts"]["success_rate"]
        figure.suptitle(
            f"resilient-shop drill: {settings.get('fault')} on payment, profile {settings.get('profile')}, "
            f"{settings.get('mode')}; checkout success {rate * 100:.1f} %"
            if rate is not None
            else f"resilient-shop drill: {settings.get('fault')}, profile {settings.get('profile')}"
        )
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
    return path
