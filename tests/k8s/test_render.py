"""Every overlay and every combination of the components renders with `kubectl kustomize`, and every object it
renders passes `kubernetes-validate --strict` against Kubernetes 1.30 and the newest schema the tool has."""

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.k8s.conftest import ALL, KUBECTL_MISSING, MONITORING_PRESENT, TARGETS, Render, Target
from tests.k8s.manifests import validate_strictly

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


@pytest.mark.parametrize("target", ALL)
def test_renders_into_namespace_shop(render: Render, target: Target) -> None:
    manifests = render(target)
    keys = [(obj["kind"], obj["metadata"]["name"]) for obj in manifests.objects]
    assert len(keys) == len(set(keys)), "an object is rendered twice"
    for obj in manifests.objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == "shop", f"{obj['kind']} {obj['metadata']['name']}"
    assert manifests.names("Namespace") == {"shop"}


def test_a_clean_clone_needs_the_generated_secrets_first(k8s_copy: Path, tmp_path: Path) -> None:
    """Without `python -m shop_devtools.cluster secrets`, kustomize stops and names the missing file."""
    if shutil.which("kubectl") is None:
        pytest.skip(KUBECTL_MISSING)
    base = tmp_path / "k8s" / "base"
    shutil.copytree(k8s_copy / "base", base, ignore=shutil.ignore_patterns("generated"))
    result = subprocess.run(
        ["kubectl", "kustomize", str(base)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "generated/" in result.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_object_validates_strictly(render: Render, version: str, tmp_path: Path) -> None:
    rendered = [target for target in TARGETS if MONITORING_PRESENT or not target.monitoring]
    objects = [obj for target in rendered for obj in render(target).objects]
    count, refusal = validate_strictly(objects, version, tmp_path)
    assert not refusal, f"{count} objects against {version}:\n{refusal}"
    assert count > 40
