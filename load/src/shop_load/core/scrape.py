"""What a service counted itself: its `/metrics` (Prometheus text) read before and after a run, subtracted.

Status counts taken this way include the requests a load generator gave up on when its run ended: the server
answered them, and counted them, all the same.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    samples: Mapping[tuple[str, Labels], float]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def statuses(self, *, handler: str, method: str) -> dict[int, int]:
        """`http_requests_total` (prometheus-fastapi-instrumentator) of one route, by status code."""
        counts: dict[int, int] = {}
        for (name, labels), value in self.samples.items():
            found = dict(labels)
            if name == "http_requests_total" and found.get("handler") == handler and found.get("method") == method:
                status = int(found["status"]) if found.get("status", "").isdigit() else 0
                counts[status] = counts.get(status, 0) + int(value)
        return counts

    def statuses_since(self, before: "Scrape", *, handler: str, method: str) -> dict[int, int]:
        now, then = self.statuses(handler=handler, method=method), before.statuses(handler=handler, method=method)
        return {
            status: count - then.get(status, 0) for status, count in sorted(now.items()) if count > then.get(status, 0)
        }

    def since(self, before: "Scrape", name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)


def parse(text: str) -> Scrape:
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples)


def scrape(base_url: str, *, timeout: float = 5.0) -> Scrape:
    """`GET {base_url}/metrics`, parsed; `httpx.HTTPError` when the service does not answer 200."""
    response = httpx.get(base_url.rstrip("/") + "/metrics", timeout=timeout)
    response.raise_for_status()
    return parse(response.text)
