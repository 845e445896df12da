"""shop_devtools.cluster.kube, the one Kubernetes client (`make leak` and the drill), without a cluster: the pod's port
and chaos token, the transport to a pod's chaos endpoint, the autoscaler, the rollout and the database faults,
and deciding that there is no cluster to use."""

import asyncio
import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from shop_devtools.chaos import Chaos, ChaosRefused
from shop_devtools.cluster import kube
from tests.load.conftest import load_recording


def recorded_pod() -> dict[str, Any]:
    pod: dict[str, Any] = load_recording("payment_leak_oomkilled.json")["events"][0]["object"]
    return pod


def cluster() -> kube.Cluster:
    return kube.Cluster(client.ApiClient(client.Configuration()), "shop")


def test_the_http_port_is_read_from_the_pod_spec() -> None:
    assert cluster().http_port(recorded_pod()) == 8083


def test_the_chaos_token_comes_from_the_secret_the_pod_refers_to(monkeypatch: pytest.MonkeyPatch) -> None:
    target = cluster()
    asked: list[tuple[str, str]] = []

    def read_secret(name: str, namespace: str, **_: Any) -> SimpleNamespace:
        asked.append((name, namespace))
        return SimpleNamespace(data={"CHAOS_TOKEN": base64.b64encode(b"s3cret-token").decode()})

    monkeypatch.setattr(target.core, "read_namespaced_secret", read_secret)
    assert target.chaos_token(recorded_pod()) == "s3cret-token"
    assert asked == [("shop-chaos", "shop")]


def test_the_operators_credential_is_the_one_the_storefront_pods_get_from_the_credentials_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = cluster()
    listed: list[str] = []
    asked: list[tuple[str, str]] = []
    storefront = {
        "metadata": {"name": "storefront-7d9f-abcde"},
        "spec": {
            "containers": [
                {
                    "name": "storefront",
                    "env": [
                        {
                            "name": "CHAOS_TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "chaos-5f8", "key": "CHAOS_TOKEN"}},
                        },
                        {
                            "name": "OPERATOR_CREDENTIAL",
                            "valueFrom": {
                                "secretKeyRef": {"name": "credentials-hcg9bcch5d", "key": "OPERATOR_CREDENTIAL"}
                            },
                        },
                    ],
                }
            ]
        },
    }

    def list_pods(namespace: str, label_selector: str = "", **_: Any) -> SimpleNamespace:
        listed.append(label_selector)
        return SimpleNamespace(items=[storefront] if label_selector == "app.kubernetes.io/name=storefront" else [])

    def read_secret(name: str, namespace: str, **_: Any) -> SimpleNamespace:
        asked.append((name, namespace))
        return SimpleNamespace(data={"OPERATOR_CREDENTIAL": base64.b64encode(b"new,old").decode()})

    monkeypatch.setattr(target.core, "list_namespaced_pod", list_pods)
    monkeypatch.setattr(target.core, "read_namespaced_secret", read_secret)
    monkeypatch.setattr(target.api, "sanitize_for_serialization", lambda model: model)
    assert target.operator_credential() == "new,old"
    assert asked == [("credentials-hcg9bcch5d", "shop")], "the Secret by the generated name the pod refers to"
    assert target.operator_credential("app.kubernetes.io/name=nothing") is None
    assert listed == ["app.kubernetes.io/name=storefront", "app.kubernetes.io/name=nothing"]


def test_a_literal_chaos_token_needs_no_secret() -> None:
    pod = recorded_pod()
    pod["spec"]["containers"][0]["env"] = [{"name": "CHAOS_TOKEN", "value": "literal"}]
    assert cluster().chaos_token(pod) == "literal"


def test_no_kubeconfig_and_no_service_account_means_no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert kube.connect() is None


HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "payment", "namespace": "shop"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "payment"},
        "minReplicas": 3,
        "maxReplicas": 5,
    },
    "status": {"currentReplicas": 4, "desiredReplicas": 5},
}


def test_the_payment_autoscaler_is_read_from_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    target = cluster()
    asked: list[tuple[str, str]] = []

    def read_hpa(name: str, namespace: str, **_: Any) -> dict[str, Any]:
        asked.append((name, namespace))
        return HPA

    monkeypatch.setattr(target.autoscaling, "read_namespaced_horizontal_pod_autoscaler", read_hpa)
    assert target.autoscaler() == kube.Autoscaler(
        "payment", current_replicas=4, desired_replicas=5, min_replicas=3, max_replicas=5
    )
    assert asked == [("payment", "shop")]


def test_no_autoscaler_deployed_is_none_and_other_errors_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    target = cluster()
    status = 404

    def read_hpa(name: str, namespace: str, **_: Any) -> dict[str, Any]:
        raise client.exceptions.ApiException(status=status)

    monkeypatch.setattr(target.autoscaling, "read_namespaced_horizontal_pod_autoscaler", read_hpa)
    assert target.autoscaler() is None
    status = 403
    with pytest.raises(client.exceptions.ApiException):
        target.autoscaler()


def test_a_new_autoscaler_without_status_and_min_replicas_reads_as_the_api_defaults() -> None:
    fresh = {"metadata": {"name": "payment"}, "spec": {"maxReplicas": 5}}
    assert kube.autoscaler_of(fresh) == kube.Autoscaler("payment", 0, 0, 1, 5)


def test_the_rollout_fault_is_what_kubectl_rollout_restart_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    target = cluster()
    sent: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        target.apps,
        "patch_namespaced_deployment",
        lambda name, namespace, body, **_: sent.append((name, namespace, body)),
    )
    target.rollout_restart("payment")
    [(name, namespace, body)] = sent
    assert (name, namespace) == ("payment", "shop")
    annotations = body["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == ["kubectl.kubernetes.io/restartedAt"]  # a new template: every pod is replaced


def test_the_transport_carries_the_chaos_request_to_the_pod_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    target = cluster()
    sent: list[tuple[Any, ...]] = []

    def request(pod: str, port: int, method: str, path: str, **options: Any) -> tuple[int, str]:
        sent.append((pod, port, method, path, options["body"], options["headers"]))
        return 202, "{}"

    monkeypatch.setattr(target, "request", request)
    chaos = Chaos(target.transport("payment-1", 8083), "s3cret-token", "pod payment-1")
    assert asyncio.run(chaos.inject("hang", {"seconds": 5.0})) == "POST /chaos/hang {'seconds': 5.0}"
    assert sent == [("payment-1", 8083, "POST", "/chaos/hang", {"seconds": 5.0}, {"X-Chaos-Token": "s3cret-token"})]


def test_a_pod_the_port_forward_cannot_reach_is_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    target = cluster()

    def request(*_: Any, **__: Any) -> tuple[int, str]:
        raise client.exceptions.ApiException(status=404, reason="pods payment-1 not found")

    monkeypatch.setattr(target, "request", request)
    chaos = Chaos(target.transport("payment-1", 8083), "t", "pod payment-1")
    with pytest.raises(ChaosRefused, match=r"pod payment-1 does not answer through an API port-forward: \(404\)"):
        asyncio.run(chaos.clear())


def test_the_apis_own_errors_become_one_cluster_error_naming_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    from shop_devtools.cluster import ClusterError

    target = kube.Cluster(client.ApiClient(client.Configuration()), "shop", context="kind-resilient-shop")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise client.exceptions.ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(target.core, "list_namespaced_pod", refuse)
    monkeypatch.setattr(target.core, "read_namespaced_secret", refuse)
    with pytest.raises(ClusterError, match=r"the Kubernetes API of context kind-resilient-shop refused: \(403\)"):
        target.pick_ready_pod()
    pod = recorded_pod()
    with pytest.raises(ClusterError, match=r"refused: \(403\)"):
        target.chaos_token(pod)
