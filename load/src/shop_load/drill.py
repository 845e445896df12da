"""`make drill` / `shop-drill`: the article's crash, played during a sale against the running shop and measured.

The sale's load runs throughout: the drill's own paced customers check out through the storefront (`--rate`, 50
checkouts/s by default, each with its own Idempotency-Key, retried with it until answered) and wrk browses the
catalog beside them (`--browse-rate`, 300 GETs/s; `shop_load.browsing`), counted second by second from the
storefront's own /metrics. After a warm-up one payment pod (or, with no cluster, the local payment process) gets a
fault: a memory leak by default, a hung event loop or a crash on request. With a cluster the drill follows the
payment pods, their Events and ReplicaSets through the Kubernetes API (unready, liveness failure or OOMKilled,
restart, Ready again) and ends the fault phase once the pod is back and every replica is Ready; without one it
polls the process's /healthz and /ready, says plainly that nothing will restart it, and clears the fault itself at
the end. After a cool-down it checks the invariants against the shop's API, prints a summary (the load it ran
first) and writes `drill-<profile>.json`, `drill-<profile>.png` (load and fault on one time axis) and the ledger
the invariants were checked from (`drill-<profile>.ledger.json`, for `--check`) into the output folder.

Exit status: 0 when every invariant holds, 1 when one fails (named in the output), 2 when the drill could not run.
"""

import abc
import argparse
import asyncio
import contextlib
import json
import math
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import httpx

from shop_devtools.cluster import LIVENESS_LEAK_MIB_PER_SECOND, OOM_LEAK_MIB_PER_SECOND
from shop_devtools.runstate import RunState
from shop_devtools.workspace import WorkspaceError, repository_root
from shop_load import browsing, invariants, plot, stock, wrk
from shop_load.browsing import Browsing, ServerCounter
from shop_load.customers import Shoppers, ShopUnavailable, watch_lag
from shop_load.local import LAUNCHER_RESTARTS_NOTE, NO_ORCHESTRATOR_NOTE, ChaosRefused, LocalPayment
from shop_load.report import (
    InvariantResult,
    Mark,
    ReplicaSetSample,
    build_report,
    compare,
    counts_between,
    summary,
    table,
)
from shop_load.watcher import PodWatcher

if TYPE_CHECKING:
    from shop_load.kube import Cluster

Clock = Callable[[], float]

DEFAULTS = {"local": {"duration": 30.0}, "kubernetes": {"duration": 180.0}}
CHAOS_FAULTS = ("leak", "hang", "crash")
"""Faults sent to one payment replica's chaos endpoint; the others act on the whole Deployment or the database."""
FAULTS = (*CHAOS_FAULTS, "rollout", "database")
LAUNCHER_FAULTS = frozenset({"crash", "rollout"})
"""Locally, make run's launcher does what the ReplicaSet would: starts the process again."""
SALE_CHECKOUTS_PER_SECOND = 50.0
LOCAL_LEAK_MB_PER_SECOND = 10.0
"""Locally there is no memory limit, only the budget: a faster leak keeps the drill short."""
SALE_BROWSES_PER_SECOND = 300.0
MAX_IN_FLIGHT = 256
RECENT_SECONDS = 5.0
CONNECTIONS_PER_CLIENT = 16
"""The checkouts share several httpx clients of this many connections: one pool of hundreds costs a core."""
"""The progress line's rates are over the last few seconds."""
RECOVERY_WAIT_SECONDS = 30.0
EXIT_OK, EXIT_INVARIANT, EXIT_CANNOT_RUN = 0, 1, 2


class DrillError(Exception):
    """The drill cannot run; the message says why and what to do."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="shop-drill",
        description="The crash drill: customers pay while one payment pod (or the local process) fails.",
    )
    parser.add_argument("--url", help="the storefront (default: $SHOP_URL or http://localhost:8080)")
    parser.add_argument(
        "--rate",
        type=float,
        default=SALE_CHECKOUTS_PER_SECOND,
        help=f"checkouts started per second (default {SALE_CHECKOUTS_PER_SECOND:g}, a sale)",
    )
    parser.add_argument(
        "--browse-rate",
        type=float,
        default=SALE_BROWSES_PER_SECOND,
        help=f"catalog GETs per second beside the checkouts, sent by wrk (default {SALE_BROWSES_PER_SECOND:g}; "
        "0: none, and no wrk needed)",
    )
    parser.add_argument(
        "--browse-connections", type=int, help="wrk's kept-alive connections (default: half the browse rate)"
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=MAX_IN_FLIGHT,
        help=f"checkouts in flight at most; a tick that finds them all busy starts none and is reported "
        f"(default {MAX_IN_FLIGHT})",
    )
    parser.add_argument("--customers", type=int, default=8, help="customers registered beforehand (default 8)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of traffic before the fault")
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds the fault phase may last: with a cluster it ends earlier once the pod is Ready again "
        "(default 180); locally the fault is cleared after it (default 30)",
    )
    parser.add_argument("--cooldown", type=float, default=10.0, help="seconds of traffic after recovery")
    parser.add_argument(
        "--fault",
        choices=FAULTS,
        default="leak",
        help="leak, hang or crash: one payment replica, through its chaos endpoint; rollout: every payment replica "
        "replaced one at a time (kubectl rollout restart; locally make run's launcher); database: the PostgreSQL "
        "pod killed (cluster only)",
    )
    parser.add_argument(
        "--leak-mb-per-second",
        type=float,
        help=f"default: {LIVENESS_LEAK_MIB_PER_SECOND:g} with a cluster (liveness restarts the pod before its memory "
        f"limit; {OOM_LEAK_MIB_PER_SECOND:g} ends as OOMKilled instead), {LOCAL_LEAK_MB_PER_SECOND:g} locally",
    )
    parser.add_argument(
        "--leak-max-mb", type=int, help="cap of the leak (default: none with a cluster, 1024 MB locally)"
    )
    parser.add_argument("--hang-seconds", type=float, help="how long a hang lasts (default: the fault phase)")
    parser.add_argument("--profile", choices=("resilient", "fragile"), default=os.environ.get("PROFILE", "resilient"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("DRILL_OUT") or "drill-out"))
    parser.add_argument("--chaos-token", default=os.environ.get("CHAOS_TOKEN"), help="default: $CHAOS_TOKEN")
    parser.add_argument("--retry-for", type=float, default=15.0, help="seconds a customer retries one checkout")
    parser.add_argument("--request-timeout", type=float, default=10.0)
    parser.add_argument("--declined-share", type=float, default=0.1, help="share of checkouts with a declined card")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds the checks wait for in-flight payments")
    parser.add_argument(
        "--reservation-ttl",
        type=float,
        default=float(os.environ.get("CATALOG_RESERVATION_TTL_SECONDS", 300)),
        help="catalog's reservation TTL: held stock older than this must have been returned",
    )
    parser.add_argument(
        "--restock",
        default="auto",
        help="before the drill, raise every product's stock to at least this through catalog's database, so the "
        "sale does not sell out; auto (default): only when the stock on hand would not last the planned sale, and "
        "without a cluster or --catalog-database-url only; 0: never",
    )
    parser.add_argument(
        "--catalog-database-url",
        help="catalog's database for --restock (default without a cluster: make run's, on $SHOP_PG_PORT or 5433)",
    )
    parser.add_argument("--no-check", action="store_true", help="skip the invariants (they can run later: --check)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--kubernetes", action="store_true", help="use the cluster (default: when one is reachable)")
    mode.add_argument("--local", action="store_true", help="use the local payment process even if a cluster is there")
    parser.add_argument(
        "--payment-url",
        help="the local payment process (default: every replica make run lists in its run.json, else "
        "http://localhost:8083)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="make run's data directory, where its run.json is (default: $SHOP_DATA_DIR or .data)",
    )
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--namespace", default="shop")
    parser.add_argument("--selector", default="app.kubernetes.io/name=payment")
    parser.add_argument(
        "--storefront-selector",
        default="app.kubernetes.io/name=storefront",
        help="the storefront pods whose /metrics count the browses",
    )
    parser.add_argument("--container", help="the payment container's name (default: the pod's first)")
    parser.add_argument("--deployment", default="payment", help="the Deployment the rollout fault restarts")
    parser.add_argument(
        "--database-selector", default="app.kubernetes.io/name=postgres", help="the pod the database fault kills"
    )
    parser.add_argument("--compare", nargs="+", type=Path, metavar="REPORT", help="print reports side by side")
    parser.add_argument("--check", type=Path, metavar="LEDGER", help="check the invariants of a finished drill")
    return parser.parse_args(argv)


@dataclass
class Progress:
    """One status line, rewritten in place on a terminal; a line every few seconds otherwise."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    phase: str = "starting"
    probe: str = ""
    browses: ServerCounter | None = None
    _last_plain: float = 0.0

    def show(self, t: float, shoppers: Shoppers) -> None:
        records, checkouts = shoppers.records, shoppers.checkouts
        failed = sum(not r.ok for r in records)
        final = sum(c.outcome in {"captured", "declined", "out_of_stock"} for c in checkouts)
        gave_up = sum(c.outcome == "failed" for c in checkouts)
        recent = sum(c.t >= t - RECENT_SECONDS for c in checkouts[-int(RECENT_SECONDS * shoppers.rate * 2 + 10) :])
        line = (
            f"[{t:6.1f} s] {self.phase:<10} checkouts {len(checkouts):>5} ({recent / RECENT_SECONDS:4.0f}/s)"
            f" answered {final:>5} gave up {gave_up:>3} in flight {shoppers.in_flight:>3}"
            f" | requests failed {failed:>4}" + self._browses(t) + (f" | {self.probe}" if self.probe else "")
        )
        if self.stream.isatty():
            self.stream.write("\r\033[K" + line[:200])
            self.stream.flush()
        elif time.monotonic() - self._last_plain >= 5:
            self._last_plain = time.monotonic()
            print(line, file=self.stream, flush=True)

    def _browses(self, t: float) -> str:
        if self.browses is None or not self.browses.samples:
            return ""
        counted = counts_between(self.browses.samples, t - RECENT_SECONDS - 1, t)
        if not counted:
            return ""
        shown = min(t, self.browses.samples[-1].t) - max(t - RECENT_SECONDS - 1, self.browses.samples[0].t)
        return f" | browses {sum(counted.values()) / max(shown, 1e-9):4.0f}/s"

    def done(self) -> None:
        if self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()


class Target(abc.ABC):
    """Where the fault goes and how its effects are seen: the local process, or one pod of the cluster."""

    mode: str
    name: str | None = None
    notes: list[str]

    @abc.abstractmethod
    async def inject(self, client: httpx.AsyncClient, fault: str, body: Mapping[str, Any] | None) -> None:
        """Sends the fault and records the injection mark."""

    @abc.abstractmethod
    def marks(self) -> list[Mark]:
        """Everything seen so far."""

    @abc.abstractmethod
    def recovered(self) -> bool:
        """Whether the fault phase can end before its duration."""

    @abc.abstractmethod
    def restarts(self) -> int | None:
        """Container restarts seen (None: unknown)."""

    @abc.abstractmethod
    async def finish(self, client: httpx.AsyncClient, *, wait: bool = True) -> None:
        """After the fault phase: leaves nothing broken behind (and waits for the target to be back)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stops following the target."""

    def replicasets(self) -> list[ReplicaSetSample]:
        return []

    def autoscaler(self) -> dict[str, Any] | None:
        """payment's HorizontalPodAutoscaler as the drill ends (None: there is none)."""
        return None

    def status(self) -> str:
        return ""


class LocalTarget(Target):
    """make run's payment replicas (every one make run lists, else the one at --payment-url): the chaos faults go
    to the first, a rollout to the launcher (`SIGUSR1`), which restarts each replica in turn."""

    def __init__(self, replicas: Sequence[LocalPayment], fault: str, launcher_pid: int | None = None) -> None:
        self.mode, self.replicas, self.fault, self.launcher_pid = "local", list(replicas), fault, launcher_pid
        self.payment = self.replicas[0]
        self.name = self.payment.name
        self.notes = [NO_ORCHESTRATOR_NOTE if fault in {"leak", "hang"} else LAUNCHER_RESTARTS_NOTE]
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, client: httpx.AsyncClient) -> None:
        self.tasks = [asyncio.create_task(replica.watch(client, self.stop_event)) for replica in self.replicas]

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
        # A leak never ends by itself here: the fault phase lasts its whole duration. A hang ends by itself, a crash
        # once the launcher has started the process again, a rollout once every replica was replaced.
        if self.fault == "rollout":
            return all(replica.recovered() for replica in self.replicas)
        return self.fault in {"hang", "crash"} and self.payment.recovered()

    def restarts(self) -> int | None:
        return sum(replica.tracker.gone and replica.tracker.ready for replica in self.replicas)

    def status(self) -> str:
        return " | ".join(f"{replica.name or 'payment'}: {_process_state(replica)}" for replica in self.replicas)

    async def finish(self, client: httpx.AsyncClient, *, wait: bool = True) -> None:
        """Clears the fault so the local shop recovers (a hang ends by itself, a crashed or rolled replica comes back
        through the launcher), and waits until every replica is ready again."""
        if self.fault in {"leak", "hang"} and self.payment.tracker.gone:
            self.notes.append(
                "The payment process is gone: make run starts a dead service again after a back-off (see its output)."
            )
            return
        if self.fault == "leak" and not await self.payment.clear(client):
            self.notes.append("DELETE /chaos failed: the payment process may still carry the fault.")
            return
        if wait:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECOVERY_WAIT_SECONDS):
                    for replica in self.replicas:
                        await replica.ready_event.wait()

    def stop(self) -> None:
        self.stop_event.set()


def _process_state(replica: LocalPayment) -> str:
    tracker = replica.tracker
    if not tracker.ready and tracker.gone:
        return "process gone"
    return ("ready" if tracker.ready else "UNREADY") + (", liveness FAILING" if tracker.liveness_failed else "")


def data_dir(options: argparse.Namespace) -> Path:
    """make run's data directory: --data-dir, else $SHOP_DATA_DIR, else `.data` in the checkout."""
    if options.data_dir:
        return Path(options.data_dir)
    if os.environ.get("SHOP_DATA_DIR"):
        return Path(os.environ["SHOP_DATA_DIR"])
    try:
        return repository_root() / ".data"
    except WorkspaceError as exc:
        raise DrillError(f"{exc}; or name make run's data directory with --data-dir") from None


def local_replicas(options: argparse.Namespace, clock: Clock) -> tuple[list[LocalPayment], int | None]:
    """The payment replicas to follow and make run's launcher pid, from its run.json (unless --payment-url)."""
    state = RunState.read(data_dir(options))
    if options.payment_url or state is None or not state.replicas("payment"):
        url = (options.payment_url or "http://localhost:8083").rstrip("/")
        return [LocalPayment(url, options.chaos_token or "", clock)], state.launcher_pid if state else None
    replicas = state.replicas("payment")
    named = len(replicas) > 1
    payments = [LocalPayment(r.url, options.chaos_token or "", clock, r.name if named else None) for r in replicas]
    return payments, state.launcher_pid


class ClusterTarget(Target):
    """One payment pod for the chaos faults; the payment Deployment for a rollout; the database pod for its fault."""

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
    ) -> None:
        self.mode, self.cluster, self.token, self.clock, self.fault = "kubernetes", cluster, token, clock, fault
        self.pod = self.name = str(pod["metadata"]["name"])
        self.port = cluster.http_port(pod)
        self.deployment, self.rolled_from = deployment, set[str]()
        self.database = str(database["metadata"]["name"]) if database else None
        if fault == "rollout":
            self.name = f"deployment/{deployment}"
        elif fault == "database":
            self.name = self.database
        self.notes = []
        self.watcher = PodWatcher(not_before=datetime.now(UTC) - timedelta(seconds=2), container=cluster.container)
        self.events: queue.Queue[tuple[float, str, str, Mapping[str, Any]]] = queue.Queue()
        self.stop_event = threading.Event()
        self.injected: list[Mark] = []
        self.pod_marks: list[Mark] = []
        also = ",".join(f"{k}={v}" for k, v in database["metadata"]["labels"].items()) if database else None
        self.threads = cluster.watch(self._sink, self.stop_event, also=also)

    def _sink(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        self.events.put((self.clock(), kind, event_type, obj))

    def drain(self) -> None:
        while True:
            try:
                t, kind, event_type, obj = self.events.get_nowait()
            except queue.Empty:
                return
            self.pod_marks += self.watcher.apply(t, kind, event_type, obj)

    async def inject(self, client: httpx.AsyncClient, fault: str, body: Mapping[str, Any] | None) -> None:
        t = self.clock()
        if fault == "rollout":
            self.drain()
            self.rolled_from = self.watcher.active_replicasets() or await asyncio.to_thread(self.cluster.replicasets)
            await asyncio.to_thread(self.cluster.rollout_restart, self.deployment)
            self.injected.append(
                Mark(t, "injected", self.name, f"kubectl rollout restart deployment/{self.deployment}")
            )
            return
        if fault == "database":
            assert self.database is not None
            await asyncio.to_thread(self.cluster.kill_pod, self.database)
            self.injected.append(Mark(t, "injected", self.database, "pod deleted with no grace period: SIGKILL"))
            return
        status, text = await asyncio.to_thread(
            self.cluster.request,
            self.pod,
            self.port,
            "POST",
            f"/chaos/{fault}",
            body=body,
            headers={"X-Chaos-Token": self.token},
        )
        if status >= 300:
            raise ChaosRefused(f"POST /chaos/{fault} on pod {self.pod} answered {status}: {text[:200]}")
        self.injected.append(Mark(t, "injected", self.pod, f"POST /chaos/{fault} {dict(body) if body else ''}"))

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
        pod = self.watcher.pods.get(name)
        if pod is None:
            return f"pod {name}: ?"
        return f"pod {name}: {'Ready' if pod.ready else 'NOT READY'}, restarts {pod.restarts} | rs {sets}"

    async def finish(self, client: httpx.AsyncClient, *, wait: bool = True) -> None:
        self.drain()
        if self.fault not in CHAOS_FAULTS:
            return  # a rollout or a killed database pod leaves nothing to clear
        pod = self.watcher.pods.get(self.pod)
        if pod is not None and pod.restarts == 0 and not pod.deleted:  # the fault is still in it: take it out
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    self.cluster.request,
                    self.pod,
                    self.port,
                    "DELETE",
                    "/chaos",
                    headers={"X-Chaos-Token": self.token},
                )
                self.injected.append(Mark(self.clock(), "fault_cleared", self.pod, "DELETE /chaos (no restart seen)"))
            self.notes.append(f"pod {self.pod} did not restart within the fault phase; the drill cleared its fault.")

    def stop(self) -> None:
        self.stop_event.set()


def leak_rate(options: argparse.Namespace, mode: str) -> float:
    if options.leak_mb_per_second is not None:
        return float(options.leak_mb_per_second)
    return LOCAL_LEAK_MB_PER_SECOND if mode == "local" else LIVENESS_LEAK_MIB_PER_SECOND


def fault_body(options: argparse.Namespace, mode: str, duration: float) -> dict[str, Any] | None:
    if options.fault == "leak":
        cap = options.leak_max_mb if options.leak_max_mb is not None else (1024 if mode == "local" else None)
        return {"mb_per_second": leak_rate(options, mode), "max_mb": cap}
    if options.fault == "hang":
        return {"seconds": options.hang_seconds or (duration if mode == "local" else 120.0)}
    return None


def choose_target(options: argparse.Namespace, clock: Clock) -> Target:
    if not options.local:
        from shop_load import kube

        api = kube.connect(options.context)
        cluster = kube.Cluster(api, options.namespace, options.selector, options.container) if api is not None else None
        if cluster is not None and (options.kubernetes or cluster.reachable()):
            try:
                pod = cluster.pick_ready_pod()
                token = options.chaos_token or cluster.chaos_token(pod)
                databases = cluster.pods(options.database_selector) if options.fault == "database" else []
            except kube.ClusterError as exc:
                raise DrillError(str(exc)) from None
            except Exception as exc:  # the API client's own errors (ApiException, urllib3) carry the reason
                raise DrillError(f"the Kubernetes API refused: {exc}") from None
            if not token and options.fault in CHAOS_FAULTS:
                raise DrillError("no chaos token: set CHAOS_TOKEN (the pod's CHAOS_TOKEN variable has none either)")
            if options.fault == "database" and not databases:
                raise DrillError(f"--fault database: no pod matches {options.database_selector}")
            database = databases[0] if databases else None
            return ClusterTarget(
                cluster, pod, token or "", clock, options.fault, deployment=options.deployment, database=database
            )
        if options.kubernetes:
            raise DrillError("--kubernetes: no reachable cluster with payment pods (check KUBECONFIG and --namespace)")
    if options.fault == "database":
        raise DrillError(
            "--fault database needs a cluster (make kind-up): make run's embedded PostgreSQL has no orchestrator to "
            "start it again; make e2e-containers shows the same on a container engine"
        )
    replicas, launcher = local_replicas(options, clock)
    if options.fault == "rollout" and launcher is None:
        raise DrillError(
            f"--fault rollout needs make run's launcher: no run.json of a running shop in {data_dir(options)}"
        )
    if not options.chaos_token and options.fault in CHAOS_FAULTS:
        raise DrillError("no chaos token: start the shop with CHAOS_ENABLED=true CHAOS_TOKEN=... and pass the same")
    return LocalTarget(replicas, options.fault, launcher)


def report_paths(out: Path, profile: str) -> dict[str, Path]:
    stem = out / f"drill-{profile}"
    return {"json": stem.with_suffix(".json"), "png": stem.with_suffix(".png"), "ledger": Path(f"{stem}.ledger.json")}


def print_invariants(results: Sequence[InvariantResult]) -> None:
    rows = [("PASS" if r.ok else "FAIL", r.name, r.detail) for r in results]
    print(table(rows, ("", "invariant", "")))
    for result in results:
        for problem in result.problems[1:]:
            print(f"  {result.name}: {problem}")


def failed_names(results: Sequence[InvariantResult]) -> list[str]:
    return [r.name for r in results if not r.ok]


async def wait_phase(
    seconds: float,
    target: Target,
    progress: Progress,
    clock: Clock,
    shoppers: Shoppers,
    *,
    until_recovered: bool = False,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        progress.probe = target.status()
        progress.show(clock(), shoppers)
        if until_recovered and target.recovered():
            return
        await asyncio.sleep(0.25)


async def restock(
    options: argparse.Namespace, client: httpx.AsyncClient, base_url: str, mode: str, seconds: float
) -> str | None:
    """Raises the stock so the planned sale does not sell out (`--restock`); returns a note for the report."""
    choice = str(options.restock).strip().lower()
    if choice in {"0", "off", "no", "never"}:
        return None
    loopback = urlsplit(base_url).hostname in {"localhost", "127.0.0.1", "::1"}
    database_url = options.catalog_database_url or (
        stock.make_run_database_url() if mode == "local" and loopback else None
    )
    try:
        rows = await invariants.inventory(client)
    except httpx.HTTPError:
        return None  # the customers' preparation says what is wrong with the shop
    needed = stock.units_needed(options.rate, seconds)
    if choice == "auto":
        level = stock.restock_level(rows, needed)
    else:
        try:
            level = int(choice)
        except ValueError:
            raise DrillError(f"--restock {options.restock!r}: a number of units, auto, or 0") from None
    on_hand = sum(int(row["stock"]) for row in rows)
    if level is None or level <= 0:
        return None
    if database_url is None:
        return (
            f"the shop has {on_hand} units for a sale that may take {needed}: it may sell out (a 409 "
            "insufficient stock is an answer); --catalog-database-url lets the drill restock first"
        )
    try:
        changed = await asyncio.to_thread(stock.raise_stock, database_url, level, rows)
    except stock.NotTheShop as exc:
        return f"did not restock: {database_url.rsplit('@', 1)[-1]} is not this shop's catalog database ({exc})"
    except Exception as exc:  # psycopg's errors name the server and the reason
        reason = f"{type(exc).__name__}: {str(exc)[:160]}"
        return f"could not restock through catalog's database ({reason}); {on_hand} units on hand"
    return f"restocked before the drill: {changed} products raised to {level} units each in catalog's database"


async def drill(options: argparse.Namespace) -> int:
    t0 = time.monotonic()

    def clock() -> float:
        return time.monotonic() - t0

    started_at = datetime.now(UTC)
    target = choose_target(options, clock)
    mode = target.mode
    duration = options.duration if options.duration is not None else DEFAULTS[mode]["duration"]
    base_url = (options.url or os.environ.get("SHOP_URL") or "http://localhost:8080").rstrip("/")
    if options.browse_rate > 0:
        try:
            wrk.require_wrk()
        except wrk.WrkError as exc:
            raise DrillError(f"{exc}; or browse with nothing but the checkouts: --browse-rate 0") from None
    progress = Progress()
    shoppers = Shoppers(
        base_url,
        clock,
        rate=options.rate,
        retry_for=options.retry_for,
        request_timeout=options.request_timeout,
        declined_share=options.declined_share,
        max_in_flight=options.max_in_flight,
        view_product=options.browse_rate <= 0,  # wrk does the browsing
    )
    shard = httpx.Limits(max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT)
    lags: list[tuple[float, float]] = []
    stop_customers, stop_sampling = asyncio.Event(), asyncio.Event()
    counter = ServerCounter()
    progress.browses = counter if options.browse_rate > 0 else None
    browse: Browsing | None = None
    sampler: asyncio.Task[None] | None = None
    lag_watch: asyncio.Task[None] | None = None
    injected = finished = False
    notes: list[str] = []
    load_window, client_cpu = (0.0, 0.0), 0.0
    try:
        async with (
            contextlib.AsyncExitStack() as clients,
            httpx.AsyncClient(base_url=base_url) as client,
            httpx.AsyncClient() as control,
        ):
            checkout_clients = [
                await clients.enter_async_context(httpx.AsyncClient(base_url=base_url, limits=shard))
                for _ in range(max(1, math.ceil(options.max_in_flight / CONNECTIONS_PER_CLIENT)))
            ]
            lag_watch = asyncio.create_task(watch_lag(clock, lags, stop_sampling))
            if isinstance(target, LocalTarget):
                if options.fault in CHAOS_FAULTS:
                    await target.payment.check(control)
                target.start(control)
            planned = options.warmup + duration + options.cooldown
            if note := await restock(options, client, base_url, mode, planned):
                notes.append(note)
                print(f"shop-drill: {note}", file=sys.stderr, flush=True)
            try:
                await shoppers.prepare(client, options.customers)
                initial = await invariants.inventory(client)
            except (ShopUnavailable, httpx.HTTPError) as exc:
                raise DrillError(f"the shop at {base_url} cannot take customers: {exc}") from None
            ledger = invariants.Ledger(
                base_url,
                started_at.isoformat(),
                options.reservation_ttl,
                customers=shoppers.customers,
                checkouts=shoppers.checkouts,
                initial_inventory=initial,
            )
            if options.browse_rate > 0:
                scrape = (
                    browsing.cluster_scrape(target.cluster, options.storefront_selector)
                    if isinstance(target, ClusterTarget)
                    else browsing.local_scrape(control, base_url)
                )
                sampler = asyncio.create_task(browsing.sample_forever(scrape, counter, clock, stop_sampling))
                browse = Browsing(
                    base_url,
                    options.browse_rate,
                    options.browse_connections or browsing.default_connections(options.browse_rate),
                    browsing.browse_paths([str(p["sku"]) for p in shoppers.products]),
                    clock,
                    cap_seconds=planned + duration + 120,
                    timeout_seconds=options.request_timeout,
                )
                try:
                    browse.start("before")
                except wrk.WrkError as exc:
                    raise DrillError(f"wrk cannot browse the shop: {exc}") from None
            load_started, cpu_started = clock(), time.process_time()
            customers = asyncio.create_task(shoppers.run(checkout_clients, stop_customers))
            progress.phase = "warm-up"
            await wait_phase(options.warmup, target, progress, clock, shoppers)
            progress.phase = "fault"
            injected = True  # set before sending: a fault whose answer was lost is cleared all the same
            if browse is not None:
                await browse.switch("during")
            await target.inject(control, options.fault, fault_body(options, mode, duration))
            await wait_phase(duration, target, progress, clock, shoppers, until_recovered=True)
            progress.phase = "recovering"
            finished = True
            await target.finish(control)
            if browse is not None:
                await browse.switch("after")
            progress.phase = "cool-down"
            await wait_phase(options.cooldown, target, progress, clock, shoppers)
            stop_customers.set()
            load_window, client_cpu = (load_started, clock()), time.process_time() - cpu_started
            if browse is not None:
                await browse.stop()
            progress.phase = "finishing"
            while not customers.done():
                progress.show(clock(), shoppers)
                await asyncio.sleep(0.25)
            await customers
            end = clock()
            stop_sampling.set()
            await asyncio.gather(*(task for task in (lag_watch, sampler) if task is not None))
            target.stop()
            progress.done()
    finally:
        stop_customers.set()
        stop_sampling.set()
        if browse is not None:
            browse.kill()
        for task in (sampler, lag_watch):
            if task is not None and not task.done():
                task.cancel()
        if injected and not finished:  # interrupted (Ctrl-C, an error) with the fault in place: take it out
            with contextlib.suppress(Exception):
                async with httpx.AsyncClient() as cleanup:
                    await target.finish(cleanup, wait=False)
        target.stop()
    results: list[InvariantResult] | None = None
    if not options.no_check:
        print("checking the invariants against the shop's API ...", file=sys.stderr, flush=True)
        results = await invariants.verify(ledger, settle_seconds=options.settle)
    settings = {
        "profile": options.profile,
        "mode": mode,
        "fault": options.fault,
        "fault_body": fault_body(options, mode, duration),
        "url": base_url,
        "payment_url": ",".join(r.url for r in target.replicas) if isinstance(target, LocalTarget) else None,
        "namespace": options.namespace if mode == "kubernetes" else None,
        "rate": options.rate,
        "browse_rate": options.browse_rate,
        "browse_connections": browse.connections if browse is not None else None,
        "max_in_flight": options.max_in_flight,
        "customers": options.customers,
        "warmup_s": options.warmup,
        "duration_s": duration,
        "cooldown_s": options.cooldown,
        "retry_for_s": options.retry_for,
        "reservation_ttl_s": options.reservation_ttl,
        "restock": str(options.restock),
        "orchestrator": "kubernetes"
        if mode == "kubernetes"
        else "make run"
        if options.fault in LAUNCHER_FAULTS
        else None,
    }
    out_of_stock = sum(c.outcome == "out_of_stock" for c in shoppers.checkouts)
    if out_of_stock:
        notes.append(
            f"{out_of_stock} checkouts were answered 409 insufficient stock (an answer, not a failure): "
            "the sale sold out some products (--restock raises the stock before the drill)"
        )
    report = build_report(
        settings=settings,
        records=shoppers.records,
        checkouts=shoppers.checkouts,
        marks=target.marks(),
        replicasets=target.replicasets(),
        invariants=results,
        end=end,
        target_pod=target.name,
        restarts=target.restarts(),
        notes=[*notes, *target.notes],
        started_at=started_at.isoformat(),
        not_started=shoppers.not_started,
        load_window=load_window,
        browsing=browse.summary() if browse is not None else None,
        browse_samples=counter.samples if options.browse_rate > 0 else None,
        late=shoppers.late,
        client_lag=lags,
        client_cpu_seconds=client_cpu,
        autoscaler=target.autoscaler(),
    )
    paths = report_paths(options.out, options.profile)
    options.out.mkdir(parents=True, exist_ok=True)
    paths["json"].write_text(json.dumps(report, indent=1) + "\n")
    ledger.save(paths["ledger"])
    plot.render(report, paths["png"])
    print(summary(report))
    print(f"\nreport: {paths['json']}\ntimeline: {paths['png']}\nledger: {paths['ledger']}")
    other = report_paths(options.out, "fragile" if options.profile == "resilient" else "resilient")["json"]
    if other.exists():
        with contextlib.suppress(KeyError, TypeError, ValueError):  # a report of an older drill lacks some figures
            print("\n" + compare([json.loads(p.read_text()) for p in sorted([paths["json"], other], reverse=True)]))
    if results is not None and (failed := failed_names(results)):
        print(f"\nINVARIANT FAILED: {', '.join(failed)}")
        return EXIT_INVARIANT
    return EXIT_OK


async def check_only(options: argparse.Namespace) -> int:
    ledger = invariants.Ledger.load(options.check)
    if options.url:
        ledger.base_url = options.url.rstrip("/")
    results = await invariants.verify(ledger, settle_seconds=options.settle)
    print_invariants(results)
    if failed := failed_names(results):
        print(f"\nINVARIANT FAILED: {', '.join(failed)}")
        return EXIT_INVARIANT
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    if options.compare:
        reports = [json.loads(path.read_text()) for path in options.compare]
        print(compare(reports))
        raise SystemExit(EXIT_OK)
    try:
        code = asyncio.run(check_only(options) if options.check else drill(options))
    except (DrillError, ChaosRefused) as exc:
        print(f"\nshop-drill: {exc}", file=sys.stderr)
        code = EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
