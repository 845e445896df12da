"""Readiness and kept-alive connections, as on Kubernetes: kube-proxy steers only new connections to ready pods,
so a pod out of rotation answers `Connection: close` and its clients' next requests reach another replica."""

import asyncio
import contextlib
import itertools
import signal
import threading
from collections.abc import Iterator, Sequence

import httpx
import pytest

from shop_devtools.processes import free_port
from tests.process.conftest import ServiceProcess, StartService

pytestmark = pytest.mark.process

CHAOS = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": "keepalive-test-token"}
TOKEN = {"X-Chaos-Token": CHAOS["CHAOS_TOKEN"]}


class KubeProxy:
    """A TCP balancer as kube-proxy is one: each new connection goes to the next backend whose `/ready` answers 200
    (the Service's endpoints); a connection, once made, stays with its backend whatever becomes of it."""

    def __init__(self, backends: Sequence[ServiceProcess]) -> None:
        self.backends = backends
        self.port = free_port()
        self.connections: list[str] = []
        self._turn = itertools.count()
        self._started = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    def _endpoints(self) -> list[ServiceProcess]:
        def ready(backend: ServiceProcess) -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(backend.url + "/ready", timeout=2).status_code == 200
            return False

        return [backend for backend in self.backends if ready(backend)]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        endpoints = await asyncio.to_thread(self._endpoints)
        backend = endpoints[next(self._turn) % len(endpoints)]
        self.connections.append(backend.name)
        reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
        self._writers.add(writer)
        await asyncio.gather(self._pipe(client_reader, writer), self._pipe(reader, client_writer))

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self._started.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for writer in self._writers:
                writer.close()
            for writer in self._writers:
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        loop = asyncio.new_event_loop()
        self._stopping = asyncio.Event()
        thread = threading.Thread(target=loop.run_until_complete, args=(self._serve(),), daemon=True)
        thread.start()
        self._started.wait(5)
        try:
            yield f"http://127.0.0.1:{self.port}"
        finally:
            loop.call_soon_threadsafe(self._stopping.set)
            thread.join(10)
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()


def served(replica: ServiceProcess) -> float:
    text = httpx.get(replica.url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("http_requests_total{") and 'handler="/products"' in line
    )


def test_an_unready_replica_closes_kept_alive_connections_and_gets_at_most_one_more_request(
    start_service: StartService, database_urls: dict[str, str]
) -> None:
    a = start_service("catalog", DATABASE_URL=database_urls["catalog"], **CHAOS)
    b = start_service("catalog", DATABASE_URL=database_urls["catalog"], **CHAOS)
    a.name, b.name = "a", "b"
    proxy = KubeProxy([a, b])
    with proxy.running() as service, httpx.Client(base_url=service, limits=httpx.Limits(max_connections=1)) as client:
        for _ in range(5):
            assert client.get("/products").status_code == 200
        assert proxy.connections == ["a"], "one kept-alive connection, to the first replica"

        assert httpx.post(a.url + "/chaos/unready", headers=TOKEN).status_code == 200
        before = served(a)
        answers = [client.get("/products") for _ in range(10)]

    assert all(answer.status_code == 200 for answer in answers)
    assert answers[0].headers["connection"] == "close", "the unready replica's answer on the kept-alive connection"
    assert served(a) - before <= 1
    assert proxy.connections[1:] == ["b"], "the next connection went to the ready replica, and stayed there"
    assert all("connection" not in answer.headers for answer in answers[1:])


def test_a_draining_service_answers_connection_close(
    start_service: StartService, database_urls: dict[str, str]
) -> None:
    catalog = start_service("catalog", DATABASE_URL=database_urls["catalog"], SHUTDOWN_DELAY_SECONDS="5")
    with httpx.Client(base_url=catalog.url) as client:
        assert "connection" not in client.get("/products").headers
        catalog.process.send_signal(signal.SIGTERM)
        for _ in range(50):
            if client.get("/ready").status_code == 503:
                break
        draining = client.get("/products")
    assert draining.status_code == 200, "still answering while it drains"
    assert draining.headers["connection"] == "close"
