"""The sale's browsing beside the drill's checkouts: wrk paces GETs of the catalog through the storefront, and the
storefront's own `/metrics` say, second by second, what it served.

A Python client browsing at 300 requests/s would take a core of a small machine from the shop it measures, so the
browsing comes from wrk (`shop_load.generators.wrk`, a native generator) with `browse.lua`: GETs of product list pages,
searches and product pages in the weights of `shopping.TASK_WEIGHTS`, paced to `rate` requests/s over
`connections` kept-alive connections. wrk runs one segment per phase of the drill (before the fault, during it,
after recovery), so each phase has its own latency percentiles as wrk measured them; at a switch the old run stops
sending (a drain file its script checks) and is stopped once its requests in flight are answered, the new one
having started at once.
"""

import asyncio
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shop_load.core.records import WrkBrowsing, WrkSegment
from shop_load.core.shopping import SEARCH_TERMS, TASK_WEIGHTS
from shop_load.generators import wrk

BROWSE_SCRIPT = Path(__file__).with_name("browse.lua")
PAGE_SIZE = 20
DRAIN_SECONDS = 2.0
"""How long a finished segment's wrk waits, sending nothing, for the answers it has in flight before it stops."""
ADDED_UP = ("requests", "seconds", "socket_errors", "timeouts", "retry_after_503", "bare_503", "generator_cpu_seconds")
"""The figures of the segments that add up to the browsing's."""


def browse_paths(skus: Sequence[str], *, pages: int = 2) -> list[str]:
    """The browsing mix as paths, each kind as often as its `TASK_WEIGHTS` weight: list pages, searches, product
    pages (cycling through the pages, terms and SKUs; no product page without a SKU)."""
    lists, searches, views = (range(TASK_WEIGHTS[kind]) for kind in ("browse", "search", "view"))
    paths = [f"/api/products?limit={PAGE_SIZE}&offset={PAGE_SIZE * (i % pages)}" for i in lists]
    paths += [f"/api/products?q={SEARCH_TERMS[i % len(SEARCH_TERMS)]}&limit={PAGE_SIZE}" for i in searches]
    return paths + ([f"/api/products/{skus[i % len(skus)]}" for i in views] if skus else [])


@dataclass
class Browsing:
    """wrk browsing the shop at `rate` requests/s, one run per phase (`switch`), stopped by `stop`."""

    url: str
    rate: float
    connections: int
    paths: list[str]
    clock: Callable[[], float]
    cap_seconds: float
    """The longest a segment may run if nobody stops it (the drill always does)."""
    timeout_seconds: float = 10.0
    drain_seconds: float = DRAIN_SECONDS
    segments: list[WrkSegment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._run: wrk.WrkRun | None = None
        self._drain: Path | None = None
        self._pending: list[asyncio.Task[None]] = []
        self._folder = Path(tempfile.mkdtemp(prefix="shop-drill-wrk-"))

    def start(self, phase: str) -> None:
        """Starts the segment of `phase` (raises `wrk.WrkError` when wrk cannot run)."""
        self._drain = self._folder / f"drain-{len(self.segments)}"
        self._run = wrk.start(
            self.url,
            connections=self.connections,
            seconds=self.cap_seconds,
            script=str(BROWSE_SCRIPT),
            params={"rate": f"{self.rate:g}", "paths": " ".join(self.paths), "drain_file": str(self._drain)},
            timeout_seconds=self.timeout_seconds,
        )
        self.segments.append(WrkSegment(phase=phase, start_s=round(self.clock(), 2)))

    async def switch(self, phase: str) -> None:
        """Ends the current segment and starts the next at once (its result is read in the background)."""
        self._end_current()
        try:
            self.start(phase)
        except wrk.WrkError as exc:
            now = round(self.clock(), 2)
            self.segments.append(WrkSegment(phase=phase, start_s=now, end_s=now, error=str(exc)[:300]))

    async def stop(self) -> None:
        """Ends the current segment and waits for every result."""
        self._end_current()
        await asyncio.gather(*self._pending)
        self._pending.clear()
        shutil.rmtree(self._folder, ignore_errors=True)

    def kill(self) -> None:
        """Ends the current run without waiting (cleanup after an error), and forgets its drain files."""
        if self._run is not None:
            self._run.stop()
            self._run = None
        shutil.rmtree(self._folder, ignore_errors=True)

    def _end_current(self) -> None:
        """The run sends nothing more at once (its drain file exists: `browse.lua` parks every connection), and is
        stopped once what it had in flight is answered: stopping wrk mid-request would cut those requests, which
        the storefront would count as failures of its own."""
        run, self._run = self._run, None
        if run is None or not self.segments:
            return
        segment = self.segments[-1]
        if self._drain is not None:
            self._drain.touch()
        segment.end_s = round(self.clock(), 2)
        self._pending.append(asyncio.create_task(self._collect(run, segment, self.drain_seconds)))

    @staticmethod
    async def _collect(run: wrk.WrkRun, segment: WrkSegment, drain_seconds: float) -> None:
        await asyncio.sleep(drain_seconds)
        run.stop()
        try:
            segment.result = await asyncio.to_thread(run.result, 15)
        except wrk.WrkError as exc:
            segment.error = str(exc)[:300]

    def summary(self) -> WrkBrowsing:
        """wrk's totals over the segments and each segment's own figures (percentiles do not add up: per phase)."""
        results = [s.result for s in self.segments if s.result is not None]
        statuses = sum((Counter(result.statuses) for result in results), Counter[int]())
        return WrkBrowsing(
            **{name: sum(getattr(result, name) for result in results) for name in ADDED_UP},
            statuses=dict(sorted(statuses.items())),
            connections=self.connections,
            url=self.url,
            rate=self.rate,
            paths=len(self.paths),
            segments=self.segments,
        )


def default_connections(rate: float) -> int:
    """Enough connections that each waits about half a second between its requests: pacing (wrk's `delay()`, taken
    between an answer and the next request) then loses little to the shop's own latency."""
    return max(1, round(rate / 2))
