"""The sale's readiness watch: one thread per service polling `GET /ready` every 200 ms (an answer later than
1 s, a kubelet's default probe timeout, is a failed probe) and its resident memory every second, counted per
service (`ProbeCount`).
"""

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from shop_load.core.scrape import scrape

READY_POLL_SECONDS = 0.2
READY_TIMEOUT_SECONDS = 1.0
"""A kubelet's default probe timeout: a slower answer is a failed probe."""
MEMORY_EVERY_POLLS = 5


@dataclass
class ProbeCount:
    polls: int = 0
    not_ready: int = 0
    """Answers other than 200."""
    no_answer: int = 0
    """No answer within 1 s (or no connection)."""
    first_failure: str | None = None
    rss_first_bytes: int | None = None
    """The process's resident memory (`shop_resident_memory_bytes`) when the watch began: the cold process."""
    rss_peak_bytes: int | None = None
    """... and the most it reached, sampled every second."""

    @property
    def flips(self) -> int:
        return self.not_ready + self.no_answer


class ReadinessWatch:
    """One thread per service polling `GET /ready` every 200 ms until `stop()`, and its memory every second."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self.counts = {name: ProbeCount() for name in urls}
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._poll, args=(n, u), daemon=True) for n, u in urls.items()]

    def __enter__(self) -> "ReadinessWatch":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> dict[str, ProbeCount]:
        self._stop.set()
        for thread in self._threads:
            thread.join(READY_TIMEOUT_SECONDS + 1)
        return self.counts

    def _poll(self, name: str, base_url: str) -> None:
        count = self.counts[name]
        with httpx.Client(timeout=READY_TIMEOUT_SECONDS) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                failure = None
                try:
                    response = client.get(base_url + "/ready")
                    if response.status_code != 200:
                        count.not_ready += 1
                        failure = f"answered {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    count.no_answer += 1
                    failure = f"no answer ({type(exc).__name__})"
                if count.polls % MEMORY_EVERY_POLLS == 0:
                    self._sample_memory(count, base_url)
                count.polls += 1
                if failure and count.first_failure is None:
                    count.first_failure = f"at {started - self._t0:.1f} s: {failure}"
                self._stop.wait(max(0.0, READY_POLL_SECONDS - (time.monotonic() - started)))

    @staticmethod
    def _sample_memory(count: ProbeCount, base_url: str) -> None:
        try:
            rss = int(scrape(base_url, timeout=READY_TIMEOUT_SECONDS).value("shop_resident_memory_bytes"))
        except httpx.HTTPError:
            return
        if count.rss_first_bytes is None:
            count.rss_first_bytes = rss
        count.rss_peak_bytes = max(rss, count.rss_peak_bytes or 0)
