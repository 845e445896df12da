"""The drill's browsing: the mix wrk asks for, the storefront counts read from /metrics, and wrk itself driving a
small local HTTP server through `browse.lua`, one segment per phase."""

import asyncio
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shop_load.core.records import CounterSample, WrkBrowsing, WrkResult, WrkSegment
from shop_load.core.shopping import TASK_WEIGHTS
from shop_load.generators import browse_counts
from shop_load.generators.browse_counts import ServerCounter, requests_total
from shop_load.generators.browsing import Browsing, browse_paths

METRICS = """\
# HELP http_requests_total Total number of requests by method, status and handler.
# TYPE http_requests_total counter
http_requests_total{handler="/api/{path:path}",method="GET",status="200"} 1200.0
http_requests_total{handler="/api/{path:path}",method="GET",status="503"} 7.0
http_requests_total{handler="/api/{path:path}",method="POST",status="201"} 90.0
http_requests_total{method="GET",status="404",handler="/api/{path:path}"} 2.0
http_requests_total{handler="/",method="GET",status="200"} 5.0
http_request_duration_highr_seconds_bucket{le="0.005"} 10.0
"""


def test_the_gateway_gets_are_read_by_status_whatever_the_label_order() -> None:
    assert requests_total(METRICS) == {200: 1200.0, 503: 7.0, 404: 2.0}
    assert requests_total(METRICS, method="POST") == {201: 90.0}
    assert requests_total("") == {}


def test_the_browsing_mix_has_the_weights_of_a_shop() -> None:
    paths = browse_paths(["KB-ERGO-01", "MS-VERT-02"])
    kinds = Counter("view" if p.startswith("/api/products/") else "search" if "q=" in p else "browse" for p in paths)
    assert kinds == {kind: TASK_WEIGHTS[kind] for kind in ("browse", "search", "view")}
    assert "/api/products?limit=20&offset=20" in paths
    assert "/api/products/MS-VERT-02" in paths
    assert all(" " not in p for p in paths)


def test_server_counts_start_from_the_first_sample_and_survive_restarts_and_new_pods() -> None:
    counter = ServerCounter()
    counter.observe(0.0, {"pod-a": {200: 1000.0}, "pod-b": {200: 500.0}})
    counter.observe(1.0, {"pod-a": {200: 1100.0}, "pod-b": {200: 550.0, 503: 3.0}})
    counter.observe(2.0, {})  # nobody answered: no sample
    counter.observe(3.0, {"pod-a": {200: 40.0}, "pod-b": {200: 600.0, 503: 3.0}, "pod-c": {200: 20.0}})
    assert counter.samples == [
        CounterSample(0.0, {}),
        CounterSample(1.0, {200: 150.0, 503: 3.0}),
        CounterSample(3.0, {200: 150.0 + 40 + 50 + 20, 503: 3.0}),  # pod-a restarted, pod-c is new
    ]


def test_the_sampler_reads_once_a_second_and_once_more_at_the_end() -> None:
    reads = iter([1000.0, 1300.0, 1600.0, 1900.0, 2200.0])

    async def scrape() -> dict[str, str]:
        value = next(reads)
        return {"storefront": f'http_requests_total{{handler="/api/{{path:path}}",method="GET",status="200"}} {value}'}

    async def main() -> ServerCounter:
        counter, stop = ServerCounter(), asyncio.Event()
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(browse_counts.sample_forever(scrape, counter, lambda: loop.time() - started, stop))
        await asyncio.sleep(2.5)
        stop.set()
        await task
        return counter

    counter = asyncio.run(main())
    assert [round(s.t) for s in counter.samples] == [0, 1, 2, 3]
    assert counter.samples[-1].counts == {200: 900.0}


def test_the_browsing_adds_up_its_segments_and_is_saturated_when_one_was() -> None:
    def ran(seconds: float, cpu: float, statuses: dict[int, int]) -> WrkResult:
        return WrkResult(
            requests=sum(statuses.values()),
            seconds=seconds,
            statuses=statuses,
            socket_errors=1,
            timeouts=2,
            generator_cpu_seconds=cpu,
            retry_after_503=statuses.get(503, 0),
            p99_ms=9.0,
        )

    browse = Browsing("http://shop", 300, 150, ["/api/products"], lambda: 0.0, cap_seconds=30)
    browse.kill()  # nothing runs: its segments are given
    browse.segments = [
        WrkSegment(phase="before", start_s=0, end_s=10, result=ran(10, 1, {200: 3000})),
        WrkSegment(phase="during", start_s=10, end_s=12, result=ran(2, 1.9, {200: 500, 503: 100})),
        WrkSegment(phase="after", start_s=12, end_s=12, error="wrk exited with 1"),
    ]
    summary = browse.summary()
    assert (summary.requests, summary.seconds, summary.statuses) == (3600, 12, {200: 3500, 503: 100})
    assert (summary.socket_errors, summary.timeouts, summary.retry_after_503, summary.bare_503) == (2, 4, 100, 0)
    assert (summary.throughput, summary.generator_cpu_seconds, summary.p99_ms) == (300, 2.9, None)
    assert summary.generator_saturated, "the during segment was: 1.9 s of CPU in 2 s"
    assert (summary.connections, summary.paths, summary.rate) == (150, 1, 300)
    written = json.loads(summary.model_dump_json())
    assert (written["requests"], written["generator_saturated"], written["segments"][2]["result"]) == (3600, True, None)
    assert WrkBrowsing.model_validate(written) == summary


class Shop(BaseHTTPRequestHandler):
    """Answers every GET after `latency` seconds; counts what it answered and what the client cut."""

    protocol_version = "HTTP/1.1"  # kept-alive connections, like the storefront's
    seen: Counter[str] = Counter()
    latency = 0.0
    answered = 0
    cut = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with Shop.lock:
            Shop.seen[self.path] += 1
        time.sleep(Shop.latency)
        body = b'{"items": [], "total": 0}'
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            with Shop.lock:
                Shop.cut += 1
            raise
        with Shop.lock:
            Shop.answered += 1

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A connection wrk closed (idle at its end, or cut: `Shop.cut` counts those) is no error to print."""


@pytest.fixture
def tiny_shop() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Shop.seen.clear()
    Shop.latency, Shop.answered, Shop.cut = 0.0, 0, 0
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def browse_before_and_during(
    shop: str, rate: float, connections: int, paths: list[str], *, drain_seconds: float
) -> Browsing:
    """1.5 s of a "before" segment, 1.5 s of a "during" one, then stopped (each finished segment drained)."""

    async def main() -> Browsing:
        loop = asyncio.get_running_loop()
        started = loop.time()
        clock = lambda: loop.time() - started  # noqa: E731
        browse = Browsing(shop, rate, connections, paths, clock, cap_seconds=30, drain_seconds=drain_seconds)
        browse.start("before")
        await asyncio.sleep(1.5)
        await browse.switch("during")
        await asyncio.sleep(1.5)
        await browse.stop()
        return browse

    return asyncio.run(main())


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_browses_the_mix_paced_in_one_segment_per_phase(tiny_shop: str) -> None:
    paths = browse_paths(["KB-ERGO-01"])

    summary = browse_before_and_during(tiny_shop, 40, 4, paths, drain_seconds=0.5).summary()
    before, during = summary.segments
    assert (before.phase, during.phase) == ("before", "during")
    assert before.end_s == pytest.approx(during.start_s, abs=0.1)
    assert 20 <= summary.requests <= 150, "paced near 40/s for 3 s, not as fast as wrk can"
    assert summary.statuses == {200: summary.requests}
    assert (summary.retry_after_503, summary.bare_503) == (0, 0)
    assert sum(Shop.seen.values()) >= summary.requests
    assert set(Shop.seen) <= set(paths)
    assert any("q=" in p for p in Shop.seen)
    assert any(p.startswith("/api/products/KB") for p in Shop.seen)
    assert during.result is not None
    assert during.result.p99_ms is not None


class FakeCluster:
    """The two calls `cluster_scrape` makes: the storefront pods, and one request to a pod's own port."""

    def __init__(self) -> None:
        self.counts = {"storefront-a": 100.0, "storefront-b": 50.0}
        self.selectors: list[str] = []

    def pods(self, selector: str) -> list[dict[str, object]]:
        self.selectors.append(selector)

        def pod(name: str, phase: str) -> dict[str, object]:
            ports = [{"name": "metrics", "containerPort": 9000}, {"name": "http", "containerPort": 8080}]
            return {"metadata": {"name": name}, "spec": {"containers": [{"ports": ports}]}, "status": {"phase": phase}}

        return [pod("storefront-a", "Running"), pod("storefront-b", "Running"), pod("storefront-c", "Pending")]

    def request(self, pod: str, port: int, method: str, path: str, *, timeout: float) -> tuple[int, str]:
        assert (port, method, path) == (8080, "GET", "/metrics")
        if pod == "storefront-b" and self.counts[pod] > 50:
            raise OSError("port-forward dropped")
        line = f'http_requests_total{{handler="/api/{{path:path}}",method="GET",status="200"}} {self.counts[pod]}'
        return 200, line


def test_with_a_cluster_every_storefront_pod_is_read_through_the_api() -> None:
    cluster = FakeCluster()
    scrape = browse_counts.cluster_scrape(cluster, "app.kubernetes.io/name=storefront")  # type: ignore[arg-type]
    counter = ServerCounter()

    async def main() -> None:
        counter.observe(0.0, {pod: requests_total(text) for pod, text in (await scrape()).items()})
        cluster.counts = {"storefront-a": 160.0, "storefront-b": 80.0}
        texts = await scrape()  # pod b's read fails: counted at its next read
        assert set(texts) == {"storefront-a"}
        counter.observe(1.0, {pod: requests_total(text) for pod, text in texts.items()})

    asyncio.run(main())
    assert cluster.selectors == ["app.kubernetes.io/name=storefront"]  # pods listed again only every 10 s
    assert [s.counts for s in counter.samples] == [{}, {200: 60.0}]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_a_segment_ends_without_cutting_the_requests_it_has_in_flight(tiny_shop: str) -> None:
    Shop.latency = 0.3  # a slow shop: at 60/s about 18 requests are always in flight

    # A request paced before the drain file appears still goes out after its delay: up to 1.5 x 30/60 s = 0.75 s,
    # then 0.3 s to its answer. The drain waits longer than both (1 s did not, once in a loaded CI run).
    summary = browse_before_and_during(tiny_shop, 60, 30, browse_paths([]), drain_seconds=2).summary()
    time.sleep(0.5)  # the server's threads finish writing
    assert Shop.cut == 0, "no request cut by a stopped wrk"
    assert Shop.answered == sum(Shop.seen.values()) == summary.requests > 30
