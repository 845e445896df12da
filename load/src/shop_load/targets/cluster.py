"""The drill's target on a cluster (`ClusterTarget`): one payment pod for the chaos faults (sent through a
port-forward of the Kubernetes API: `shop_devtools.cluster.kube`, `shop_devtools.chaos`), the payment Deployment for a
rollout, the database pod for its faults (PostgreSQL crashed inside it through exec, or the pod deleted with its grace
period), followed through the Kubernetes API; the operator's credential from the `credentials` Secret the storefront's
pods read (`ClusterCredentials`).

Only what follows the injection is the fault's effect: the watcher is armed then (`PodWatcher.arm`), and a chaos fault
goes to a pod Ready at that moment.
"""

import asyncio
import contextlib
import queue
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from shop_devtools.chaos import Chaos, ChaosRefused
from shop_devtools.cluster.runner import ClusterError
from shop_load.core import ops
from shop_load.core.drill_args import CHAOS_FAULTS, DATABASE_FAULTS, DrillError
from shop_load.core.records import Mark, ReplicaSetSample
from shop_load.targets.target import Clock, Target
from shop_load.targets.watcher import PodWatcher

if TYPE_CHECKING:
    from shop_devtools.cluster.kube import Cluster

STOREFRONT_SELECTOR = "app.kubernetes.io/name=storefront"
READY_WAIT_SECONDS = 30  # how long a chaos fault waits for a Ready payment pod when none is at the injection


@dataclass(frozen=True)
class ClusterCredentials:
    """The operator's credential as the storefront's pods (`selector`) get it: from the `credentials` Secret."""

    cluster: "Cluster"
    selector: str = STOREFRONT_SELECTOR

    def operator(self) -> ops.Operator | None:
        value = self.cluster.operator_credential(self.selector)
        return ops.Operator(value, self.place()) if value else None

    def place(self) -> str:
        return f"the credentials Secret of namespace {self.cluster.namespace} (the pods {self.selector} read)"


class ClusterTarget(Target):
    """One payment pod for the chaos faults; the payment Deployment for a rollout; the database pod for its faults."""

    def __init__(
        self,
        cluster: "Cluster",
        pod: Mapping[str, Any],
        token: str,
        clock: Clock,
        fault: str = "leak",
        *,
        deployment: str = "payment",
        database: Mapping[str, Any] | None = None,
        database_selector: str | None = None,
        storefront_selector: str = STOREFRONT_SELECTOR,
    ) -> None:
        """`database` (the pod the database faults act on, found by `database_selector`) is watched too, by that
        selector: the pod the StatefulSet starts in its place has the same name but not all the same labels."""
        self.mode, self.cluster, self.clock, self.fault = "kubernetes", cluster, clock, fault
        self.credentials = ClusterCredentials(cluster, storefront_selector)
        self.port, self.token = cluster.http_port(pod), token
        self._aim(str(pod["metadata"]["name"]))
        self.deployment, self.rolled_from = deployment, set[str]()
        self.database_pod, self.database = database, str(database["metadata"]["name"]) if database else None
        if fault == "rollout":
            self.name = f"deployment/{deployment}"
        elif fault in DATABASE_FAULTS:
            self.name = self.database
        self.notes = []
        self.watcher = PodWatcher(not_before=datetime.now(UTC) - timedelta(seconds=2), container=cluster.container)
        self.events: queue.Queue[tuple[float, str, str, Mapping[str, Any]]] = queue.Queue()
        self.stop_event = threading.Event()
        self.injected, self.pod_marks = list[Mark](), list[Mark]()
        self.threads = cluster.watch(self._sink, self.stop_event, also=database_selector if database else None)

    def _aim(self, pod: str) -> None:
        """The chaos faults go to `pod`, through a port-forward to its own port."""
        self.pod = self.name = pod
        self.chaos = Chaos(self.cluster.transport(pod, self.port), self.token, f"pod {pod}")

    def _sink(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        self.events.put((self.clock(), kind, event_type, obj))

    def drain(self) -> None:
        while not self.events.empty():  # the one reader: what it saw there is still there
            self.pod_marks += self.watcher.apply(*self.events.get_nowait())

    async def inject(self, client: httpx.AsyncClient, fault: str, body: Mapping[str, Any] | None) -> None:
        self.drain()
        if fault in CHAOS_FAULTS:
            await self._ready_pod()
        self.watcher.arm()
        t = self.clock()
        if fault == "rollout":
            self.rolled_from = self.watcher.active_replicasets() or await asyncio.to_thread(self.cluster.replicasets)
            await asyncio.to_thread(self.cluster.rollout_restart, self.deployment)
            detail = f"kubectl rollout restart deployment/{self.deployment}"
        else:
            detail = await self._database(fault) if fault in DATABASE_FAULTS else await self.chaos.inject(fault, body)
        self.injected.append(Mark(t, "injected", self.name, detail))

    async def _ready_pod(self) -> None:
        """A chaos fault goes to a Ready pod: the chosen one when it still is, else (it went unready since it was
        chosen, a flap in the warm-up) another Ready one, waited for at most `READY_WAIT_SECONDS`; the notes say so."""
        chosen = self.pod
        if chosen not in self.watcher.pods or self.watcher.pods[chosen].ready:
            return
        for waited in range(READY_WAIT_SECONDS + 1):  # a check each second
            self.drain()
            ready = sorted(name for name, pod in self.watcher.pods.items() if pod.ready)
            if ready or waited == READY_WAIT_SECONDS:
                break
            await asyncio.sleep(1)
        if ready:
            self._aim(chosen if chosen in ready else ready[0])
        went = f"pod {self.pod}" if ready else "it all the same: no payment pod was Ready"
        self.notes.append(f"pod {chosen} was not Ready at the injection; the fault went, after {waited} s, to {went}")

    async def _database(self, fault: str) -> str:
        """Crashes PostgreSQL in its pod, or deletes the pod with its grace period; what was done, for the mark."""
        pod = self.database_pod
        assert pod is not None
        try:
            if fault == "database":
                command = await asyncio.to_thread(self.cluster.crash_postgres, pod)
                return f"{command} in container postgres, through exec: the kubelet restarts the container"
            await asyncio.to_thread(self.cluster.delete_pod, pod["metadata"]["name"])
        except ClusterError as exc:
            raise DrillError(str(exc)) from None
        return "pod deleted with its grace period; the StatefulSet starts it again once it is gone"

    def marks(self) -> list[Mark]:
        self.drain()
        return self.injected + self.pod_marks

    def recovered(self) -> bool:
        self.drain()
        if self.fault == "rollout":
            done = bool(self.rolled_from) and self.watcher.rolled_out(self.rolled_from)
            if done and not any(mark.kind == "ready_again" for mark in self.injected):
                detail = "rollout complete: every replica new and Ready"
                self.injected.append(Mark(self.clock(), "ready_again", self.name, detail))
            return done
        if self.database is not None:
            return self.watcher.came_back(self.database) and self.watcher.replicas_ready()
        return self.watcher.recovered(self.pod)

    def restarts(self) -> int | None:
        return self.watcher.restarts

    def replicasets(self) -> list[ReplicaSetSample]:
        return list(self.watcher.samples)

    def autoscaler(self) -> dict[str, Any] | None:
        try:
            found = self.cluster.autoscaler()
        except Exception:  # the API's own errors: the report goes on without the HPA's line
            return None
        return asdict(found) if found is not None else None

    def status(self) -> str:
        self.drain()
        sets = ", ".join(f"{rs.name} {rs.ready}/{rs.desired}" for rs in self.watcher.replicasets.values() if rs.desired)
        if self.fault == "rollout":
            return f"rs {sets}"
        name = self.database or self.pod
        if (pod := self.watcher.pods.get(name)) is None:
            return f"pod {name}: ?"
        return f"pod {name}: {'Ready' if pod.ready else 'NOT READY'}, restarts {pod.restarts} | rs {sets}"

    async def finish(self, client: httpx.AsyncClient, *, wait: bool = True) -> None:
        self.drain()
        if self.fault not in CHAOS_FAULTS:
            return  # a rollout or a killed database pod leaves nothing to clear
        # no restart and not deleted: the fault is still in the pod, take it out
        if (pod := self.watcher.pods.get(self.pod)) is not None and pod.restarts == 0 and not pod.deleted:
            sent = self.clock()
            with contextlib.suppress(ChaosRefused):
                await self.chaos.clear()
                self.injected.append(Mark(sent, "fault_cleared", self.pod, "DELETE /chaos (no restart seen)"))
            self.notes.append(f"pod {self.pod} did not restart within the fault phase; the drill cleared its fault.")

    def stop(self) -> None:
        self.stop_event.set()
