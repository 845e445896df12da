"""The sale's browsing beside the drill's checkouts: wrk paces GETs of the catalog through the storefront, and the
storefront's own `/metrics` say, second by second, what it served.

A Python client browsing at 300 requests/s would take a core of a small machine from the shop it measures, so the
browsing comes from wrk (`shop_load.wrk`, a native generator) with `browse.lua`: GETs of product list pages,
searches and product pages in the weights of `shopping.TASK_WEIGHTS`, paced to `rate` requests/s over
`connections` kept-alive connections. wrk runs one segment per phase of the drill (before the fault, during it,
after recovery), so each phase has its own latency percentiles as wrk measured them; at a switch the old run stops
sending (a drain file its script checks) and is stopped once its requests in flight are answered, the new one
having started at once.

wrk reports only at the end of a run, so the per-second series comes from the server: once a second the drill
reads storefront's `http_requests_total` (prometheus-fastapi-instrumentator) for `GET` on the gateway route,
by status, from every storefront process (with a cluster: each storefront pod, through the API). That counts
what the storefront saw and answered, including requests wrk gave up on; it also counts the drill customers'
own catalog refresh (one list page every 5 s).
"""

import asyncio
import contextlib
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from shop_load import wrk
from shop_load.report import CounterSample
from shop_load.shopping import SEARCH_TERMS, TASK_WEIGHTS

if TYPE_CHECKING:
    from shop_load.kube import Cluster

BROWSE_SCRIPT = Path(__file__).with_name("browse.lua")
GATEWAY_HANDLER = "/api/{path:path}"
"""The storefront route every `/api/...` request goes through (its `handler` label)."""
PAGE_SIZE = 20
SAMPLE_INTERVAL_SECONDS = 1.0
SCRAPE_TIMEOUT_SECONDS = 2.0
POD_LIST_INTERVAL_SECONDS = 10.0
PHASES = ("before", "during", "after")
DRAIN_SECONDS = 2.0
"""How long a finished segment's wrk waits, sending nothing, for the answers it has in flight before it stops."""

Scrape = Callable[[], Awaitable[dict[str, str]]]
"""One read of `/metrics` from every storefront process: source name → text (a process that did not answer is
left out)."""


def browse_paths(skus: Sequence[str], *, pages: int = 2) -> list[str]:
    """The browsing mix as paths, each kind as often as its `TASK_WEIGHTS` weight: list pages, searches, product
    pages (cycling through the pages, terms and SKUs)."""
    paths: list[str] = []
    paths += [
        f"/api/products?limit={PAGE_SIZE}&offset={PAGE_SIZE * (i % pages)}" for i in range(TASK_WEIGHTS["browse"])
    ]
    paths += [
        f"/api/products?q={SEARCH_TERMS[i % len(SEARCH_TERMS)]}&limit={PAGE_SIZE}"
        for i in range(TASK_WEIGHTS["search"])
    ]
    if skus:
        paths += [f"/api/products/{skus[i % len(skus)]}" for i in range(TASK_WEIGHTS["view"])]
    return paths


_SAMPLE = re.compile(r'^http_requests_total\{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\}\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def requests_total(text: str, *, handler: str = GATEWAY_HANDLER, method: str = "GET") -> dict[int, float]:
    """`http_requests_total` of one handler and method by status, from a Prometheus text exposition."""
    counts: dict[int, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("handler") != handler or labels.get("method") != method:
            continue
        try:
            status, value = int(labels.get("status", "")), float(match["value"])
        except ValueError:
            continue
        counts[status] = counts.get(status, 0.0) + value
    return counts


@dataclass
class ServerCounter:
    """Cumulative counts by status since the first sample, summed over every source (storefront process).

    A source seen in the first sample is the baseline (what it counted before the drill is not the drill's); a
    source that appears later (a new pod) counts from zero; a counter that went down was reset (a restart) and
    counts from zero again.
    """

    samples: list[CounterSample] = field(default_factory=list)
    _last: dict[str, dict[int, float]] = field(default_factory=dict)
    _total: dict[int, float] = field(default_factory=dict)

    def observe(self, t: float, counts_by_source: Mapping[str, Mapping[int, float]]) -> None:
        """Adds a sample; a read where no source answered adds none (the next one covers the gap)."""
        if not counts_by_source:
            return
        first = not self.samples
        for source, counts in counts_by_source.items():
            last = self._last.get(source)
            if not first:
                reset = last is not None and any(value < last.get(status, 0.0) for status, value in counts.items())
                base = {} if last is None or reset else last
                for status, value in counts.items():
                    self._total[status] = self._total.get(status, 0.0) + value - base.get(status, 0.0)
            self._last[source] = dict(counts)
        self.samples.append(CounterSample(round(t, 3), dict(self._total)))


async def sample_forever(
    scrape: Scrape, counter: ServerCounter, clock: Callable[[], float], stop: asyncio.Event
) -> None:
    """Reads the counts once a second, on the second of `clock`, until `stop`, and once more after it."""
    while True:
        done = stop.is_set()
        t = clock()
        try:
            texts = await scrape()
        except Exception:  # a failed read is a gap, never the end of the drill
            texts = {}
        counter.observe((t + clock()) / 2, {source: requests_total(text) for source, text in texts.items()})
        if done:
            return
        pause = SAMPLE_INTERVAL_SECONDS - clock() % SAMPLE_INTERVAL_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


def local_scrape(client: httpx.AsyncClient, base_url: str) -> Scrape:
    """The one storefront process behind `base_url` (`make run`, compose)."""

    async def scrape() -> dict[str, str]:
        try:
            response = await client.get(f"{base_url}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS)
        except httpx.HTTPError:
            return {}
        return {base_url: response.text} if response.status_code == 200 else {}

    return scrape


def cluster_scrape(cluster: "Cluster", selector: str) -> Scrape:
    """Every storefront pod, each through an API port-forward to its own port (the Service would answer from one
    pod at random)."""
    pods: list[tuple[str, int]] = []
    listed_at = [-POD_LIST_INTERVAL_SECONDS]

    def one(pod: str, port: int) -> str | None:
        try:
            status, text = cluster.request(pod, port, "GET", "/metrics", timeout=SCRAPE_TIMEOUT_SECONDS)
        except Exception:
            return None
        return text if status == 200 else None

    async def scrape() -> dict[str, str]:
        loop = asyncio.get_running_loop()
        if loop.time() - listed_at[0] >= POD_LIST_INTERVAL_SECONDS:
            listed_at[0] = loop.time()
            with contextlib.suppress(Exception):
                found = await asyncio.to_thread(cluster.pods, selector)
                pods[:] = [
                    (str(p["metadata"]["name"]), port)
                    for p in found
                    if (p.get("status") or {}).get("phase") == "Running" and (port := http_port(p)) is not None
                ]
        texts = await asyncio.gather(*(asyncio.to_thread(one, pod, port) for pod, port in pods))
        return {pod: text for (pod, _), text in zip(pods, texts, strict=True) if text is not None}

    return scrape


def http_port(pod: Mapping[str, Any]) -> int | None:
    """The port named `http` of the pod's containers (else the first port declared)."""
    ports = [port for container in pod["spec"]["containers"] for port in container.get("ports") or []]
    named = [port for port in ports if port.get("name") == "http"] or ports
    return int(named[0]["containerPort"]) if named else None


@dataclass
class Segment:
    phase: str
    start: float
    end: float | None = None
    result: wrk.WrkResult | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"phase": self.phase, "start_s": round(self.start, 2), "end_s": _round(self.end)}
        if self.result is not None:
            r = self.result
            out |= {
                "requests": r.requests,
                "seconds": round(r.seconds, 2),
                "per_second": round(r.throughput, 1),
                "statuses": {str(s): n for s, n in sorted(r.statuses.items())},
                "socket_errors": r.socket_errors,
                "timeouts": r.timeouts,
                "retry_after_503": r.retry_after_503,
                "bare_503": r.bare_503,
                "p50_ms": _round(r.p50_ms),
                "p99_ms": _round(r.p99_ms),
                "max_ms": _round(r.max_ms),
                "generator_cpu_seconds": round(r.generator_cpu_seconds, 2),
                "generator_saturated": r.generator_saturated,
            }
        if self.error:
            out["error"] = self.error
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


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
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._run: wrk.WrkRun | None = None
        self._drain: Path | None = None
        self._pending: list[asyncio.Task[None]] = []
        self._folder = Path(tempfile.mkdtemp(prefix="shop-drill-wrk-"))

    def start(self, phase: str) -> None:
        """Starts the segment of `phase` (raises `wrk.WrkError` when wrk cannot run)."""
        drain = self._folder / f"drain-{len(self.segments)}"
        self._run = wrk.start(
            self.url,
            connections=self.connections,
            seconds=self.cap_seconds,
            script=str(BROWSE_SCRIPT),
            params={"rate": f"{self.rate:g}", "paths": " ".join(self.paths), "drain_file": str(drain)},
            timeout_seconds=self.timeout_seconds,
        )
        self._drain = drain
        self.segments.append(Segment(phase, self.clock()))

    async def switch(self, phase: str) -> None:
        """Ends the current segment and starts the next at once (its result is read in the background)."""
        self._end_current()
        try:
            self.start(phase)
        except wrk.WrkError as exc:
            self.segments.append(Segment(phase, self.clock(), self.clock(), error=str(exc)[:300]))

    async def stop(self) -> None:
        """Ends the current segment and waits for every result."""
        self._end_current()
        if self._pending:
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
        segment.end = self.clock()
        self._pending.append(asyncio.create_task(self._collect(run, segment, self.drain_seconds)))

    @staticmethod
    async def _collect(run: wrk.WrkRun, segment: Segment, drain_seconds: float) -> None:
        await asyncio.sleep(drain_seconds)
        run.stop()
        try:
            segment.result = await asyncio.to_thread(run.result, 15)
        except wrk.WrkError as exc:
            segment.error = str(exc)[:300]

    def summary(self) -> dict[str, Any]:
        """wrk's totals over the segments and each segment's own figures (percentiles do not add up: per phase)."""
        results = [s.result for s in self.segments if s.result is not None]
        statuses: dict[str, int] = {}
        for result in results:
            for status, count in result.statuses.items():
                statuses[str(status)] = statuses.get(str(status), 0) + count
        seconds = sum(r.seconds for r in results)
        requests = sum(r.requests for r in results)
        return {
            "generator": "wrk",
            "url": self.url,
            "rate": self.rate,
            "connections": self.connections,
            "paths": len(self.paths),
            "requests": requests,
            "seconds": round(seconds, 2),
            "per_second": round(requests / seconds, 1) if seconds else None,
            "statuses": dict(sorted(statuses.items())),
            "socket_errors": sum(r.socket_errors for r in results),
            "timeouts": sum(r.timeouts for r in results),
            "retry_after_503": sum(r.retry_after_503 for r in results),
            "bare_503": sum(r.bare_503 for r in results),
            "generator_cpu_seconds": round(sum(r.generator_cpu_seconds for r in results), 2),
            "generator_saturated": any(r.generator_saturated for r in results),
            "segments": [s.as_json() for s in self.segments],
        }


def default_connections(rate: float) -> int:
    """Enough connections that each waits about half a second between its requests: pacing (wrk's `delay()`, taken
    between an answer and the next request) then loses little to the shop's own latency."""
    return max(1, round(rate / 2))
