"""shop_load.generators.wrk: parsing the scripts' report line, and the real wrk with the shipped scripts against a
tiny server of this test that counts what it received, so what wrk reports can be compared with what was sent."""

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shop_load.generators import wrk, wrk_report

LINE = (
    'WRK_JSON {"requests": 12, "duration_us": 2000000, "statuses": {"201": 9, "503": 3}, "socket_errors": 1,'
    ' "timeouts": 2, "non_2xx_3xx": 3, "p50_us": 1500, "p99_us": 9000.5, "max_us": 12000, "retry_after_503": 2,'
    ' "bare_503": 1}'
)

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


def test_the_report_line_is_parsed_into_a_result() -> None:
    result = wrk_report.parse_report(
        "Running 2s test @ http://x\n" + LINE + "\n", generator_cpu_seconds=0.5, threads=1, connections=4
    )
    assert result.requests == 12
    assert result.seconds == 2.0
    assert result.throughput == 6.0
    assert result.statuses == {201: 9, 503: 3}
    assert (result.socket_errors, result.timeouts) == (1, 2)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (1.5, 9.0005, 12.0)
    assert (result.retry_after_503, result.bare_503) == (2, 1)
    assert result.extra == {"non_2xx_3xx": 3}
    assert result.count(201, 503) == 12
    assert not result.generator_saturated
    written = json.loads(result.model_dump_json())
    assert (written["statuses"], written["throughput"], written["generator_saturated"]) == (
        {"201": 9, "503": 3},
        6,
        False,
    )
    assert "extra" not in written
    assert wrk_report.WrkResult.model_validate_json(result.model_dump_json()) == result.model_copy(update={"extra": {}})


def test_no_answer_means_no_percentiles() -> None:
    empty = LINE.replace('"requests": 12', '"requests": 0').replace('"p50_us": 1500', '"p50_us": null')
    assert wrk_report.parse_report(empty).p50_ms is None


def test_the_last_report_line_counts_and_a_missing_one_is_an_error() -> None:
    later = LINE.replace('"requests": 12', '"requests": 13')
    assert wrk_report.parse_report(f"{LINE}\n{later}\n").requests == 13
    with pytest.raises(wrk.WrkError, match="no WRK_JSON line"):
        wrk_report.parse_report("Running 2s test\n  Latency 1ms\n")
    with pytest.raises(wrk.WrkError, match="not what the scripts print"):
        wrk_report.parse_report('WRK_JSON {"requests": 1}\n')


@pytest.mark.parametrize(
    ("cpu", "threads", "saturated"), [(1.8, 1, True), (1.7, 1, False), (3.6, 2, True), (2.0, 2, False)]
)
def test_a_generator_busy_90_percent_of_each_thread_is_saturated(cpu: float, threads: int, saturated: bool) -> None:
    result = wrk_report.parse_report(LINE, generator_cpu_seconds=cpu, threads=threads)
    assert result.generator_saturated is saturated


def test_without_wrk_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(wrk.WrkError, match=r"apt-get install wrk.*brew install wrk"):
        wrk.require_wrk()
    with pytest.raises(wrk.WrkError, match="apt-get install wrk"):
        wrk.start("http://127.0.0.1:1/", connections=1, seconds=1)


def test_an_unknown_script_is_refused_with_the_shipped_ones() -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    with pytest.raises(wrk.WrkError, match="checkout, get"):
        wrk.start("http://127.0.0.1:1/", connections=1, seconds=1, script="nope")


def test_the_scripts_ship_with_the_package() -> None:
    assert {p.name for p in wrk.SCRIPTS.glob("*.lua")} >= {"get.lua", "checkout.lua", "report.lua"}


# The real wrk against a counting server


@dataclass
class Received:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: dict[int, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    bodies: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    retry_after: int = 0


@pytest.fixture
def server() -> Iterator[tuple[str, Received]]:
    """GET: 200 (after 1.5 s for /slow). POST: the body's `answer` (a 503 with `retry` carries Retry-After), or 201."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def answer(self, status: int, headers: dict[str, str] | None = None) -> None:
            body = b'{"ok": true}'
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            with received.lock:
                received.statuses[status] = received.statuses.get(status, 0) + 1
                received.retry_after += "Retry-After" in (headers or {})

        def do_GET(self) -> None:
            if self.path == "/slow":
                time.sleep(1.5)
            self.answer(200)

        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with received.lock:
                received.keys.append(self.headers["Idempotency-Key"])
                received.tokens.append(self.headers["Authorization"])
                received.bodies.append((self.headers["Idempotency-Key"], payload))
            status = int(payload.get("answer", 201))
            self.answer(status, {"Retry-After": "1"} if payload.get("retry") else None)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()


@needs_wrk
def test_plain_gets_from_two_threads_are_all_counted(server: tuple[str, Received]) -> None:
    url, received = server
    result = wrk.run(url + "/products?limit=20", connections=4, threads=2, seconds=1)
    assert result.requests > 0
    assert result.statuses == {200: result.requests}, "the counts of both threads are summed"
    assert result.requests <= received.statuses[200]
    assert result.p50_ms is not None
    assert result.p99_ms is not None
    assert result.max_ms is not None
    assert result.p50_ms <= result.p99_ms <= result.max_ms
    assert 0.5 <= result.seconds < 3
    assert result.generator_cpu_seconds > 0
    assert (result.threads, result.connections) == (2, 4)


@needs_wrk
def test_paced_gets_stay_near_the_rate(server: tuple[str, Received]) -> None:
    url, _ = server
    result = wrk.run(url + "/", connections=4, seconds=2, params={"rate": "20"})
    assert 0 < result.throughput <= 40, "paced at about 20/s over all connections, never faster than twice that"


@needs_wrk
def test_checkouts_send_unique_keys_the_tokens_in_turn_and_count_503s_with_retry_after(
    server: tuple[str, Received], tmp_path: Path
) -> None:
    url, received = server
    tokens = tmp_path / "tokens"
    tokens.write_text("alpha\nbeta\ngamma\n")
    bodies = [{"answer": 201}, {"answer": 503, "retry": True}, {"answer": 503}]
    bodies_file = tmp_path / "bodies"
    bodies_file.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    params = {"tokens_file": str(tokens), "bodies_file": str(bodies_file), "key_prefix": "test"}
    result = wrk.run(url + "/payments", connections=4, threads=2, seconds=1, script="checkout", params=params)

    assert result.requests > 0
    assert len(received.keys) == len(set(received.keys)), "a fresh Idempotency-Key per request"
    assert all(key.startswith("test-") for key in received.keys)
    for key, body in received.bodies:
        assert bodies[int(key.rsplit("-b", 1)[1])] == body, "the key names the body it was sent with"
    assert set(received.tokens) == {"Bearer alpha", "Bearer beta", "Bearer gamma"}
    assert result.count(201, 503) == result.requests
    assert result.retry_after_503 + result.bare_503 == result.count(503)
    assert result.retry_after_503 <= received.retry_after
    assert result.bare_503 <= received.statuses.get(503, 0) - received.retry_after
    assert result.retry_after_503 > 0
    assert result.bare_503 > 0


@needs_wrk
def test_a_run_stopped_early_still_reports(server: tuple[str, Received]) -> None:
    url, _ = server
    started = time.monotonic()
    run = wrk.start(url + "/", connections=2, seconds=60)
    time.sleep(1)
    run.stop()
    result = run.result()
    assert time.monotonic() - started < 15
    assert result.requests > 0
    assert result.seconds < 15


@needs_wrk
def test_checkouts_wait_the_retry_after_of_a_503_when_asked_to(server: tuple[str, Received], tmp_path: Path) -> None:
    url, _ = server
    (tmp_path / "tokens").write_text("alpha\n")
    params = {"tokens_file": str(tmp_path / "tokens"), "body": json.dumps({"answer": 503, "retry": True})}
    hammering = wrk.run(url + "/payments", connections=2, seconds=2, script="checkout", params=params)
    honouring = wrk.run(
        url + "/payments", connections=2, seconds=2, script="checkout", params={**params, "retry_after": "1"}
    )
    assert honouring.retry_after_503 == honouring.requests > 0
    assert honouring.requests <= 2 * 3, "each connection waits about 1 s after each 503"
    assert hammering.requests > honouring.requests


@needs_wrk
def test_answers_later_than_the_timeout_are_timeouts_without_a_latency(server: tuple[str, Received]) -> None:
    url, _ = server
    result = wrk.run(url + "/slow", connections=1, seconds=2, timeout_seconds=1)
    assert result.timeouts == result.requests > 0
    assert result.p50_ms is None
    assert result.max_ms is None
