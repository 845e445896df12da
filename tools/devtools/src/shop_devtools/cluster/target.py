"""What a command aims at: the cluster (kind or minikube), the profile and the optional parts (a `Target`, which
names the overlay, the components and the kubectl context), and the names the shop has in that cluster: the
cluster's, the namespace, the image repository and the URLs on the host."""

from dataclasses import dataclass
from typing import Literal

from shop_devtools.topology import BY_NAME, SHOP_URL

Cluster = Literal["kind", "minikube"]
Profile = Literal["resilient", "fragile"]

CLUSTER_NAME = "resilient-shop"
"""The kind cluster's name and the minikube profile's."""
NAMESPACE = "shop"
IMAGE_REPOSITORY = "resilient-shop"
KIND_HOST_PORTS = {BY_NAME["storefront"].port: "storefront", 3000: "Grafana"}
"""The host ports kind publishes (k8s/kind/cluster.yaml): the storefront on its own port, as `make run` serves it."""
KIND_SHOP_URL = SHOP_URL
KIND_GRAFANA_URL = "http://localhost:3000"
STOREFRONT_NODE_PORT = 30080


@dataclass(frozen=True)
class Target:
    cluster: Cluster
    profile: Profile = "resilient"
    monitoring: bool = False
    autoscaling: bool = False

    @property
    def overlay(self) -> str:
        return self.cluster + ("-fragile" if self.profile == "fragile" else "") + ("-monitoring" * self.monitoring)

    @property
    def deployment(self) -> str:
        """The name of what gets applied: the overlay, plus the components no overlay has."""
        return self.overlay + ("-autoscaling" * self.autoscaling)

    @property
    def components(self) -> list[str]:
        """The components of k8s/components/ added to the overlay. minikube serves the metrics API with its own
        addon (`minikube_addon_argv`); kind has none, so it gets ours."""
        if not self.autoscaling:
            return []
        return ["autoscaling", *(["metrics-server"] if self.cluster == "kind" else [])]

    @property
    def context(self) -> str:
        return kube_context(self.cluster)


def kube_context(cluster: Cluster) -> str:
    return f"kind-{CLUSTER_NAME}" if cluster == "kind" else CLUSTER_NAME
