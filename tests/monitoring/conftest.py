"""The monitoring component as files and as `kubectl kustomize` renders it inside a minimal kustomization."""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "k8s" / "components" / "monitoring"
DASHBOARD = COMPONENT / "dashboards" / "resilient-shop.json"
ALERTS = COMPONENT / "rules" / "alerts.yaml"
PROMETHEUS_CONFIG = COMPONENT / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCES = COMPONENT / "grafana" / "datasources.yaml"
GRAFANA_PROVIDERS = COMPONENT / "grafana" / "dashboards.yaml"
NAMESPACE = "shop"
KUSTOMIZE_TIMEOUT = 60

Manifest = dict[str, Any]


def render_with_component(workdir: Path) -> str:
    """`kubectl kustomize` of a kustomization that sets namespace `shop` and lists only this component (a
    Component cannot be built alone: it is always included through `components:`)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the manifests cannot be rendered")
    workdir.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "components": [os.path.relpath(COMPONENT, workdir)],  # kustomize refuses absolute paths here
    }
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        [kubectl, "kustomize", str(workdir)], capture_output=True, text=True, timeout=KUSTOMIZE_TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def rendered_yaml(tmp_path_factory: pytest.TempPathFactory) -> str:
    return render_with_component(tmp_path_factory.mktemp("kustomization"))


@pytest.fixture(scope="session")
def rendered(rendered_yaml: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(rendered_yaml) if doc]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The rendered object of that kind whose name is `name` (or `name` plus kustomize's hash suffix)."""
    found = [
        obj
        for obj in objects
        if obj["kind"] == kind and (obj["metadata"]["name"] == name or obj["metadata"]["name"].startswith(name + "-"))
    ]
    assert len(found) == 1, f"expected one {kind} {name}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def containers(objects: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, container) for every container and init container of every rendered workload."""
    for obj in objects:
        if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            spec = obj["spec"]["template"]["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                yield obj, container


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="session")
def alert_rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    return loaded


@pytest.fixture(scope="session")
def prometheus_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return loaded
