"""The browsing counted second by second by the storefront itself. wrk reports only at the end of a run, so the
per-second series comes from the server: once a second the drill reads storefront's `http_requests_total`
(prometheus-fastapi-instrumentator) for `GET` on the gateway route, by status, from every storefront process (with
a cluster: each storefront pod, through the API). That counts what the storefront saw and answered, including
requests wrk gave up on; it also counts the drill customers' own catalog refresh (one list page every 5 s).
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from shop_load.core.records import CounterSample
from shop_load.core.scrape import parse

if TYPE_CHECKING:
    from shop_devtools.cluster.kube import Cluster

GATEWAY_HANDLER = "/api/{path:path}"
"""The storefront route every `/api/...` request goes through (its `handler` label)."""
SAMPLE_INTERVAL_SECONDS = 1.0
SCRAPE_TIMEOUT_SECONDS = 2.0
POD_LIST_INTERVAL_SECONDS = 10.0

Scrape = Callable[[], Awaitable[dict[str, str]]]
"""One read of `/metrics` from every storefront process: source name → text (a process that did not answer is
left out)."""


def requests_total(text: str, *, handler: str = GATEWAY_HANDLER, method: str = "GET") -> dict[int, int]:
    """`http_requests_total` of one handler and method by status, from a Prometheus text exposition."""
    return parse(text).statuses(handler=handler, method=method)


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
        for source, counts in counts_by_source.items():
            last = self._last.get(source)
            if self.samples:  # the first sample is the baseline
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
        done, t = stop.is_set(), clock()
        try:
            counts = {source: requests_total(text) for source, text in (await scrape()).items()}
        except Exception:  # a failed read is a gap, never the end of the drill
            counts = {}
        counter.observe((t + clock()) / 2, counts)
        if done:
            return
        with contextlib.suppress(TimeoutError):  # until the next whole second of `clock`
            await asyncio.wait_for(stop.wait(), SAMPLE_INTERVAL_SECONDS - clock() % SAMPLE_INTERVAL_SECONDS)


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
