"""The rendered monitoring component: valid Kubernetes objects, small, locked down, and wired together."""

import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from shop_devtools.quantities import memory_bytes
from tests.monitoring.conftest import (
    ALERTS,
    COMPONENT,
    DASHBOARD,
    NAMESPACE,
    PROMETHEUS_CONFIG,
    Manifest,
    containers,
    find,
)

MEMORY_REQUESTS_BUDGET_MI = 400
PINNED_IMAGE = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$")
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9, "": 1}
VALIDATE_TIMEOUT = 120


def pod_spec(deployment: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def test_the_component_file_is_a_kustomize_component() -> None:
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert kustomization["kind"] == "Component"


def test_it_renders_prometheus_grafana_and_the_pushgateway_with_their_plumbing(rendered: list[Manifest]) -> None:
    kinds = sorted((obj["kind"], re.sub(r"-[a-z0-9]{10}$", "", obj["metadata"]["name"])) for obj in rendered)
    assert kinds == sorted(
        [
            ("ConfigMap", "grafana-dashboard-providers"),
            ("ConfigMap", "grafana-dashboards"),
            ("ConfigMap", "grafana-datasources"),
            ("ConfigMap", "prometheus-config"),
            ("ConfigMap", "prometheus-rules"),
            ("Deployment", "grafana"),
            ("Deployment", "prometheus"),
            ("Deployment", "pushgateway"),
            ("Role", "prometheus-discovery"),
            ("RoleBinding", "prometheus-discovery"),
            ("Service", "grafana"),
            ("Service", "prometheus"),
            ("Service", "pushgateway"),
            ("ServiceAccount", "grafana"),
            ("ServiceAccount", "prometheus"),
            ("ServiceAccount", "pushgateway"),
        ]
    )
    for obj in rendered:
        assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "resilient-shop", obj["metadata"]["name"]
        assert labels["app.kubernetes.io/component"] == "monitoring", obj["metadata"]["name"]


@pytest.mark.parametrize("kubernetes_version", [None, "1.30.0"], ids=["newest-schema", "kubernetes-1.30"])
def test_every_object_passes_strict_kubernetes_validation(
    rendered_yaml: str, tmp_path: Path, kubernetes_version: str | None
) -> None:
    validator = Path(sys.executable).parent / "kubernetes-validate"
    if not validator.exists():
        found = shutil.which("kubernetes-validate")
        assert found, "kubernetes-validate is a dev dependency of the workspace"
        validator = Path(found)
    manifest = tmp_path / "monitoring.yaml"
    manifest.write_text(rendered_yaml)
    version = ["-k", kubernetes_version] if kubernetes_version else []
    result = subprocess.run(
        [str(validator), "--strict", *version, str(manifest)],
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") == len([d for d in yaml.safe_load_all(rendered_yaml) if d])


def test_images_are_pinned_and_never_latest(rendered: list[Manifest]) -> None:
    images = {container["image"] for _, container in containers(rendered)}
    assert images, "no containers rendered"
    for image in images:
        assert PINNED_IMAGE.match(image), f"{image} is not pinned to a version"
        assert not image.endswith(":latest")


def test_memory_requests_fit_the_laptop_budget_and_every_container_is_bounded(rendered: list[Manifest]) -> None:
    total = 0
    for workload, container in containers(rendered):
        resources = container["resources"]
        replicas = workload["spec"].get("replicas", 1)
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), f"{container['name']} lacks {kind}"
        request, limit = memory_bytes(resources["requests"]["memory"]), memory_bytes(resources["limits"]["memory"])
        assert request <= limit
        total += replicas * request
    assert total <= MEMORY_REQUESTS_BUDGET_MI * 2**20, f"monitoring requests {total / 2**20:.0f}Mi of memory"


def test_pods_are_locked_down(rendered: list[Manifest]) -> None:
    for workload in (obj for obj in rendered if obj["kind"] == "Deployment"):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert isinstance(spec["securityContext"]["runAsUser"], int)  # images with a user name cannot be checked
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["capabilities"]["drop"] == ["ALL"], container["name"]
            assert not context["capabilities"].get("add"), container["name"]


def test_only_prometheus_gets_an_api_token(rendered: list[Manifest]) -> None:
    assert pod_spec(find(rendered, "Deployment", "prometheus"))["automountServiceAccountToken"] is True
    assert pod_spec(find(rendered, "Deployment", "grafana"))["automountServiceAccountToken"] is False
    assert pod_spec(find(rendered, "Deployment", "pushgateway"))["automountServiceAccountToken"] is False


def test_writable_paths_are_volumes(rendered: list[Manifest]) -> None:
    """With a read-only root filesystem, the data directories must be emptyDirs."""
    writable = {"prometheus": ["/prometheus"], "grafana": ["/var/lib/grafana", "/tmp"], "pushgateway": ["/data"]}
    for name, paths in writable.items():
        spec = pod_spec(find(rendered, "Deployment", name))
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount for mount in spec["containers"][0]["volumeMounts"]}
        for path in paths:
            assert path in mounts, f"{name} has no volume at {path}"
            assert "emptyDir" in volumes[mounts[path]["name"]]
            assert not mounts[path].get("readOnly", False)


@pytest.mark.parametrize(("name", "path"), [("prometheus", "/-/ready"), ("grafana", "/api/health")])
def test_probes_use_the_ready_and_health_endpoints(rendered: list[Manifest], name: str, path: str) -> None:
    container = pod_spec(find(rendered, "Deployment", name))["containers"][0]
    port_names = {port["name"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == path
    assert container["startupProbe"]["httpGet"]["path"] == path
    assert "livenessProbe" in container
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names


def test_services_select_their_pods_and_expose_grafana_on_a_node_port(rendered: list[Manifest]) -> None:
    for name, port, kind in [
        ("prometheus", 9090, "ClusterIP"),
        ("grafana", 3000, "NodePort"),
        ("pushgateway", 9091, "ClusterIP"),
    ]:
        service, deployment = find(rendered, "Service", name), find(rendered, "Deployment", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["type"] == kind
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert pod_labels["app.kubernetes.io/name"] == name
        assert pod_labels["app.kubernetes.io/part-of"] == "resilient-shop"
        [service_port] = service["spec"]["ports"]
        assert service_port["port"] == port
        container_ports = {p["name"]: p["containerPort"] for p in pod_spec(deployment)["containers"][0]["ports"]}
        assert container_ports[service_port["targetPort"]] == port
    assert find(rendered, "Service", "grafana")["spec"]["ports"][0]["nodePort"] == 30030


def test_prometheus_may_discover_pods_in_shop_and_nothing_else(rendered: list[Manifest]) -> None:
    role, binding = (
        find(rendered, "Role", "prometheus-discovery"),
        find(rendered, "RoleBinding", "prometheus-discovery"),
    )
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": NAMESPACE}]
    assert pod_spec(find(rendered, "Deployment", "prometheus"))["serviceAccountName"] == "prometheus"
    assert not [obj for obj in rendered if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}]


def test_every_config_map_a_pod_mounts_is_rendered(rendered: list[Manifest]) -> None:
    config_maps = {obj["metadata"]["name"] for obj in rendered if obj["kind"] == "ConfigMap"}
    for deployment in (obj for obj in rendered if obj["kind"] == "Deployment"):
        for volume in pod_spec(deployment)["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, volume


def mounted_files(rendered: list[Manifest], deployment: str) -> dict[str, str]:
    """Path → content of every file the deployment's container sees from a ConfigMap volume."""
    spec = pod_spec(find(rendered, "Deployment", deployment))
    maps = {obj["metadata"]["name"]: obj["data"] for obj in rendered if obj["kind"] == "ConfigMap"}
    volumes = {v["name"]: maps[v["configMap"]["name"]] for v in spec["volumes"] if "configMap" in v}
    files = {}
    for mount in spec["containers"][0]["volumeMounts"]:
        for key, content in volumes.get(mount["name"], {}).items():
            files[str(PurePosixPath(mount["mountPath"]) / key)] = content
    return files


def test_prometheus_reads_the_config_and_rules_of_this_folder(rendered: list[Manifest]) -> None:
    files = mounted_files(rendered, "prometheus")
    args = pod_spec(find(rendered, "Deployment", "prometheus"))["containers"][0]["args"]
    [config_path] = [arg.split("=", 1)[1] for arg in args if arg.startswith("--config.file=")]
    assert files[config_path] == PROMETHEUS_CONFIG.read_text()
    config = yaml.safe_load(files[config_path])
    rule_files = [path for path in files if any(PurePosixPath(path).match(glob) for glob in config["rule_files"])]
    assert [files[path] for path in rule_files] == [ALERTS.read_text()]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(rendered: list[Manifest]) -> None:
    files = mounted_files(rendered, "grafana")
    env = {e["name"]: e.get("value") for e in pod_spec(find(rendered, "Deployment", "grafana"))["containers"][0]["env"]}
    [datasources] = [c for p, c in files.items() if p.startswith("/etc/grafana/provisioning/datasources/")]
    [source] = yaml.safe_load(datasources)["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the Service of this component, same namespace
    [providers] = [c for p, c in files.items() if p.startswith("/etc/grafana/provisioning/dashboards/")]
    [provider] = yaml.safe_load(providers)["providers"]
    dashboard_path = str(PurePosixPath(provider["options"]["path"]) / DASHBOARD.name)
    assert files[dashboard_path] == DASHBOARD.read_text()
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == dashboard_path
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
