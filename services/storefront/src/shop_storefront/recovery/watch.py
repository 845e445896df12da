"""What the page shows: each replica asked what the kubelet asks it, its `/metrics` read, and what changed since
the last look kept as a timeline, with the checkout rate over the last minutes.

A look is taken when the page asks and the last one is older than `MIN_INTERVAL_SECONDS`; open pages share it.
Counters are summed over replicas with their resets handled: a replica with a new process start time (or a counter
that went down) counted from zero again, so its whole value is new.
"""

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from shop_storefront.metrics import GATEWAY_REQUESTS
from shop_storefront.recovery.sources import ClusterEvent, Listed, Listing, Source

MIN_INTERVAL_SECONDS = 0.8
PROBE_TIMEOUT_SECONDS = 1.0
"""The manifests' readiness timeout: a replica that does not answer within it is what the kubelet calls failing."""
TIMEOUT = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
WINDOW_SECONDS = 300
"""The checkout chart's span: the last five minutes."""
RATE_SECONDS = 10
TIMELINE_LENGTH = 200
NOTED_SECONDS = 10.0
SEEN_RESTART = "a new process (why is the engine's to say)"
CLUSTER_HISTORY_SECONDS = 600
"""On the first look, the cluster's Events of the last ten minutes start the timeline."""
WANTED = (
    "shop_live",
    "shop_in_rotation",
    "shop_resident_memory_bytes",
    "shop_memory_budget_bytes",
    "shop_memory_limit_bytes",
    "shop_chaos_leaked_bytes",
    "shop_chaos_injections_total",
    "shop_payments_total",
    "process_start_time_seconds",
)
SCRAPED = [("name[]", name) for name in WANTED]
"""Only these are asked for: the whole exposition costs a replica about 1 ms of CPU, these a fraction of it."""
FAILED_OUTCOMES = ("server_error", "unavailable", "timeout", "busy")
DATABASE_SERVICES = frozenset({"catalog", "users", "payment"})


@dataclass
class Replica:
    """One replica as the page shows it."""

    name: str
    service: str
    state: str
    restarts: int | None
    last_reason: str
    live: bool | None = None
    live_detail: str = ""
    ready: bool | None = None
    ready_detail: str = ""
    memory_bytes: int | None = None
    budget_bytes: int | None = None
    limit_bytes: int | None = None
    leaked_bytes: int = 0
    started_at: float | None = None
    injections: dict[str, int] = field(default_factory=dict)
    payments: dict[str, int] = field(default_factory=dict)


def _metrics(text: str) -> dict[str, dict[str, float]]:
    """The few series the page reads, by name and then by label value (`""` for a series without labels). Only
    their lines are parsed: a service's whole exposition is a hundred times larger."""
    lines = "\n".join(line for line in text.splitlines() if line.startswith(WANTED))
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(lines + "\n"):
        for sample in family.samples:
            label = next(iter(sample.labels.values()), "")
            found.setdefault(sample.name, {})[label] = sample.value
    return found


def _positive(value: float | None) -> int | None:
    return int(value) if value else None


async def _get(
    session: aiohttp.ClientSession, url: str, query: Sequence[tuple[str, str]] = ()
) -> tuple[int, str] | str:
    """The status and body of a GET, or why there was none (no answer in time, not listening)."""
    try:
        async with session.get(url, params=list(query), timeout=TIMEOUT) as response:
            return response.status, await response.text()
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"
    except aiohttp.ClientError as exc:
        return f"not answering ({type(exc).__name__})"


async def _reason(session: aiohttp.ClientSession, url: str) -> str:
    """Why a probe fails, as the replica says it (or why it did not answer)."""
    answer = await _get(session, url)
    if isinstance(answer, str):
        return answer
    try:
        reason = str(json.loads(answer[1]).get("reason", ""))
    except (ValueError, AttributeError):
        reason = ""
    return reason or f"answered {answer[0]}"


async def observe(session: aiohttp.ClientSession, listed: Listed) -> Replica:
    """Reads the replica's `/metrics`: its verdicts (`shop_live`, `shop_in_rotation`: what its last readiness probe
    found, the kubelet's or the launcher's), memory and counters. Only a replica failing one asks `/healthz` or
    `/ready` for the reason: a look costs a sound replica one scrape of a few series (a fraction of a millisecond
    of its CPU, where `/ready` and its database check cost 2)."""
    replica = Replica(listed.name, listed.service, listed.state, listed.restarts, listed.last_reason)
    replica.ready, replica.limit_bytes = listed.ready, listed.limit_bytes
    if listed.url is None:
        replica.live = listed.ready
        return replica
    answer = await _get(session, f"{listed.url}/metrics", SCRAPED)
    if isinstance(answer, tuple) and answer[0] != 200:
        answer = f"/metrics answered {answer[0]}"
    metrics = _metrics(answer[1]) if isinstance(answer, tuple) else {}
    live, in_rotation = metrics.get("shop_live", {}).get("") == 1, metrics.get("shop_in_rotation", {}).get("") == 1
    replica.live = live
    if listed.ready is None:
        replica.ready = in_rotation
    if isinstance(answer, str):
        replica.live_detail = replica.ready_detail = answer
    else:
        if not live:
            replica.live_detail = await _reason(session, f"{listed.url}/healthz")
        if not (in_rotation and replica.ready is not False):
            replica.ready_detail = await _reason(session, f"{listed.url}/ready")
    replica.memory_bytes = _positive(metrics.get("shop_resident_memory_bytes", {}).get(""))
    replica.budget_bytes = _positive(metrics.get("shop_memory_budget_bytes", {}).get(""))
    replica.limit_bytes = _positive(metrics.get("shop_memory_limit_bytes", {}).get("")) or listed.limit_bytes
    replica.leaked_bytes = int(metrics.get("shop_chaos_leaked_bytes", {}).get("", 0))
    replica.started_at = metrics.get("process_start_time_seconds", {}).get("")
    replica.injections = {k: int(v) for k, v in metrics.get("shop_chaos_injections_total", {}).items()}
    replica.payments = {k: int(v) for k, v in metrics.get("shop_payments_total", {}).items()}
    return replica


def gateway_failures() -> int:
    """Checkout calls this storefront could not answer from payment (5xx, unreachable, late, busy): what a
    customer saw fail, from this process's own counter."""
    total = 0.0
    for metric in GATEWAY_REQUESTS.collect():
        for sample in metric.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels.get("upstream") == "payment":
                total += sample.value if labels.get("outcome") in FAILED_OUTCOMES else 0
    return int(total)


@dataclass
class _Counted:
    started_at: float | None
    captured: int


class Watch:
    """The page's memory between looks: the last replicas, the timeline, and the checkout counts."""

    def __init__(
        self,
        source: Source,
        session: aiohttp.ClientSession,
        *,
        failures: Callable[[], int] = gateway_failures,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source, self.session, self.failures, self.clock = source, session, failures, clock
        self._lock = asyncio.Lock()
        self._snapshot: dict[str, Any] | None = None
        self._taken = 0.0
        self._previous: dict[str, Replica] | None = None
        self._answered: dict[str, Replica] = {}
        """Each replica's last look that read its metrics: a look that found it down or hung is no process, so what
        comes after the gap (a new process, an injection counter) is compared with what came before it."""
        self._new_processes: dict[str, int] = {}
        """New processes seen per replica, where the source counts no restarts (compose: never the engine's socket)."""
        self._counted: dict[str, _Counted] = {}
        self._captured = 0
        self._failures_at_start: int | None = None
        self._samples: deque[tuple[float, int, int]] = deque()
        self._seen_events: set[str] = set()
        self._noted: dict[tuple[str, str], float] = {}
        """Faults the page injected and put on the timeline itself, and when: their counter's rise in the next
        looks (one may already be under way) is not told twice."""
        self.timeline: deque[dict[str, Any]] = deque(maxlen=TIMELINE_LENGTH)

    async def snapshot(self) -> dict[str, Any]:
        async with self._lock:
            if self._snapshot is None or self.clock() - self._taken >= MIN_INTERVAL_SECONDS:
                listing = await self.source.listing()
                replicas = await asyncio.gather(*(observe(self.session, listed) for listed in listing.replicas))
                self._taken = self.clock()
                self._snapshot = self.record(listing, list(replicas), self._taken)
            return self._snapshot

    def note(self, replica: str, kind: str, detail: str = "") -> None:
        """Puts something that happened through the page (a fault it injected) on the timeline."""
        self._noted[(replica, detail)] = self.clock()
        self._event(self.clock(), replica, kind, detail, by="page")
        self._snapshot = None  # the next poll looks again, and shows it

    def record(self, listing: Listing, replicas: list[Replica], now: float) -> dict[str, Any]:
        """Takes in one look at the replicas: what changed goes on the timeline, the counters are summed."""
        self._cluster_events(listing.events, first=self._previous is None, now=now)
        if self._previous is not None:
            self._changes(self._previous, {replica.name: replica for replica in replicas}, now)
        self._previous = {replica.name: replica for replica in replicas}
        for replica in replicas:
            if replica.started_at is not None:
                self._answered[replica.name] = replica
            if replica.restarts is None and replica.name in self._new_processes:
                replica.restarts, replica.last_reason = self._new_processes[replica.name], SEEN_RESTART
        self._count(replicas, now)
        return {
            "target": self.source.target,
            "blind_spot": listing.blind_spot,
            "taken_at": now,
            "replicas": [asdict(replica) for replica in replicas],
            "database": database(replicas),
            "checkouts": self._checkouts(now),
            "timeline": sorted(self.timeline, key=lambda event: float(event["at"]))[-50:],
        }

    def _event(self, at: float, replica: str, kind: str, detail: str = "", by: str = "seen") -> None:
        self.timeline.append({"at": at, "replica": replica, "kind": kind, "detail": detail, "by": by})

    def _cluster_events(self, events: Iterable[ClusterEvent], *, first: bool, now: float) -> None:
        for event in events:
            if event.key in self._seen_events:
                continue
            self._seen_events.add(event.key)
            if not first or event.at >= now - CLUSTER_HISTORY_SECONDS:
                self._event(event.at, event.replica, event.kind, event.detail, by="kubernetes")

    def _changes(self, before: dict[str, Replica], after: dict[str, Replica], now: float) -> None:
        for name, replica in after.items():
            old = before.get(name)
            if old is None:
                self._event(now, name, "started", "a new replica")
                continue
            known = self._answered.get(name, old)
            new_process = None not in (known.started_at, replica.started_at) and known.started_at != replica.started_at
            if replica.restarts is not None and old.restarts is not None and replica.restarts > old.restarts:
                self._event(now, name, "restarted", replica.last_reason)
            elif replica.restarts is None and new_process:
                self._new_processes[name] = self._new_processes.get(name, 0) + 1
                self._event(now, name, "restarted", SEEN_RESTART)
            for fault, count in replica.injections.items():
                noted = now - self._noted.get((name, fault), -NOTED_SECONDS) < NOTED_SECONDS
                if count > (0 if new_process else known.injections.get(fault, 0)) and not noted:
                    self._event(now, name, "fault injected", fault)
            if old.live and replica.live is False:
                self._event(now, name, "liveness failing", replica.live_detail)
            if old.ready and replica.ready is False:
                self._event(now, name, "unready", replica.ready_detail or replica.state)
            elif old.ready is False and replica.ready:
                self._event(now, name, "ready again")
        for name in before.keys() - after.keys():
            self._event(now, name, "gone")

    def _count(self, replicas: list[Replica], now: float) -> None:
        for replica in replicas:
            if not replica.payments:
                continue
            last = self._counted.get(replica.name)
            reset = last is None or last.started_at != replica.started_at
            value = replica.payments.get("captured", 0)
            previous = 0 if reset or last is None else last.captured
            if last is not None:  # the first look only sets where counting starts
                self._captured += value - previous if value >= previous else value
            self._counted[replica.name] = _Counted(replica.started_at, value)
        failures = self.failures()
        if self._failures_at_start is None:
            self._failures_at_start = failures
        self._samples.append((now, self._captured, failures - self._failures_at_start))
        while self._samples and self._samples[0][0] < now - WINDOW_SECONDS:
            self._samples.popleft()

    def _checkouts(self, now: float) -> dict[str, Any]:
        samples = list(self._samples)
        series = [
            [round(t1 - now, 1), round((c1 - c0) / (t1 - t0), 2), round((f1 - f0) / (t1 - t0), 2)]
            for (t0, c0, f0), (t1, c1, f1) in itertools.pairwise(samples)
            if t1 > t0
        ]
        recent = [sample for sample in samples if sample[0] >= now - RATE_SECONDS]
        first, last = (recent[0], recent[-1]) if recent else ((now, 0, 0), (now, 0, 0))
        span = last[0] - first[0]
        return {
            "rate_per_second": round((last[1] - first[1]) / span, 2) if span > 0 else 0.0,
            "captured": samples[-1][1] - samples[0][1] if samples else 0,
            "failed": samples[-1][2] - samples[0][2] if samples else 0,
            "window_seconds": round(now - samples[0][0]) if samples else 0,
            "series": series,
        }


def database(replicas: list[Replica]) -> dict[str, str]:
    """PostgreSQL as the orchestrator lists it (its pod) or else as the services that use it find it."""
    own = [replica for replica in replicas if replica.service == "postgres"]
    users = [replica for replica in replicas if replica.service in DATABASE_SERVICES]
    complaints = [f"{r.name}: {r.ready_detail}" for r in users if "database" in r.ready_detail]
    if own and not all(replica.ready for replica in own):
        return {"state": "down", "detail": ", ".join(f"{r.name} {r.state or 'not ready'}" for r in own)}
    if complaints:
        return {"state": "down", "detail": "; ".join(complaints)}
    if own or any(replica.ready for replica in users):
        return {"state": "up", "detail": "answering the services"}
    return {"state": "unknown", "detail": "no service that uses it is ready"}
