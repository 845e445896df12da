"""What the drill needs to run unattended against a live shop (the scheduled drill in the cluster,
k8s/components/scheduled-drill): a stop condition, as AWS FIS and Gremlin have one, that clears the fault and ends
the sale once too many checkouts fail (`--stop-below`), and its verdict pushed to a Prometheus Pushgateway
(`--pushgateway`), the standard place for a batch job's result, where Prometheus still sees it after the Job's pod
is gone. (Putting the sale's purchases back into stock is `shop_load.core.stock.put_back`.)
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from shop_load.core.records import FINAL_OUTCOMES, Checkout
from shop_load.targets.target import Clock

STOP_WINDOW_SECONDS = 10.0
STOP_MIN_CHECKOUTS = 5
"""Fewer checkouts ended in the window than this say too little to stop on."""
EXIT_STOPPED = 3
PUSH_JOB = "failover-drill"


def success_share(checkouts: Sequence[Checkout], now: float, window: float = STOP_WINDOW_SECONDS) -> float | None:
    """The share of the checkouts that ended in the last `window` seconds with the shop's final answer (captured,
    declined, out of stock) rather than a customer giving up; None when too few ended to tell. A checkout counts
    when it ends, not when it starts: one still retrying is not yet a failure."""
    ended = [c for c in checkouts if c.finished is not None and now - window < c.finished <= now]
    if len(ended) < STOP_MIN_CHECKOUTS:
        return None
    return sum(c.outcome in FINAL_OUTCOMES for c in ended) / len(ended)


@dataclass
class StopCondition:
    """Trips, once and for good, when the checkouts' success share falls below `threshold` (None: never)."""

    threshold: float | None
    checkouts: Sequence[Checkout]
    clock: Clock
    note: str | None = None
    """What tripped it, for the report; None while it has not."""

    def tripped(self) -> bool:
        if self.threshold is not None and self.note is None:
            now = self.clock()
            if (share := success_share(self.checkouts, now)) is not None and share < self.threshold:
                self.note = (
                    f"stopped early at {now:.1f} s: {share:.0%} of the checkouts that ended in the last "
                    f"{STOP_WINDOW_SECONDS:g} s were answered, below --stop-below {self.threshold:g}; the fault was "
                    "cleared and the sale ended"
                )
        return self.note is not None


def push_verdict(gateway: str, code: int) -> None:
    """Replaces the Pushgateway's group `job="failover-drill"` with this run's time, success (1: exit status 0) and
    exit status (1 an invariant failed, 2 the drill could not run, 3 stopped early)."""
    registry = CollectorRegistry()
    gauges = {
        "shop_drill_last_run_timestamp_seconds": ("When the last failover drill ended (Unix time).", time.time()),
        "shop_drill_last_success": ("1 when the last failover drill passed, else 0.", float(code == 0)),
        "shop_drill_last_exit_code": ("The last failover drill's exit status.", float(code)),
    }
    for name, (text, value) in gauges.items():
        Gauge(name, text, registry=registry).set(value)
    push_to_gateway(gateway, job=PUSH_JOB, registry=registry, timeout=10)
