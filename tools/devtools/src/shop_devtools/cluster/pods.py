"""Which payment pod `leak` picks: the Ready ones (running, Ready, not being deleted) of `kubectl get pods -o json`
output, the first by name."""

from collections.abc import Mapping
from typing import Any

from shop_devtools.cluster.errors import ClusterError
from shop_devtools.cluster.target import NAMESPACE


def is_ready(pod: Mapping[str, Any]) -> bool:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    status = pod.get("status", {})
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))


def ready_pod_names(pod_list: Mapping[str, Any]) -> list[str]:
    return sorted(pod["metadata"]["name"] for pod in pod_list.get("items", []) if is_ready(pod))


def pick_ready_pod(pod_list: Mapping[str, Any]) -> str:
    """Exactly one Ready pod of `kubectl get pods -o json` output: the first by name."""
    ready = ready_pod_names(pod_list)
    if not ready:
        total = len(pod_list.get("items", []))
        raise ClusterError(f"no Ready payment pod ({total} payment pods in namespace {NAMESPACE}); see `make status`")
    return ready[0]
