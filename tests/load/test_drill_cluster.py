"""The drill's target on a cluster (`ClusterTarget`), without a cluster: the pod it picks (the one `make leak`
picks), the chaos requests it sends that pod, what it does to the database pod, what it watches, and that only what
follows the injection is the fault's effect."""

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from kubernetes import client

from shop_devtools.chaos import ChaosRefused
from shop_devtools.cluster import kube
from shop_devtools.cluster.runner import Runner
from shop_devtools.cluster.shop import Shop
from shop_devtools.credentials import OPERATOR
from shop_load.core import drill_args, ops
from shop_load.report.timeline import timeline
from shop_load.targets import choose
from shop_load.targets import cluster as cluster_target
from shop_load.targets.cluster import ClusterTarget
from tests.k8s.fake_api import OPERATOR_CREDENTIAL, PAYMENT_PORT, SECRET_TOKEN, FakeApi, Sent, payment_pods
from tests.load.conftest import load_recording


def recorded_pod() -> dict[str, Any]:
    pod: dict[str, Any] = load_recording("payment_leak_oomkilled.json")["events"][0]["object"]
    return pod


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    """The fake API, with the drill's watch threads left out and no CHAOS_TOKEN in the environment (the drill reads
    the pod's, as `make leak` does)."""
    monkeypatch.setattr(kube.Cluster, "watch", lambda self, sink, stop, also=None: [])
    monkeypatch.delenv("CHAOS_TOKEN", raising=False)
    return FakeApi(pods=payment_pods()[::-1]).install(monkeypatch)


class Clock:
    """The drill's clock, set by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drill_target(fault: str = "leak", clock: Callable[[], float] = lambda: 0.0) -> ClusterTarget:
    target = choose.choose_target(drill_args.parse_args(["--kubernetes", "--fault", fault]), clock)
    assert isinstance(target, ClusterTarget)
    return target


async def inject(target: ClusterTarget, fault: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as shop:  # the drill's client of the shop: the pod is reached through the API
        await target.inject(shop, fault, body)


def test_make_leak_and_the_drill_send_the_leak_to_the_same_pod_of_the_same_pod_list(
    api: FakeApi, tmp_path: Path
) -> None:
    target = drill_target()
    asyncio.run(inject(target, "leak", {"mb_per_second": 3.0}))
    Shop(tmp_path, Runner()).leak("kind", mb_per_second=3.0, max_mb=None)
    drill, make_leak = api.sent
    assert (
        drill
        == make_leak
        == Sent(
            "payment-6f9c8d7b5c-m2n8r",
            PAYMENT_PORT,
            "POST",
            "/chaos/leak",
            {"mb_per_second": 3.0},
            {"X-Chaos-Token": SECRET_TOKEN},
        )
    )
    assert target.pod == "payment-6f9c8d7b5c-m2n8r"
    assert [(mark.kind, mark.pod, mark.detail) for mark in target.marks()] == [
        ("injected", target.pod, "POST /chaos/leak {'mb_per_second': 3.0}")
    ]


def test_on_a_cluster_the_operators_credential_is_the_one_the_storefront_pods_read(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(OPERATOR, raising=False)
    target = drill_target()
    options = drill_args.parse_args(["--kubernetes"])
    operator = choose.find_operator(options, target)
    assert operator == ops.Operator(OPERATOR_CREDENTIAL, target.credentials.place())
    assert "the credentials Secret of namespace shop" in operator.source
    assert ("shop", "app.kubernetes.io/name=storefront") in api.listed
    check = drill_args.parse_args(["--check", "ledger.json"])
    assert choose.find_operator(check, None) == operator, "--check asks the reachable cluster"
    monkeypatch.setenv(OPERATOR, "given-by-hand-0123456789")
    assert choose.find_operator(options, target).credential == "given-by-hand-0123456789"


async def test_the_drill_clears_a_fault_the_pod_still_carries(api: FakeApi) -> None:
    target = drill_target("hang")
    pod = next(pod for pod in api.pods if pod["metadata"]["name"] == target.pod)
    target._sink("Pod", "ADDED", pod)
    async with httpx.AsyncClient() as shop:
        await target.inject(shop, "hang", {"seconds": 120.0})
        await target.finish(shop)
    hang, clear = api.sent
    assert (hang.method, hang.path, hang.body) == ("POST", "/chaos/hang", {"seconds": 120.0})
    assert (clear.pod, clear.method, clear.path, clear.body, clear.headers) == (
        target.pod, "DELETE", "/chaos", None, {"X-Chaos-Token": SECRET_TOKEN}
    )  # fmt: skip
    assert "fault_cleared" in [mark.kind for mark in target.marks()]


async def test_a_refused_fault_stops_the_drill_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube.Cluster, "watch", lambda self, sink, stop, also=None: [])
    FakeApi(status=403).install(monkeypatch)
    target = choose.choose_target(drill_args.parse_args(["--kubernetes", "--chaos-token", "wrong"]), lambda: 0.0)
    assert isinstance(target, ClusterTarget)
    with pytest.raises(ChaosRefused, match=r"pod payment-6f9c8d7b5c-m2n8r refused the chaos token \(403\)"):
        await inject(target, "leak", {"mb_per_second": 3.0})


class WatchRecorder:
    """Stands in for `kube.Cluster` where the drill only asks what to watch."""

    container = None

    def __init__(self) -> None:
        self.watched: list[str | None] = []

    def http_port(self, pod: Any) -> int:
        return 8083

    def transport(self, pod: str, port: int) -> Any:
        return None

    def watch(self, sink: Any, stop: Any, also: str | None = None) -> list[Any]:
        self.watched.append(also)
        return []


def test_the_database_fault_follows_the_database_pods_by_the_selector_that_found_them() -> None:
    """Not by the killed pod's labels: its successor of the same name may carry another controller-revision-hash."""
    recorder = WatchRecorder()
    labels = {"app.kubernetes.io/name": "postgres", "controller-revision-hash": "postgres-7c9d"}
    database = {"metadata": {"name": "postgres-0", "labels": labels}}
    ClusterTarget(
        cast(kube.Cluster, recorder),
        recorded_pod(),
        "",
        lambda: 0.0,
        "database",
        database=database,
        database_selector="app.kubernetes.io/name=postgres",
    )
    ClusterTarget(cast(kube.Cluster, recorder), recorded_pod(), "token", lambda: 0.0, "leak")
    assert recorder.watched == ["app.kubernetes.io/name=postgres", None]


POSTGRES_SELECTOR = "app.kubernetes.io/name=postgres"


def postgres_pod() -> dict[str, Any]:
    """postgres-0 as k8s/base/postgres.yaml makes it (its server's container first, with PGDATA), Running, Ready."""
    containers = [
        {"name": "postgres", "env": [{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}]},
        {"name": "provision"},
    ]
    pod = {"metadata": {"name": "postgres-0"}, "spec": {"terminationGracePeriodSeconds": 30, "containers": containers}}
    return shown(pod, ready=True)


def shown(pod: dict[str, Any], *, ready: bool, restarts: int = 0, deleting: bool = False) -> dict[str, Any]:
    """`pod` as a watch event shows it: Running, Ready or not, its first container restarted `restarts` times."""
    pod = copy.deepcopy(pod)
    pod["metadata"].pop("deletionTimestamp", None)
    pod["metadata"] |= {"deletionTimestamp": "2026-11-25T09:05:00Z"} if deleting else {}
    counts = [restarts] + [0] * (len(pod["spec"]["containers"]) - 1)
    statuses = [{"name": c["name"], "restartCount": n} for c, n in zip(pod["spec"]["containers"], counts, strict=True)]
    conditions = [{"type": "Ready", "status": str(ready)}]
    pod["status"] = {"phase": "Running", "conditions": conditions, "containerStatuses": statuses}
    return pod


PAYMENT_SET = {
    "metadata": {"name": "payment-6f9c8d7b5c"},
    "spec": {"replicas": 3},
    "status": {"readyReplicas": 3, "availableReplicas": 3},
}


@dataclass
class ApiCalls:
    """Every pod deletion and exec sent to the API; an exec's command ends with `exit`, having printed `output`."""

    sent: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    exit: int = 0
    output: str = 'pg_ctl: PID file "/var/lib/postgresql/data/pgdata/postmaster.pid" does not exist'


@pytest.fixture
def calls(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> ApiCalls:
    recorded = ApiCalls()

    def delete(core: client.CoreV1Api, *args: Any, **options: Any) -> None:
        recorded.sent.append(("delete", args, options))

    def stream(call: Any, *args: Any, **options: Any) -> SimpleNamespace:
        assert call.__name__ == "connect_get_namespaced_pod_exec"
        recorded.sent.append(("exec", args, options))
        return SimpleNamespace(
            run_forever=lambda timeout: None, returncode=recorded.exit, read_all=lambda: recorded.output
        )

    monkeypatch.setattr(client.CoreV1Api, "delete_namespaced_pod", delete)
    monkeypatch.setattr(kube, "stream", stream, raising=False)  # the exec's websocket
    return recorded


def database_target(fault: str, clock: Clock) -> ClusterTarget:
    cluster, payment = kube.Cluster(kube.connect()), payment_pods()[2]
    return ClusterTarget(
        cluster, payment, "", clock, fault, database=postgres_pod(), database_selector=POSTGRES_SELECTOR
    )


async def test_the_database_fault_crashes_postgresql_inside_its_pod_and_the_restart_is_its_recovery(
    calls: ApiCalls,
) -> None:
    """No force delete (`grace_period_seconds=0`): `pg_ctl stop -m immediate` in the server's container, through
    exec; the kubelet restarts the container (restarts 1), the pod is Ready again on its WAL-recovered data."""
    clock = Clock()
    target = database_target("database", clock)
    target._sink("ReplicaSet", "ADDED", PAYMENT_SET)
    target._sink("Pod", "ADDED", postgres_pod())
    clock.now = 10.0
    await inject(target, "database", {})
    assert [(call, args) for call, args, _ in calls.sent] == [("exec", ("postgres-0", "shop"))]  # no delete
    [(_, _, options)] = calls.sent
    assert options["container"] == "postgres"
    assert " ".join(options["command"]) == "pg_ctl stop -m immediate --no-wait -D /var/lib/postgresql/data/pgdata"
    [injected] = target.marks()
    assert (injected.kind, injected.pod, injected.t) == ("injected", "postgres-0", 10.0)
    assert injected.detail.startswith("pg_ctl stop -m immediate")
    for t, ready, restarts in ((11.0, False, 0), (12.0, False, 1), (18.0, True, 1)):
        assert not target.recovered()
        clock.now = t
        target._sink("Pod", "MODIFIED", shown(postgres_pod(), ready=ready, restarts=restarts))
    assert target.recovered()
    assert target.restarts() == 1  # the server's container; provision's runs on
    steps = timeline(target.marks(), target.name)
    assert (steps.unready, steps.restarted, steps.ready_again) == (11.0, 12.0, 18.0)


async def test_the_database_pod_fault_deletes_postgres_0_with_its_normal_grace(calls: ApiCalls) -> None:
    """No `grace_period_seconds` (0 would be a force delete): the pod's own 30 s, preStop's fast shutdown first; the
    StatefulSet starts postgres-0 again, on the same volume, once the old one is gone."""
    clock = Clock()
    target = database_target("database-pod", clock)
    target._sink("ReplicaSet", "ADDED", PAYMENT_SET)
    target._sink("Pod", "ADDED", postgres_pod())
    await inject(target, "database-pod", {})
    assert calls.sent == [("delete", ("postgres-0", "shop"), {"_request_timeout": 10})]
    assert target.name == "postgres-0"
    assert [(m.kind, m.pod) for m in target.marks()] == [("injected", "postgres-0")]
    assert "grace period" in target.marks()[0].detail
    gone = shown(postgres_pod(), ready=False, deleting=True)
    for event_type, pod in (("MODIFIED", gone), ("DELETED", gone), ("ADDED", shown(postgres_pod(), ready=False))):
        target._sink("Pod", event_type, pod)
        assert not target.recovered()
    target._sink("Pod", "MODIFIED", postgres_pod())
    assert target.recovered()
    assert [m.kind for m in target.marks()][1:] == ["unready", "deleted", "ready_again"]
    assert "database-pod" in drill_args.FAULTS


async def test_a_failed_crash_stops_the_drill_with_pg_ctls_own_words(calls: ApiCalls) -> None:
    calls.exit = 1
    target = database_target("database", Clock())
    with pytest.raises(drill_args.DrillError, match=r"-D /var/lib/postgresql/data/pgdata in pod postgres-0 failed"):
        await inject(target, "database", {})
    assert [call for call, _, _ in calls.sent] == ["exec"]
    assert target.marks() == []


def test_the_database_pod_fault_needs_a_cluster(tmp_path: Path, api: FakeApi) -> None:
    """Locally and against the shop in containers there is no pod to delete: refused, saying where it runs."""
    assert "database-pod" in drill_args.FAULTS
    for where in ("--local", "--containers"):
        options = drill_args.parse_args([where, "--fault", "database-pod", "--data-dir", str(tmp_path)])
        with pytest.raises(drill_args.DrillError, match=r"--fault database-pod needs a cluster \(make kind-up\)"):
            choose.choose_target(options, lambda: 0.0)
    assert api.sent == []


async def test_a_readiness_flap_in_the_warm_up_neither_ends_nor_shapes_the_fault_phase(api: FakeApi) -> None:
    clock = Clock()
    target = drill_target("leak", clock)
    pod = next(pod for pod in api.pods if pod["metadata"]["name"] == target.pod)
    target._sink("ReplicaSet", "ADDED", PAYMENT_SET)
    for t, ready, restarts in ((0.5, True, 0), (3.0, False, 0), (4.0, False, 1), (5.0, True, 1)):  # the warm-up
        clock.now = t
        target._sink("Pod", "MODIFIED", shown(pod, ready=ready, restarts=restarts))
    clock.now = 10.0
    await inject(target, "leak", {"mb_per_second": 3.0})
    assert not target.recovered(), "Ready after a flap before the fault is not a recovery from it"
    assert target.restarts() == 0
    for t, ready, restarts in ((20.0, False, 1), (30.0, False, 2), (35.0, True, 2)):  # the fault
        assert not target.recovered()
        clock.now = t
        target._sink("Pod", "MODIFIED", shown(pod, ready=ready, restarts=restarts))
    assert target.recovered()
    assert target.restarts() == 1
    steps = timeline(target.marks(), target.name)
    assert (steps.injected, steps.unready, steps.restarted, steps.ready_again) == (10.0, 20.0, 30.0, 35.0)
    assert ("unready", 3.0) in [(mark.kind, mark.t) for mark in target.marks()], "the flap is still listed"


def sink_pods(target: ClusterTarget, api: FakeApi, *, unready: tuple[str, ...]) -> None:
    """The watch's first list of the payment pods (two Ready), then `unready` going unready."""
    for pod in api.pods:
        target._sink("Pod", "ADDED", pod)
    for pod in api.pods:
        if pod["metadata"]["name"] in unready:
            target._sink("Pod", "MODIFIED", shown(pod, ready=False))


async def test_a_chosen_pod_unready_at_the_injection_passes_the_fault_to_another_ready_one(api: FakeApi) -> None:
    target = drill_target("leak")
    chosen = target.pod
    sink_pods(target, api, unready=(chosen,))
    await inject(target, "leak", {"mb_per_second": 3.0})
    [sent] = api.sent
    assert sent.pod == target.pod == target.name == "payment-6f9c8d7b5c-zt5vh"
    assert [(mark.kind, mark.pod) for mark in target.marks() if mark.kind == "injected"] == [("injected", target.pod)]
    assert target.notes == [
        f"pod {chosen} was not Ready at the injection; the fault went, after 0 s, to pod payment-6f9c8d7b5c-zt5vh"
    ]


async def test_with_no_ready_pod_at_the_injection_the_fault_waits_for_one_and_says_so(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_target, "READY_WAIT_SECONDS", 2, raising=False)
    target = drill_target("leak")
    chosen, other = target.pod, "payment-6f9c8d7b5c-zt5vh"
    sink_pods(target, api, unready=(chosen, other))

    async def ready_again() -> None:
        await asyncio.sleep(0.5)
        target._sink("Pod", "MODIFIED", shown(next(p for p in api.pods if p["metadata"]["name"] == other), ready=True))

    await asyncio.gather(inject(target, "leak", {"mb_per_second": 3.0}), ready_again())
    assert [sent.pod for sent in api.sent] == [other]
    assert target.notes == [f"pod {chosen} was not Ready at the injection; the fault went, after 1 s, to pod {other}"]


async def test_the_wait_for_a_ready_pod_is_bounded(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_target, "READY_WAIT_SECONDS", 1, raising=False)
    target = drill_target("leak")
    chosen = target.pod
    sink_pods(target, api, unready=(chosen, "payment-6f9c8d7b5c-zt5vh"))
    await inject(target, "leak", {"mb_per_second": 3.0})
    assert [sent.pod for sent in api.sent] == [chosen]
    assert target.notes == [
        f"pod {chosen} was not Ready at the injection; the fault went, after 1 s, to it all the same: no payment pod "
        "was Ready"
    ]
