"""The drill's Kubernetes side that needs no cluster: finding the pod's port and chaos token, and deciding that
there is no cluster to use."""

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from shop_load import kube
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


def test_a_literal_chaos_token_needs_no_secret() -> None:
    pod = recorded_pod()
    pod["spec"]["containers"][0]["env"] = [{"name": "CHAOS_TOKEN", "value": "literal"}]
    assert cluster().chaos_token(pod) == "literal"


def test_no_kubeconfig_and_no_service_account_means_no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert kube.connect() is None
