"""A stand-in for the Kubernetes API behind `shop_devtools.cluster.kube` (no cluster runs here): the payment pods of
tests/k8s/data/payment-pods.json, the `chaos` Secret their `CHAOS_TOKEN` refers to, a storefront pod whose
`OPERATOR_CREDENTIAL` comes from the generated `credentials` Secret, and the pods' chaos endpoints reached through
a port-forward, every request recorded. Installed on the client's classes, so `make leak` and the
drill go through their own code from `kube.connect` on."""

import base64
import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from shop_devtools.cluster import kube

SECRET_TOKEN = "token-from-the-secret"
OPERATOR_CREDENTIAL = "operator-credential-from-the-secret"
CREDENTIALS_SECRET = "credentials-hcg9bcch5d"
"""The `credentials` Secret by its generated name, as the storefront's pods refer to it."""
PAYMENT_PORT = 8083
STOREFRONT_SELECTOR = "app.kubernetes.io/name=storefront"


def storefront_pod() -> dict[str, Any]:
    ref = {"secretKeyRef": {"name": CREDENTIALS_SECRET, "key": "OPERATOR_CREDENTIAL"}}
    container = {"name": "storefront", "env": [{"name": "OPERATOR_CREDENTIAL", "valueFrom": ref}]}
    return {"metadata": {"name": "storefront-5d8c9b7f4-x2k9p"}, "spec": {"containers": [container]}}


def payment_pods() -> list[dict[str, Any]]:
    """The recorded payment pods (two Ready, one Ready but being deleted, one unready, one pending), each with the
    payment container's port and `CHAOS_TOKEN` from the `chaos` Secret, as the manifests give them."""
    pods: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "payment-pods.json").read_text())["items"]
    for pod in pods:
        container = pod["spec"]["containers"][0]
        container["ports"] = [{"name": "http", "containerPort": PAYMENT_PORT}]
        secret = {"secretKeyRef": {"name": "chaos", "key": "CHAOS_TOKEN"}}
        container["env"] = [
            {"name": "SHOP_ENVIRONMENT", "value": "production"},
            {"name": "CHAOS_TOKEN", "valueFrom": secret},
        ]
    return pods


@dataclass(frozen=True)
class Sent:
    """One request to a pod's own port, as the port-forward carried it."""

    pod: str
    port: int
    method: str
    path: str
    body: Mapping[str, Any] | None
    headers: Mapping[str, str]


@dataclass
class FakeApi:
    pods: list[dict[str, Any]] = field(default_factory=payment_pods)
    status: int = 202
    """What each pod's chaos endpoint answers."""
    contexts: list[str | None] = field(default_factory=list)
    listed: list[tuple[str, str]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeApi":
        fake = self

        def connect(context: str | None = None) -> client.ApiClient:
            fake.contexts.append(context)
            return client.ApiClient(client.Configuration())

        def list_pods(api: client.CoreV1Api, namespace: str, label_selector: str = "", **_: Any) -> SimpleNamespace:
            fake.listed.append((namespace, label_selector))
            if label_selector == STOREFRONT_SELECTOR:
                return SimpleNamespace(items=[storefront_pod()])
            return SimpleNamespace(items=copy.deepcopy(fake.pods))

        def read_secret(api: client.CoreV1Api, name: str, namespace: str, **_: Any) -> SimpleNamespace:
            secrets = {
                "chaos": {"CHAOS_TOKEN": SECRET_TOKEN},
                CREDENTIALS_SECRET: {"OPERATOR_CREDENTIAL": OPERATOR_CREDENTIAL},
            }
            assert namespace == "shop"
            assert name in secrets, name
            return SimpleNamespace(
                data={key: base64.b64encode(value.encode()).decode() for key, value in secrets[name].items()}
            )

        def request(
            cluster: kube.Cluster, pod: str, port: int, method: str, path: str, **options: Any
        ) -> tuple[int, str]:
            fake.sent.append(Sent(pod, port, method, path, options.get("body"), dict(options.get("headers") or {})))
            return fake.status, json.dumps({"detail": "answered by the fake pod"})

        monkeypatch.setattr(kube, "connect", connect)
        monkeypatch.setattr(client.CoreV1Api, "list_namespaced_pod", list_pods)
        monkeypatch.setattr(client.CoreV1Api, "read_namespaced_secret", read_secret)
        monkeypatch.setattr(kube.Cluster, "request", request)
        return self
