"""The drill without a cluster (`make run`): the fault goes to the local payment process, whose probes are polled.

Under `make run` its launcher plays the kubelet (`shop_devtools.kubelet`): a replica failing liveness is stopped
and started again, one failing readiness is routed around. A payment process not started by `make run` has no
orchestrator: the drill shows the detection, what the customers saw meanwhile, and then clears the fault itself
(`DELETE /chaos`) so the local shop is healthy again.
"""

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from shop_devtools.chaos import Chaos, ChaosRefused, over_http
from shop_load.core.records import Mark

PROBE_INTERVAL_SECONDS = 0.25
PROBE_TIMEOUT_SECONDS = 1.0

LAUNCHER_RESTARTS_NOTE = (
    "Locally make run's launcher stands in for the kubelet and the ReplicaSet, from the manifests: it probes each "
    "replica's liveness and readiness as the pod spec says, stops one failing liveness and starts a dead or stopped "
    "one again after a back-off (1 s, doubling), and on SIGUSR1 replaces the replicas one at a time (a rollout). "
    "An unready replica answers with Connection: close and storefront's balancing leaves it out meanwhile; the "
    "other replicas take the checkouts."
)
NO_ORCHESTRATOR_NOTE = (
    "No orchestrator here: nothing restarts a sick local payment process or takes it out of traffic (make run "
    "starts a dead one again, not a sick one). The drill saw "
    "the fault through /healthz and /ready (the times above); at the end it cleared the fault itself with "
    "DELETE /chaos (a hang ends by itself). On Kubernetes, readiness would remove the pod from the Service and "
    "liveness would restart its container."
)


def _describe(status: int | None, detail: str) -> str:
    return f"answered {status}" + (f" ({detail})" if detail else "") if status is not None else f"no answer: {detail}"


@dataclass
class ProbeTracker:
    """Probe answers of one process after the injection → marks. Pure."""

    ready: bool = True
    liveness_failed: bool = False
    gone: bool = False
    unready_seen: bool = False

    def observe(
        self, t: float, healthz: int | None, ready: int | None, healthz_detail: str = "", ready_detail: str = ""
    ) -> list[Mark]:
        marks: list[Mark] = []
        refused = "refused" in (healthz_detail + ready_detail).lower()
        if healthz is None and ready is None and refused and not self.gone:
            self.gone = True
            marks.append(Mark(t, "process_gone", None, "connection refused: the process is not running"))
        if healthz != 200 and not self.liveness_failed:
            self.liveness_failed = True
            marks.append(Mark(t, "liveness_failed", None, "GET /healthz " + _describe(healthz, healthz_detail)))
        if ready != 200 and self.ready:
            self.ready, self.unready_seen = False, True
            marks.append(Mark(t, "unready", None, "GET /ready " + _describe(ready, ready_detail)))
        elif ready == 200 and not self.ready:
            self.ready = True
            marks.append(Mark(t, "ready_again", None, "GET /ready answered 200"))
        if healthz == 200:
            self.liveness_failed = False  # a later failure (another episode) is a mark again
        return marks


async def probe(client: httpx.AsyncClient, url: str) -> tuple[int | None, str]:
    try:
        response = await client.get(url, timeout=PROBE_TIMEOUT_SECONDS)
    except httpx.TimeoutException:
        return None, "timed out"
    except httpx.HTTPError as exc:
        return None, "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
    reason = ""
    if response.status_code != 200:
        try:
            body = response.json()
            reason = str(body.get("reason") or body.get("detail") or "") if isinstance(body, dict) else ""
        except ValueError:
            reason = ""
    return response.status_code, reason[:120]


@dataclass
class LocalPayment:
    url: str
    token: str
    clock: Callable[[], float]
    name: str | None = None
    """The replica's name on the timeline (`payment-2`), when make run runs several."""
    pid: int | None = None
    """Its process when the drill began, as make run's run.json listed it (None: not started by make run)."""
    marks: list[Mark] = field(default_factory=list)
    tracker: ProbeTracker = field(default_factory=ProbeTracker)
    ready_event: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while the last poll found the process ready."""

    def chaos(self, client: httpx.AsyncClient) -> Chaos:
        return Chaos(over_http(client, self.url), self.token, self.url)

    async def check(self, client: httpx.AsyncClient) -> None:
        """Fails early, with what to do (`ChaosRefused`), when the payment process or its chaos endpoint is not
        usable."""
        await self.chaos(client).status()

    async def inject(self, client: httpx.AsyncClient, fault: str, body: Mapping[str, Any] | None) -> str:
        t = self.clock()
        self.tracker.unready_seen = False  # a blip under load before the fault is not its episode
        detail = await self.chaos(client).inject(fault, body)
        self.marks.append(Mark(t, "injected", self.name, detail))
        return detail

    async def clear(self, client: httpx.AsyncClient) -> bool:
        """`DELETE /chaos`, marked when it was sent (as `inject` is): a /ready poll that answers 200 because of it is
        served after the process applied it, so "Ready again" never comes before "fault cleared" on the timeline."""
        t = self.clock()
        try:
            await self.chaos(client).clear()
        except ChaosRefused:
            return False
        self.marks.append(Mark(t, "fault_cleared", self.name, "DELETE /chaos"))
        return True

    async def watch(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            (healthz, h_detail), (ready, r_detail) = await asyncio.gather(
                probe(client, self.url + "/healthz"), probe(client, self.url + "/ready")
            )
            seen = self.tracker.observe(self.clock(), healthz, ready, h_detail, r_detail)
            self.marks += [replace(mark, pod=self.name) for mark in seen]
            if self.tracker.ready:
                self.ready_event.set()
            else:
                self.ready_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROBE_INTERVAL_SECONDS)

    def recovered(self) -> bool:
        return self.tracker.unready_seen and self.tracker.ready
