"""The drill's target on a cluster (`ClusterTarget`), without a cluster: the pod it picks (the one `make leak`
picks), the chaos requests it sends that pod, and what it watches."""

import asyncio
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from shop_devtools.chaos import ChaosRefused
from shop_devtools.cluster import kube
from shop_devtools.cluster.runner import Runner
from shop_devtools.cluster.shop import Shop
from shop_devtools.credentials import OPERATOR
from shop_load.core import drill_args, ops
from shop_load.targets import choose
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


def drill_target(fault: str = "leak") -> ClusterTarget:
    target = choose.choose_target(drill_args.parse_args(["--kubernetes", "--fault", fault]), lambda: 0.0)
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
