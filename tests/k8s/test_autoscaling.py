"""`--autoscaling` (`make kind-up AUTOSCALING=1`): the overlay plus k8s/components/autoscaling (and, on kind,
k8s/components/metrics-server), composed by `Shop.deployable`, which writes the kustomization `make kind-up` and
`make deploy` apply; rendered with `kubectl kustomize` and validated like every overlay."""

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from shop_devtools.cluster.commands import Cluster
from shop_devtools.cluster.commands import Target as DeployTarget
from shop_load.core import drill_args
from tests.k8s.conftest import MONITORING_MISSING, MONITORING_PRESENT, TARGETS, Deployed, Render
from tests.k8s.manifests import (
    Manifests,
    Object,
    containers,
    matches,
    pod_labels,
    pod_memory_request,
    pod_spec,
    validate_strictly,
)
from tests.k8s.test_contracts import LAPTOP_MEMORY_REQUESTS

VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "APIService", "Namespace"}
METRICS_SERVER_IMAGE = "registry.k8s.io/metrics-server/metrics-server:v"
KIND_KUBELET_ARGS = {"--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP"}
USUAL_ARGS = {"--cert-dir=/tmp", "--secure-port=10250", "--metric-resolution=15s"}


def deployment(cluster: Cluster, monitoring: bool) -> Any:
    target = DeployTarget(cluster, monitoring=monitoring, autoscaling=True)
    skip = pytest.mark.skipif(monitoring and not MONITORING_PRESENT, reason=MONITORING_MISSING)
    return pytest.param(target, id=target.deployment, marks=[skip])


CLUSTERS: tuple[Cluster, ...] = ("kind", "minikube")
AUTOSCALED = [deployment(cluster, monitoring) for cluster in CLUSTERS for monitoring in (False, True)]


def plain(render: Render, target: DeployTarget) -> Manifests:
    """The same overlay as rendered without autoscaling."""
    (found,) = (t for t in TARGETS if t.id == f"overlay:{target.overlay}")
    return render(found)


def hpa(manifests: Manifests) -> Object:
    return manifests.get("HorizontalPodAutoscaler", "payment")


def key(obj: Object) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_autoscaled_object_validates_strictly(deployed: Deployed, version: str, tmp_path: Path) -> None:
    objects = []
    for param in AUTOSCALED:
        (target,) = param.values
        if not (target.monitoring and not MONITORING_PRESENT):
            objects += deployed(target).objects
    count, refusal = validate_strictly(objects, version, tmp_path)
    assert not refusal, f"{count} objects against {version}:\n{refusal}"


@pytest.mark.parametrize("target", AUTOSCALED)
def test_the_hpa_scales_the_rendered_payment_deployment_on_cpu_never_below_3(
    deployed: Deployed, render: Render, target: DeployTarget
) -> None:
    manifests = deployed(target)
    autoscaler = hpa(manifests)
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    spec = autoscaler["spec"]
    reference = spec["scaleTargetRef"]
    assert (reference["apiVersion"], reference["kind"]) == ("apps/v1", "Deployment")
    scaled = manifests.get("Deployment", reference["name"])
    assert scaled["metadata"]["name"] == "payment"
    assert scaled["metadata"]["namespace"] == autoscaler["metadata"]["namespace"] == "shop"
    resilient = plain(render, target).shop_deployment("payment")["spec"]["replicas"]
    assert spec["minReplicas"] >= 3
    assert spec["minReplicas"] == resilient, "autoscaling starts from the resilient profile's count"
    assert spec["maxReplicas"] > spec["minReplicas"]
    (metric,) = spec["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 50 <= metric["resource"]["target"]["averageUtilization"] <= 90
    # Utilization is a share of the request: every container of the pod must request CPU.
    for container in pod_spec(scaled)["containers"]:
        assert container["resources"]["requests"]["cpu"], container["name"]


@pytest.mark.parametrize("target", AUTOSCALED)
def test_a_drill_does_not_make_payment_flap(deployed: Deployed, target: DeployTarget) -> None:
    """Scale-down waits longer than a whole drill on a cluster (warm-up, the longest fault phase, cool-down) and
    then goes one pod at a time: the quiet moment while the leaking pod is out of the Service scales nothing down,
    and the replica count the drill reads as it ends is the highest the HPA reached during it."""
    behavior = hpa(deployed(target))["spec"]["behavior"]
    options = drill_args.parse_args([])
    longest_drill = options.warmup + drill_args.DEFAULTS["kubernetes"]["duration"] + options.cooldown
    down = behavior["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= longest_drill
    assert down["policies"]
    assert all(p["type"] == "Pods" and p["value"] == 1 and p["periodSeconds"] >= 60 for p in down["policies"])
    up = behavior["scaleUp"]
    assert all(p["type"] == "Pods" and p["value"] == 1 for p in up["policies"]), "one new pod at a time"


@pytest.mark.parametrize("target", AUTOSCALED)
def test_the_hpa_owns_the_replica_count_and_nothing_else_changes(
    deployed: Deployed, render: Render, target: DeployTarget
) -> None:
    """The autoscaled render is the overlay's, minus payment's `spec.replicas` (which every `kubectl apply` would
    otherwise set back), plus the HPA and, on kind only, metrics-server."""
    autoscaled, before = deployed(target), plain(render, target)
    assert "replicas" not in autoscaled.shop_deployment("payment")["spec"]
    assert before.shop_deployment("payment")["spec"]["replicas"] == 3
    added = {key(obj) for obj in autoscaled.objects} - {key(obj) for obj in before.objects}
    assert ("HorizontalPodAutoscaler", "shop", "payment") in added
    metrics_server = added - {("HorizontalPodAutoscaler", "shop", "payment")}
    if target.cluster == "kind":
        assert ("Deployment", "kube-system", "metrics-server") in metrics_server
        assert ("APIService", "", "v1beta1.metrics.k8s.io") in metrics_server
    else:
        assert metrics_server == set(), "minikube serves the metrics API with its addon"
    assert {key(obj) for obj in before.objects} <= {key(obj) for obj in autoscaled.objects}
    unchanged = {key(obj): obj for obj in before.objects}
    for obj in autoscaled.objects:
        if key(obj) == ("Deployment", "shop", "payment"):
            expected = copy.deepcopy(unchanged[key(obj)])
            del expected["spec"]["replicas"]
            assert obj == expected
        elif key(obj) in unchanged:
            assert obj == unchanged[key(obj)], f"{key(obj)} differs with autoscaling"


@pytest.mark.parametrize("target", AUTOSCALED)
def test_objects_live_in_shop_and_metrics_server_in_kube_system(deployed: Deployed, target: DeployTarget) -> None:
    for obj in deployed(target).objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, key(obj)
        elif obj["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "metrics-server":
            assert namespace == "kube-system", key(obj)
        else:
            assert namespace == "shop", key(obj)


def test_metrics_server_is_set_up_for_kinds_kubelets(deployed: Deployed) -> None:
    manifests = deployed(DeployTarget("kind", autoscaling=True))
    server = manifests.get("Deployment", "metrics-server")
    assert server["metadata"]["namespace"] == "kube-system"
    (container,) = containers(server)
    assert set(container["args"]) >= KIND_KUBELET_ARGS | USUAL_ARGS
    assert container["image"].startswith(METRICS_SERVER_IMAGE)
    assert container["image"].removeprefix(METRICS_SERVER_IMAGE).count(".") == 2, "a pinned version"
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("https", 10250)
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}
    context, pod = container["securityContext"], pod_spec(server)
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    assert [mount["mountPath"] for mount in container["volumeMounts"]] == ["/tmp"]  # --cert-dir on an emptyDir
    assert "emptyDir" in pod["volumes"][0]

    service = manifests.get("Service", "metrics-server")
    assert service["metadata"]["namespace"] == "kube-system"
    assert matches({"matchLabels": service["spec"]["selector"]}, pod_labels(server))
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == "https"
    api = manifests.get("APIService", "v1beta1.metrics.k8s.io")["spec"]
    assert (api["group"], api["version"]) == ("metrics.k8s.io", "v1beta1")
    assert api["service"] == {"name": "metrics-server", "namespace": "kube-system", "port": service_port["port"]}

    account = pod["serviceAccountName"]
    assert account in manifests.names("ServiceAccount")
    subject = {"kind": "ServiceAccount", "name": account, "namespace": "kube-system"}
    bound = {
        (binding["kind"], binding["roleRef"]["name"])
        for binding in [*manifests.of_kind("ClusterRoleBinding"), *manifests.of_kind("RoleBinding")]
        if subject in binding["subjects"]
    }
    assert bound == {
        ("ClusterRoleBinding", "system:metrics-server"),
        ("ClusterRoleBinding", "system:auth-delegator"),
        ("RoleBinding", "extension-apiserver-authentication-reader"),
    }
    auth_reader = manifests.get("RoleBinding", "metrics-server-auth-reader")
    assert auth_reader["metadata"]["namespace"] == "kube-system"
    reads = manifests.get("ClusterRole", "system:metrics-server")["rules"]
    assert {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]} in reads
    viewer = manifests.get("ClusterRole", "system:aggregated-metrics-reader")
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert viewer["rules"] == [
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}
    ]


MINIKUBE_METRICS_SERVER_MIB = 200
"""What minikube's metrics-server addon requests (its own manifest, not ours: it is not in the rendered objects)."""
MINIKUBE_METRICS_RESOLUTION_SECONDS = 60
"""The addon's `--metric-resolution`: it scrapes the kubelets every 60 s, ours every 15 s."""
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"


def most_requested(manifests: Manifests) -> int:
    """The memory the pods request with payment at its HPA's maxReplicas, in MiB."""
    most = hpa(manifests)["spec"]["maxReplicas"]
    total = 0
    for workload in manifests.workloads():
        replicas = most if workload["metadata"]["name"] == "payment" else workload["spec"].get("replicas", 1)
        total += replicas * pod_memory_request(pod_spec(workload))
    return total // 2**20


@pytest.mark.skipif(not MONITORING_PRESENT, reason=MONITORING_MISSING)
def test_at_its_most_replicas_the_shop_still_fits_the_laptop(deployed: Deployed) -> None:
    """maxReplicas payment pods, metrics-server and monitoring together stay within the 2 GiB of memory requests
    every render keeps to (tests/k8s/test_contracts.py)."""
    total = most_requested(deployed(DeployTarget("kind", monitoring=True, autoscaling=True)))
    assert total * 2**20 <= LAPTOP_MEMORY_REQUESTS, f"memory requests {total} MiB at the HPA's maximum"


@pytest.mark.skipif(not MONITORING_PRESENT, reason=MONITORING_MISSING)
def test_the_guide_states_how_often_metrics_server_scrapes_on_each_cluster(deployed: Deployed) -> None:
    """minikube's addon scrapes every 60 s, four times less often than ours on kind: autoscaling reacts later."""
    (container,) = pod_spec(deployed(DeployTarget("kind", autoscaling=True)).get("Deployment", "metrics-server"))[
        "containers"
    ]
    (resolution,) = (arg.split("=")[1] for arg in container["args"] if arg.startswith("--metric-resolution="))
    guide = " ".join(GUIDE.read_text().split())
    assert f"scrapes every {resolution.removesuffix('s')} s on kind" in guide
    assert f"every {MINIKUBE_METRICS_RESOLUTION_SECONDS} s on minikube" in guide
