"""Which pod is Ready: the one rule of `make leak`, the drill and its watcher (the pod a fault goes to is the first
Ready one by name: `kube.Cluster.pick_ready_pod`), on pods as the Kubernetes API serves them (JSON, as `kubectl get
pods -o json` prints them). Apart from `kube`, so that reading a pod imports no Kubernetes client."""

from collections.abc import Iterable, Mapping
from typing import Any

Pod = Mapping[str, Any]


def is_ready(pod: Pod) -> bool:
    """Running, its Ready condition True, and not being deleted (a terminating pod may still say Ready)."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def ready_pods(pods: Iterable[Pod]) -> list[Pod]:
    """The Ready ones, by name."""
    return sorted((pod for pod in pods if is_ready(pod)), key=lambda pod: str(pod["metadata"]["name"]))
