"""Renders every overlay and every combination of the components with the real `kubectl kustomize`, once per
session, from a copy of k8s/ whose secrets are generated the way `python -m shop_devtools.cluster secrets` does
(so the tests work from a clean clone and never touch the checkout's own k8s/base/generated/)."""

import itertools
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shop_devtools.cluster.commands import Target as DeployTarget
from shop_devtools.cluster.generated_secrets import generate_secrets
from shop_devtools.cluster.runner import Runner
from shop_devtools.cluster.shop import Shop
from tests.k8s.manifests import Manifests

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
COMPONENTS = ("network-policies", "fragile", "monitoring")
MONITORING_PRESENT = (K8S / "components" / "monitoring" / "kustomization.yaml").is_file()
MONITORING_MISSING = "k8s/components/monitoring does not exist yet (written by another change)"
KUBECTL_MISSING = "kubectl (with its built-in kustomize) is not on PATH"
RENDER_TIMEOUT = 60


@dataclass(frozen=True)
class Target:
    """Something `kubectl kustomize` renders: an overlay, or the base plus a set of components."""

    id: str
    path: str  # relative to the k8s/ copy
    fragile: bool
    monitoring: bool
    network_policies: bool
    demo: bool  # a cluster overlay: chaos enabled, storefront published as a NodePort


def overlay_targets() -> list[Target]:
    return [
        Target(
            id=f"overlay:{path.parent.name}",
            path=f"overlays/{path.parent.name}",
            fragile="fragile" in path.parent.name,
            monitoring="monitoring" in path.parent.name,
            network_policies=True,
            demo=True,
        )
        for path in sorted((K8S / "overlays").glob("*/kustomization.yaml"))
    ]


def combination_targets() -> list[Target]:
    targets = []
    for size in range(len(COMPONENTS) + 1):
        for chosen in itertools.combinations(COMPONENTS, size):
            name = "+".join(chosen) if chosen else "none"
            targets.append(
                Target(
                    id=f"base+{name}",
                    path="base" if not chosen else f"combinations/{name}",
                    fragile="fragile" in chosen,
                    monitoring="monitoring" in chosen,
                    network_policies="network-policies" in chosen,
                    demo=False,
                )
            )
    return targets


TARGETS = [*overlay_targets(), *combination_targets()]


def params(targets: list[Target]) -> list[Any]:
    return [
        pytest.param(
            target,
            id=target.id,
            marks=[pytest.mark.skipif(target.monitoring and not MONITORING_PRESENT, reason=MONITORING_MISSING)],
        )
        for target in targets
    ]


ALL = params(TARGETS)
RESILIENT = params([target for target in TARGETS if not target.fragile])
FRAGILE = params([target for target in TARGETS if target.fragile])
DEMO = params([target for target in TARGETS if target.demo])
WITH_POLICIES = params([target for target in TARGETS if target.network_policies])


def write_combination(k8s: Path, components: tuple[str, ...]) -> None:
    directory = k8s / "combinations" / "+".join(components)
    directory.mkdir(parents=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base"],
        "components": [f"../../components/{component}" for component in components],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))


@pytest.fixture(scope="session")
def k8s_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """k8s/ as a clean clone has it (no generated/), plus fresh secrets and one kustomization per combination."""
    k8s = tmp_path_factory.mktemp("repo") / "k8s"
    shutil.copytree(K8S, k8s, ignore=shutil.ignore_patterns("generated"))
    generate_secrets(k8s / "base" / "generated")
    for size in range(1, len(COMPONENTS) + 1):
        for chosen in itertools.combinations(COMPONENTS, size):
            write_combination(k8s, chosen)
    return k8s


def kustomize(directory: Path) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip(KUBECTL_MISSING)
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=RENDER_TIMEOUT, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


Render = Callable[[Target], Manifests]


@pytest.fixture(scope="session")
def render(k8s_copy: Path) -> Render:
    cache: dict[str, Manifests] = {}

    def rendered(target: Target) -> Manifests:
        if target.id not in cache:
            cache[target.id] = Manifests(kustomize(k8s_copy / target.path))
        return cache[target.id]

    return rendered


Deployed = Callable[[DeployTarget], Manifests]


@pytest.fixture(scope="session")
def deployed(k8s_copy: Path) -> Deployed:
    """What `make deploy` would apply for a target (its components included: autoscaling, the scheduled drill):
    `Shop.deployable` writes its kustomization (under the copy's .data/deploy/), and `kubectl kustomize` renders it."""
    shop = Shop(k8s_copy.parent, Runner())
    cache: dict[DeployTarget, Manifests] = {}

    def rendered(target: DeployTarget) -> Manifests:
        if target not in cache:
            cache[target] = Manifests(kustomize(shop.deployable(target)))
        return cache[target]

    return rendered
