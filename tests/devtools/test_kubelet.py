"""make run's probers (`shop_devtools.kubelet.run_probe`) against a real HTTP server process whose answer the test
decides: a failure counts only once the process has started, the threshold is counted in a row, and a new process
starts the count afresh."""

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from shop_devtools.kubelet import Probe, run_probe
from shop_devtools.processes import Child, free_port

PERIOD = 0.1


@dataclass
class Served:
    """What a prober reads of a `Child`: its process and its URL."""

    process: "subprocess.Popen[bytes]"
    url: str


def serve(directory: Path, port: int) -> "subprocess.Popen[bytes]":
    """`/healthz` answers 200 while the file `healthz` is in `directory`, 404 otherwise."""
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(directory), str(port)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    target = Served(serve(tmp_path, port), f"http://127.0.0.1:{port}")
    yield target
    target.process.kill()
    target.process.wait()


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(PERIOD / 2)


def test_liveness_fails_after_the_threshold_in_a_row_once_started_and_counts_afresh_for_a_new_process(
    tmp_path: Path, served: Served
) -> None:
    failures: list[tuple[int, str]] = []
    stop = threading.Event()
    probe = Probe("/healthz", PERIOD, 1.0, 3)

    def failed(child: Child, why: str) -> None:
        failures.append((child.process.pid, why))

    prober = threading.Thread(target=run_probe, args=(cast(Child, served), probe, stop, failed), daemon=True)
    prober.start()
    try:
        time.sleep(PERIOD * 8)
        assert failures == [], "404s before the process ever answered 200: still starting, not failing"
        (tmp_path / "healthz").write_text("ok")
        time.sleep(PERIOD * 4)
        (tmp_path / "healthz").unlink()
        wait_for(lambda: failures)
        ((pid, why),) = failures
        assert pid == served.process.pid
        assert why.startswith("GET /healthz failed 3 times"), why
        assert "404" in why, why

        old = served.process
        old.kill()
        old.wait()
        served.process = serve(tmp_path, int(served.url.rsplit(":", 1)[1]))
        time.sleep(PERIOD * 8)
        assert len(failures) == 1, "the new process has not answered 200 yet: its failures do not count"
        (tmp_path / "healthz").write_text("ok")
        time.sleep(PERIOD * 4)
        (tmp_path / "healthz").unlink()
        wait_for(lambda: len(failures) == 2)
        assert failures[1][0] == served.process.pid != pid
    finally:
        stop.set()
        prober.join(timeout=5)
