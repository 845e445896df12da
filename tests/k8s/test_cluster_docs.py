"""The cluster guide (README, docs/kubernetes.md, k8s/**/README.md) against the manifests and the commands: the
numbers it states are the ones the rendered objects give, and the commands it prints are the ones that work."""

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from shop_devtools.cluster import commands
from shop_devtools.cluster.commands import Target as DeployTarget
from shop_devtools.quantities import memory_bytes
from tests.k8s.conftest import DEMO, MONITORING_MISSING, MONITORING_PRESENT, REPO, Deployed, Render, Target
from tests.k8s.manifests import (
    Manifests,
    Object,
    container_env,
    pod_memory_request,
    pod_spec,
    probe_window,
    total_memory_requests,
)
from tests.k8s.test_autoscaling import CLUSTERS, MINIKUBE_METRICS_SERVER_MIB, most_requested

README = REPO / "README.md"
OVERLAYS = REPO / "k8s" / "overlays" / "README.md"
GUIDE = REPO / "docs" / "kubernetes.md"
KIND = next(param.values[0] for param in DEMO if param.values[0].id == "overlay:kind")


def pages() -> list[Path]:
    return [README, *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "k8s").rglob("README.md"))]


def stated(pattern: str, page: Path) -> list[int]:
    """Every number `pattern` (one group) finds in the page, with its line breaks read as spaces."""
    return [int(found) for found in re.findall(pattern, " ".join(page.read_text().split()))]


def payment(render: Render, target: Target) -> tuple[Object, dict[str, str], Object]:
    manifests = render(target)
    spec = pod_spec(manifests.shop_deployment("payment"))
    (container,) = (c for c in spec["containers"] if c["name"] == "payment")
    found: Object = container
    return found, container_env(container, manifests), spec


def test_the_liveness_and_readiness_windows_are_the_ones_the_manifests_give(render: Render) -> None:
    """One definition (`probe_window`: period * failureThreshold + timeout, from the moment the pod turns sick to the
    kubelet's decision), stated alike in the README and the overlays' decisions, with the drain after it."""
    container, env, _ = payment(render, KIND)
    liveness, readiness = probe_window(container["livenessProbe"]), probe_window(container["readinessProbe"])
    for page in (README, OVERLAYS):
        assert set(stated(r"liveness window[^0-9]{0,30}up to (\d+) s", page)) == {liveness}, page.name
        assert set(stated(r"readiness window[^0-9]{0,30}up to (\d+) s", page)) == {readiness}, page.name
    delay = int(env["SHUTDOWN_DELAY_SECONDS"])
    assert f"delay {delay} s more: {liveness + delay} s" in " ".join(OVERLAYS.read_text().split())
    assert not stated(r"up to (20) s", README) + stated(r"up to (20) s", OVERLAYS), "the old window"


def test_a_hang_is_killed_after_the_liveness_window_and_the_whole_grace_period(render: Render) -> None:
    container, _, spec = payment(render, KIND)
    killed = probe_window(container["livenessProbe"]) + spec["terminationGracePeriodSeconds"]
    assert stated(r"a hang is killed at most (\d+) s after it began", OVERLAYS) == [killed]


def test_users_memory_limit_is_stated_as_rendered(render: Render) -> None:
    (users,) = pod_spec(render(KIND).shop_deployment("users"))["containers"]
    assert stated(r"Users gets (\d+) Mi", OVERLAYS) == [memory_bytes(users["resources"]["limits"]["memory"]) // 2**20]


def test_endpoints_are_read_from_endpoint_slices() -> None:
    """`kubectl get endpoints` is deprecated from Kubernetes 1.33: the docs read EndpointSlices by service name."""
    for page in pages():
        assert not re.search(r"get (endpoints|ep)\b", page.read_text()), page.name
    assert "get endpointslices -l kubernetes.io/service-name=payment" in README.read_text()


def test_the_guide_says_what_minikube_up_starts() -> None:
    start = shlex.join(commands.minikube_start_argv())
    assert start == "minikube start --profile resilient-shop --memory=4096 --cpus=2 --cni=calico"
    assert start in " ".join(GUIDE.read_text().split())
    assert f"--memory={commands.MINIKUBE['memory']}" in " ".join(OVERLAYS.read_text().split())


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(REPO)))
def test_every_minikube_service_command_names_the_profile(page: Path) -> None:
    """Without it, `minikube service` looks in the default profile `minikube`, not the shop's `resilient-shop`."""
    for command in re.findall(r"minikube service [^`]*", " ".join(page.read_text().split())):
        assert re.search(r"(-p|--profile) resilient-shop\b", command), command


# --- the footprint of each combination ----------------------------------------------------------------------------

FOOTPRINT_ROWS: dict[str, dict[str, Any]] = {
    "": {},
    "MONITORING=1": {"monitoring": True},
    "AUTOSCALING=1": {"autoscaling": True},
    "MONITORING=1 AUTOSCALING=1": {"monitoring": True, "autoscaling": True},
    "MONITORING=1 SCHEDULED_DRILL=1": {"monitoring": True, "scheduled_drill": True},
    "MONITORING=1 AUTOSCALING=1 SCHEDULED_DRILL=1": {"monitoring": True, "autoscaling": True, "scheduled_drill": True},
    "PROFILE=fragile": {"profile": "fragile"},
    "PROFILE=fragile MONITORING=1": {"profile": "fragile", "monitoring": True},
}
"""The make variables of each combination the guide's table lists, as the deploy target's fields."""


def footprint(manifests: Manifests, target: DeployTarget) -> int:
    """The memory the pods request, in MiB: payment at its HPA's maximum with autoscaling (and minikube's
    metrics-server addon, which is not in the rendered objects), the scheduled drill's pod counted while it runs."""
    total = most_requested(manifests) * 2**20 if target.autoscaling else total_memory_requests(manifests)
    for cronjob in manifests.of_kind("CronJob"):
        total += pod_memory_request(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    addon = MINIKUBE_METRICS_SERVER_MIB * 2**20 if target.autoscaling and target.cluster == "minikube" else 0
    return (total + addon) // 2**20


def footprint_table(deployed: Deployed) -> str:
    lines = ["| `make kind-up` / `make minikube-up` with | kind | minikube |", "| --- | ---: | ---: |"]
    for flags, fields in FOOTPRINT_ROWS.items():
        sizes = [footprint(deployed(target := DeployTarget(cluster, **fields)), target) for cluster in CLUSTERS]
        lines.append(f"| {f'`{flags}`' if flags else 'nothing more'} | {sizes[0]} | {sizes[1]} |")
    return "\n".join(lines)


@pytest.mark.skipif(not MONITORING_PRESENT, reason=MONITORING_MISSING)
def test_the_guide_states_the_footprint_of_each_combination(deployed: Deployed) -> None:
    table = footprint_table(deployed)
    assert table in GUIDE.read_text(), f"the guide's footprint table should read:\n{table}"
