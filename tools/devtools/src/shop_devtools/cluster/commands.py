"""What a command aims at (a `Target`: the cluster, kind or minikube, the profile and the optional parts, which name
the overlay, the components and the kubectl context), the names the shop has in that cluster (the cluster's, the
namespace, the ports kind publishes on the host), and the external commands run there, as argv lists: kind,
minikube, kubectl (always with an explicit context), docker and the image build. Building them runs nothing, so they
can be printed, tested and run alike. kubectl stays for what the user would type too (`apply -k` needs the kustomize
built into kubectl, `rollout status`, `get`); `leak` uses the Kubernetes client instead (`kube`)."""

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shop_devtools.images import DRILL, SERVICES
from shop_devtools.topology import BY_NAME

Cluster = Literal["kind", "minikube"]
Profile = Literal["resilient", "fragile"]

CLUSTER_NAME = "resilient-shop"
"""The kind cluster's name and the minikube profile's."""
NAMESPACE = "shop"
KIND_HOST_PORTS = {BY_NAME["storefront"].port: "storefront", 3000: "Grafana"}
"""The host ports kind publishes (k8s/kind/cluster.yaml): the storefront on its own port, as `make run` serves it."""
ROLLOUT_TIMEOUT = "300s"
MINIKUBE: dict[str, Any] = {"memory": 4096, "cpus": 2, "cni": "calico"}
"""What `minikube-up` starts its profile with (memory in MB): room for the shop at its largest, and Calico, as
minikube's default network plugin ignores NetworkPolicies, which the shop relies on."""


def kube_context(cluster: Cluster) -> str:
    return f"kind-{CLUSTER_NAME}" if cluster == "kind" else CLUSTER_NAME


@dataclass(frozen=True)
class Target:
    cluster: Cluster
    profile: Profile = "resilient"
    monitoring: bool = False
    autoscaling: bool = False
    scheduled_drill: bool = False

    @property
    def overlay(self) -> str:
        return self.cluster + ("-fragile" if self.profile == "fragile" else "") + ("-monitoring" * self.monitoring)

    @property
    def deployment(self) -> str:
        """The name of what gets applied: the overlay, plus the components no overlay has."""
        return self.overlay + ("-autoscaling" * self.autoscaling) + ("-scheduled-drill" * self.scheduled_drill)

    @property
    def components(self) -> list[str]:
        """The components of k8s/components/ added to the overlay. minikube serves the metrics API with its own
        addon (`minikube_addon_argv`); kind has none, so it gets ours. The scheduled drill comes last: it adds its
        alert rules to the monitoring component's."""
        autoscaling = ["autoscaling", *(["metrics-server"] if self.cluster == "kind" else [])] * self.autoscaling
        return autoscaling + ["scheduled-drill"] * self.scheduled_drill

    @property
    def images(self) -> list[str]:
        """What `python -m shop_devtools.images` is asked to build: every service (no name given), and the drill's
        image besides when the scheduled drill runs."""
        return [*SERVICES, DRILL] if self.scheduled_drill else []

    @property
    def context(self) -> str:
        return kube_context(self.cluster)


def kubectl(context: str, *args: str) -> list[str]:
    return ["kubectl", "--context", context, *args]


def kind_create_argv(config: Path) -> list[str]:
    return ["kind", "create", "cluster", "--name", CLUSTER_NAME, "--config", str(config), "--wait", "120s"]


def docker_save_argv(archive: Path, images: Sequence[str]) -> list[str]:
    return ["docker", "save", "--output", str(archive), *images]


def kind_load_argv(archive: Path) -> list[str]:
    """An archive `docker save` wrote, imported into the node: unlike `kind load docker-image`, which asks the
    Docker daemon, it works whatever Docker's image store (the images carry no attestation: `images.py`)."""
    return ["kind", "load", "image-archive", str(archive), "--name", CLUSTER_NAME]


def minikube_start_argv() -> list[str]:
    return ["minikube", "start", "--profile", CLUSTER_NAME, *(f"--{flag}={value}" for flag, value in MINIKUBE.items())]


def minikube_load_argv(image: str) -> list[str]:
    return ["minikube", "image", "load", "--profile", CLUSTER_NAME, image]


def minikube_addon_argv(addon: str) -> list[str]:
    return ["minikube", "addons", "enable", addon, "--profile", CLUSTER_NAME]


def minikube_service_argv() -> list[str]:
    return ["minikube", "service", "storefront", "--namespace", NAMESPACE, "--profile", CLUSTER_NAME, "--url"]


def build_images_argv(*names: str) -> list[str]:
    return [sys.executable, "-m", "shop_devtools.images", *names]


def list_images_argv(*names: str) -> list[str]:
    return [*build_images_argv(*names), "--list"]


def apply_argv(context: str, overlay_dir: Path) -> list[str]:
    return kubectl(context, "apply", "--kustomize", str(overlay_dir))


def workloads_argv(context: str) -> list[str]:
    return kubectl(context, "get", "statefulsets,deployments", "--namespace", NAMESPACE, "--output", "name")


def rollout_argv(context: str, workload: str) -> list[str]:
    """Returns once every replica of `workload` runs the applied template and is Ready (old ones gone)."""
    return kubectl(context, "rollout", "status", workload, "--namespace", NAMESPACE, f"--timeout={ROLLOUT_TIMEOUT}")


def status_argv(context: str) -> list[str]:
    return kubectl(context, "get", "statefulsets,replicasets,pods,services,pdb,hpa", "--namespace", NAMESPACE, "-owide")


def deployment_argv(context: str, name: str) -> list[str]:
    """The Deployment as JSON, or nothing when it does not exist."""
    return kubectl(context, "get", "deployment", name, "--namespace", NAMESPACE, "--ignore-not-found", "-ojson")


def set_last_applied_argv(context: str, path: Path) -> list[str]:
    return kubectl(context, "apply", "set-last-applied", "--filename", str(path))


def inspect_id_argv(ref: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{.Id}}", ref]


def down_argv(cluster: Cluster) -> list[str]:
    if cluster == "kind":
        return ["kind", "delete", "cluster", "--name", CLUSTER_NAME]
    return ["minikube", "delete", "--profile", CLUSTER_NAME]
