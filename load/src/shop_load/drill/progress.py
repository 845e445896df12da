"""What the drill shows while it runs: one status line of checkouts, browses and the target's state, kept up
to date through each phase.
"""

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from shop_load.core.customers import Shoppers
from shop_load.core.records import FINAL_OUTCOMES
from shop_load.generators.browse_counts import ServerCounter
from shop_load.report.timeline import counts_between
from shop_load.targets.target import Clock, Target

RECENT_SECONDS = 5.0
"""The progress line's rates are over the last few seconds."""


@dataclass
class Progress:
    """One status line of the drill's customers and its target, rewritten in place on a terminal; a line every few
    seconds otherwise."""

    shoppers: Shoppers
    target: Target
    clock: Clock
    browses: ServerCounter | None = None
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    phase: str = "starting"
    probe: str = ""
    _last_plain: float = 0.0

    async def wait(self, phase: str, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Shows `phase` going on for `seconds`, or until `until()` says it is over."""
        self.phase, deadline = phase, time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            self.probe = self.target.status()
            self.show()
            await asyncio.sleep(0.25)

    def show(self) -> None:
        t, records, checkouts = self.clock(), self.shoppers.records, self.shoppers.checkouts
        failed, final = sum(not r.ok for r in records), sum(c.outcome in FINAL_OUTCOMES for c in checkouts)
        gave_up = sum(c.outcome == "failed" for c in checkouts)
        recent_ones = checkouts[-int(RECENT_SECONDS * self.shoppers.rate * 2 + 10) :]
        recent = sum(c.t >= t - RECENT_SECONDS for c in recent_ones)
        line = (
            f"[{t:6.1f} s] {self.phase:<10} checkouts {len(checkouts):>5} ({recent / RECENT_SECONDS:4.0f}/s)"
            f" answered {final:>5} gave up {gave_up:>3} in flight {self.shoppers.in_flight:>3}"
            f" | requests failed {failed:>4}" + self._browses(t) + (f" | {self.probe}" if self.probe else "")
        )
        if self.stream.isatty():
            self.stream.write("\r\033[K" + line[:200])
            self.stream.flush()
        elif time.monotonic() - self._last_plain >= 5:
            self._last_plain = time.monotonic()
            print(line, file=self.stream, flush=True)

    def _browses(self, t: float) -> str:
        if self.browses is None or not self.browses.samples:
            return ""
        if not (counted := counts_between(self.browses.samples, t - RECENT_SECONDS - 1, t)):
            return ""
        shown = min(t, self.browses.samples[-1].t) - max(t - RECENT_SECONDS - 1, self.browses.samples[0].t)
        return f" | browses {sum(counted.values()) / max(shown, 1e-9):4.0f}/s"

    def done(self) -> None:
        if self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()
