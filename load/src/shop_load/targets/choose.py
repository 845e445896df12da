"""Where the drill's fault goes and how its effects are seen: make run's local payment replicas (`LocalTarget`),
and the choice between them, a cluster (`shop_load.targets.cluster`) and the shop in containers
(`shop_load.targets.containers`) from the command line; and where the
operator's credential of the target's shop is (`find_operator`).
"""

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shop_devtools.cluster import ClusterError
from shop_devtools.runconfig import credentials_file, default_data_dir
from shop_devtools.runstate import Process, RunState
from shop_devtools.topology import BY_NAME
from shop_devtools.workspace import WorkspaceError
from shop_load.core import ops
from shop_load.core.drill_args import CHAOS_FAULTS, DATABASE_FAULTS, LAUNCHER_FAULTS, DrillConfig, DrillError
from shop_load.core.records import Mark
from shop_load.targets.cluster import ClusterCredentials, ClusterTarget
from shop_load.targets.container_shop import ContainerShop, shop_dir
from shop_load.targets.containers import ContainerTarget
from shop_load.targets.local import LAUNCHER_RESTARTS_NOTE, NO_ORCHESTRATOR_NOTE, PROBE_INTERVAL_SECONDS, LocalPayment
from shop_load.targets.target import Clock, CredentialKeeper, Target

RECOVERY_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class LocalCredentials:
    """make run's `<data dir>/credentials.env`, which `make compose-up` keeps for compose too (`.data/`)."""

    data_dir: Path | None

    def operator(self) -> ops.Operator | None:
        return ops.from_file(credentials_file(self.data_dir)) if self.data_dir else None

    def place(self) -> str:
        return str(credentials_file(self.data_dir)) if self.data_dir else "no data directory"


class LocalTarget(Target):
    """make run's payment replicas (every one make run lists, else the one at --payment-url): the chaos faults go
    to the first, a rollout to the launcher (`SIGUSR1`), which restarts each replica in turn."""

    def __init__(
        self,
        replicas: Sequence[LocalPayment],
        fault: str,
        launcher_pid: int | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.mode, self.replicas, self.fault, self.launcher_pid = "local", list(replicas), fault, launcher_pid
        self.data_dir = data_dir
        """make run's data directory, whose run.json says which process serves each replica now."""
        self.credentials = LocalCredentials(data_dir)
        self.payment = self.replicas[0]
        self.name = self.payment.name
        self.notes = [LAUNCHER_RESTARTS_NOTE if launcher_pid is not None else NO_ORCHESTRATOR_NOTE]
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, client: httpx.AsyncClient) -> None:
        self.tasks = [asyncio.create_task(replica.watch(client, self.stop_event)) for replica in self.replicas]
        self.tasks.append(asyncio.create_task(self._follow_restarts()))

    async def _follow_restarts(self) -> None:
        """Reads run.json 4 times a second until the drill ends, so a restart is marked when it happens, even after
        the fault phase (a liveness restart in the last seconds), never when the report is written."""
        while not self.stop_event.is_set():
            self.restarts()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), PROBE_INTERVAL_SECONDS)

    async def inject(self, client: httpx.AsyncClient, fault: str, body: Mapping[str, Any] | None) -> None:
        if fault != "rollout":
            await self.payment.inject(client, fault, body)
            return
        assert self.launcher_pid is not None  # choose_target refuses a rollout without make run's launcher
        t = self.payment.clock()
        os.kill(self.launcher_pid, signal.SIGUSR1)
        names = ", ".join(replica.name or "payment" for replica in self.replicas)
        detail = f"SIGUSR1 to make run (pid {self.launcher_pid}): rollout restart of {names}, one at a time"
        self.payment.marks.append(Mark(t, "injected", None, detail))

    def marks(self) -> list[Mark]:
        return sorted((mark for replica in self.replicas for mark in replica.marks), key=lambda mark: mark.t)

    def recovered(self) -> bool:
        # Over once make run's launcher started the faulty replica again and it is ready (a liveness restart after a
        # leak or hang, a dead process after a crash), a rollout once every replica was (a replica merely seen unready
        # under load, before the fault or its turn, is not replaced). Without the launcher a hang ends by itself.
        if self.restarts() == (len(self.replicas) if self.fault == "rollout" else 1):
            return True
        return self.fault == "hang" and self.payment.recovered()

    def _replaced(self) -> list[tuple[LocalPayment, Process]] | None:
        """The replicas make run started again since the drill began, each with its process now, as run.json names
        them (None: no run.json)."""
        state = RunState.read(self.data_dir) if self.data_dir else None
        if state is None:
            return None
        now = {process.url: process for process in state.replicas("payment")}
        return [(r, now[r.url]) for r in self.replicas if r.url in now and r.pid not in {None, now[r.url].pid}]

    def restarts(self) -> int | None:
        """Replicas started again (and ready) since the drill began. make run's run.json names each one's process,
        so a replaced process counts however briefly its port was closed (and is marked restarted when first seen
        replaced: `_follow_restarts` asks 4 times a second); without it, the replicas the probes saw gone and back."""
        replaced = self._replaced()
        if replaced is None or any(replica.pid is None for replica in self.replicas):
            return sum(replica.tracker.gone and replica.tracker.ready for replica in self.replicas)
        for replica, process in replaced:
            if not any(mark.kind == "restarted" for mark in replica.marks):
                why = f"make run started {process.name} again: {process.last_reason}"  # seen within a poll
                replica.marks.append(Mark(replica.clock(), "restarted", replica.name, why))
        return sum(replica.tracker.ready for replica, _ in replaced)

    def status(self) -> str:
        return " | ".join(f"{replica.name or 'payment'}: {_process_state(replica)}" for replica in self.replicas)

    async def finish(self, client: httpx.AsyncClient, *, wait: bool = True) -> None:
        """Clears the fault so the local shop recovers (a hang ends by itself, a crashed, rolled or unhealthy replica
        comes back through the launcher), waits until every replica is ready again and notes make run's restarts."""
        if self.launcher_pid is None and self.payment.tracker.gone:
            self.notes.append(
                "The payment process is gone: make run starts a dead service again after a back-off (see its output)."
            )
            return
        cleared = self.fault != "leak" or self.recovered() or await self.payment.clear(client)
        if not cleared and self.launcher_pid is None:
            self.notes.append("DELETE /chaos failed: the payment process may still carry the fault.")
            return
        if wait:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECOVERY_WAIT_SECONDS):
                    for replica in self.replicas:
                        await replica.ready_event.wait()
                    # A restart slowed by the sale can outlast the fault phase: its report waits for every replacement
                    # (polled: run.json, written by another process, says when a replica was replaced).
                    replacing = self.fault in LAUNCHER_FAULTS or self.payment.tracker.gone  # a liveness restart too
                    while replacing and not self.recovered():  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
        for _, process in self._replaced() or []:
            self.notes.append(f"make run started {process.name} again: {process.last_reason}.")

    def stop(self) -> None:
        self.stop_event.set()

    async def stopped(self) -> None:
        self.stop()
        await asyncio.gather(*self.tasks)


def _process_state(replica: LocalPayment) -> str:
    tracker = replica.tracker
    if not tracker.ready and tracker.gone:
        return "process gone"
    return ("ready" if tracker.ready else "UNREADY") + (", liveness FAILING" if tracker.liveness_failed else "")


def data_dir(options: DrillConfig) -> Path:
    """make run's data directory: --data-dir, else $SHOP_DATA_DIR, else `.data` in the checkout."""
    if options.data_dir:
        return options.data_dir
    try:
        return default_data_dir(os.environ)
    except WorkspaceError as exc:
        raise DrillError(f"{exc}; or name make run's data directory with --data-dir") from None


def local_replicas(options: DrillConfig, clock: Clock) -> tuple[list[LocalPayment], int | None]:
    """The payment replicas to follow and make run's launcher pid, from its run.json (unless --payment-url)."""
    state = RunState.read(data_dir(options))
    replicas = state.replicas("payment") if state else []
    if options.payment_url or not replicas:
        url = (options.payment_url or f"http://localhost:{BY_NAME['payment'].port}").rstrip("/")
        return [LocalPayment(url, options.chaos_token or "", clock)], state.launcher_pid if state else None
    assert state is not None
    named = len(replicas) > 1
    token = options.chaos_token or ""
    payments = [LocalPayment(r.url, token, clock, r.name if named else None, r.pid) for r in replicas]
    return payments, state.launcher_pid


def choose_target(options: DrillConfig, clock: Clock) -> Target:
    if options.containers and options.fault != "database-pod":  # a pod's fault: refused below
        folder = shop_dir(options.data_dir)
        return ContainerTarget(ContainerShop.load(folder), options.fault, clock, LocalCredentials(folder))
    if not options.local and not options.containers:
        from shop_devtools.cluster import kube

        api = kube.connect(options.context)
        cluster = kube.Cluster(api, options.namespace, options.selector, options.container) if api is not None else None
        if cluster is not None and (options.kubernetes or cluster.reachable()):
            try:
                pod = cluster.pick_ready_pod()
                token = options.chaos_token or cluster.chaos_token(pod)
                databases = cluster.pods(options.database_selector) if options.fault in DATABASE_FAULTS else []
            except ClusterError as exc:  # the API's own errors too (`kube.Cluster` turns them into one)
                raise DrillError(str(exc)) from None
            if not token and options.fault in CHAOS_FAULTS:
                raise DrillError("no chaos token: set CHAOS_TOKEN (the pod's CHAOS_TOKEN variable has none either)")
            if options.fault in DATABASE_FAULTS and not databases:
                raise DrillError(f"--fault {options.fault}: no pod matches {options.database_selector}")
            database = databases[0] if databases else None
            return ClusterTarget(
                cluster,
                pod,
                token or "",
                clock,
                options.fault,
                deployment=options.deployment,
                database=database,
                database_selector=options.database_selector,
                storefront_selector=options.storefront_selector,
            )
        if options.kubernetes:
            raise DrillError("--kubernetes: no reachable cluster with payment pods (check KUBECONFIG and --namespace)")
    if options.fault in DATABASE_FAULTS:
        raise DrillError(
            f"--fault {options.fault} needs a cluster (make kind-up): make run's embedded PostgreSQL has no "
            "orchestrator to start it again, containers have no pod; --containers kills the database's server with "
            "--fault database (make e2e-containers)"
        )
    replicas, launcher = local_replicas(options, clock)
    if options.fault == "rollout" and launcher is None:
        raise DrillError(
            f"--fault rollout needs make run's launcher: no run.json of a running shop in {data_dir(options)}"
        )
    if not options.chaos_token and options.fault in CHAOS_FAULTS:
        raise DrillError("no chaos token: start the shop with CHAOS_ENABLED=true CHAOS_TOKEN=... and pass the same")
    return LocalTarget(replicas, options.fault, launcher, data_dir(options))


def find_operator(options: DrillConfig, target: Target | None) -> ops.Operator:
    """The operator's credential for `/ops/`: given (`OPERATOR_CREDENTIAL`, `--credentials`), else the target's
    own (`target`; for `--check`, which has none, the cluster's when one is reachable, else make run's file)."""
    try:
        if found := ops.explicit(os.environ, options.credentials):
            return found
        keeper = target.credentials if target is not None else _credential_keeper(options)
        if found := keeper.operator():
            return found
    except (ops.CredentialMissing, ClusterError) as exc:
        raise DrillError(str(exc)) from None
    raise DrillError(
        f"no operator credential for the storefront's /ops/ in {keeper.place()}: set OPERATOR_CREDENTIAL or name "
        "its file with --credentials (make run and make compose-up keep it in .data/credentials.env, a cluster in "
        "its credentials Secret)"
    )


def _credential_keeper(options: DrillConfig) -> CredentialKeeper:
    """For `--check`, which has no target: the cluster's Secret when a cluster with payment pods is reachable
    (unless --local or --containers), as `choose_target` decides, else make run's file (or the containers')."""
    if not options.local and not options.containers:
        from shop_devtools.cluster import kube

        api = kube.connect(options.context)
        if api is not None:
            cluster = kube.Cluster(api, options.namespace, options.selector, options.container, options.context)
            if options.kubernetes or cluster.reachable():
                return ClusterCredentials(cluster, options.storefront_selector)
    return LocalCredentials(shop_dir(options.data_dir) if options.containers else data_dir(options))
