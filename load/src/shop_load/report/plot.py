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

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from shop_load.report.model import DrillReport, Timeline
from shop_load.report.text import asked
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


def _marks(axes: Sequence[Axes], steps: Timeline, last_second: float) -> None:
    if steps.injected is not None:
        stop = steps.ready_again if steps.ready_again is not None else last_second + 1
        for axis in axes:
            axis.axvspan(steps.injected, stop, color="tab:red", alpha=0.06, label="_nolegend_")
    for kind, t in steps:
        if t is not None:
            color, style = MARK_STYLES[kind]
            for index, axis in enumerate(axes):
                label = f"{MARK_LABELS[kind]} ({t:.1f} s)" if index == 0 else "_nolegend_"
                axis.axvline(t, color=color, linestyle=style, linewidth=1.6, label=label)


Layer = tuple[Sequence[float], str | tuple[str, float], str]
"""Bars of one kind: their heights, colour (and alpha) and label."""


def _stacked(axis: Axes, seconds: Sequence[int], layers: Sequence[Layer]) -> list[float]:
    """Each layer's bars on top of the layers before (after the first two, a layer of zeros is left out); the
    heights of the stacks."""
    bottom = [0.0] * len(seconds)
    for index, (heights, color, label) in enumerate(layers):
        if index < 2 or any(heights):
            axis.bar(seconds, heights, width=1.0, align="edge", bottom=bottom, color=color, label=label)
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    return bottom


def _asked(axis: Axes, rate: float, heights: Sequence[float]) -> None:
    """The rate asked for as a line, and room above it and the tallest bar, so neither hides under the frame."""
    if rate:
        axis.axhline(rate, color="gray", linestyle=":", label=f"asked: {rate:g}/s")
    axis.set_ylim(0, max([*heights, rate, 1.0]) * 1.12)


def render(report: DrillReport, path: Path) -> Path:
    rows, settings = report.requests.per_second, report.settings
    seconds = [row.second for row in rows]
    last = max(seconds, default=0)
    figure = Figure(figsize=(13, 9.5))  # no pyplot: nothing global to close, no display needed
    checkouts, browses, latency = figure.subplots(3, 1, sharex=True, height_ratios=(3, 3, 2))
    paid = "POST /api/payments"
    tries: list[Layer] = [
        ([r.checkout_ok for r in rows], ("tab:green", 0.8), f"{paid} ok"),
        ([r.checkout_failed for r in rows], "tab:red", f"{paid} failed"),
        ([r.checkouts_not_started for r in rows], "tab:orange", "not started (in-flight bound)"),
        ([r.checkouts_late for r in rows], "gold", "missed (drill late)"),
    ]
    stacks = _stacked(checkouts, seconds, tries)
    started = [r.checkouts_started for r in rows]
    checkouts.plot([s + 0.5 for s in seconds], started, color="black", linewidth=1.2, label="checkouts started")
    _asked(checkouts, settings.rate, stacks)
    checkouts.set_ylabel("checkouts per second")
    checkouts.set_title("checkouts: the drill's customers (tries by answer; retries keep their key)", fontsize=10)

    browsed: list[Layer] = [
        ([r.browse_ok or 0.0 for r in rows], ("tab:green", 0.8), "GET /api/... ok"),
        ([r.browse_failed or 0.0 for r in rows], "tab:red", "GET /api/... failed"),
    ]
    if not any(r.browse_ok is not None for r in rows):
        browsed = []
        browses.text(0.5, 0.5, "no browsing in this run", ha="center", va="center", transform=browses.transAxes)
    _asked(browses, settings.browse_rate, _stacked(browses, seconds, browsed))
    browses.set_ylabel("browses per second")
    browses.set_title("browses: wrk, as storefront's /metrics counted them", fontsize=10)

    p50 = [(r.second + 0.5, r.checkout_p50_ms) for r in rows if r.checkout_p50_ms is not None]
    p99 = [(r.second + 0.5, r.checkout_p99_ms) for r in rows if r.checkout_p99_ms is not None]
    for points, color, label in ((p50, "tab:blue", "checkout p50"), (p99, "tab:brown", "checkout p99")):
        if points:
            latency.plot(*zip(*points, strict=True), color=color, marker=".", label=label)
    lag = [(r.second + 0.5, r.client_lag_ms) for r in rows if r.client_lag_ms]
    if lag and max(v for _, v in lag) >= CLIENT_LAG_SHOWN_MS:
        latency.plot(*zip(*lag, strict=True), color="gray", linestyle="--", label="drill's own lag (max per s)")
    wrk = report.load.browses.wrk if report.load.browses is not None else None
    browse_values: list[float] = []
    measured = [(s, s.result) for s in wrk.segments if s.result is not None] if wrk is not None else []
    for index, (segment, result) in enumerate(measured):
        end = segment.end_s if segment.end_s is not None else last + 1
        for value, color, name in (
            (result.p50_ms, "tab:cyan", "browse p50"),
            (result.p99_ms, "tab:olive", "browse p99"),
        ):
            if value is not None:
                browse_values.append(value)
                label = f"{name} (wrk, per phase)" if index == 0 else "_nolegend_"
                latency.hlines(value, segment.start_s, end, colors=color, linewidth=2.2, label=label)
    latency.set(ylabel="latency (ms)", xlabel="seconds since the drill started")
    values = [v for _, v in p50 + p99] + browse_values + [v for _, v in lag if v >= CLIENT_LAG_SHOWN_MS]
    if values and max(values) > 20 * max(1.0, min(values)):
        latency.set_yscale("log")
    axes = (checkouts, browses, latency)
    _marks(axes, report.timeline, last)
    for axis in axes:
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        axis.grid(alpha=0.3)
        axis.set_xlim(0, last + 1)
    rate = report.checkouts.success_rate
    figure.suptitle(
        f"resilient-shop drill: {settings.fault} on payment under {asked(settings)}, profile {settings.profile}, "
        f"{settings.mode}" + (f"; checkouts answered {rate * 100:.1f} %" if rate is not None else "")
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
