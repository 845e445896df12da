"""Which pod is Ready, and which one a fault goes to: the one rule of `make leak`, the drill and its watcher, on
pods as the Kubernetes API serves them (JSON, as `kubectl get pods -o json` prints them)."""

from collections.abc import Iterable, Mapping
from typing import Any

from shop_devtools.cluster.errors import ClusterError

Pod = Mapping[str, Any]


def is_ready(pod: Pod) -> bool:
    """Running, its Ready condition True, and not being deleted (a terminating pod may still say Ready)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def ready_pods(pods: Iterable[Pod]) -> list[Pod]:
    """The Ready ones, by name."""
    return sorted((pod for pod in pods if is_ready(pod)), key=lambda pod: str(pod["metadata"]["name"]))


def pick_ready_pod(pods: Iterable[Pod], *, selector: str, namespace: str) -> Pod:
    """Exactly one Ready pod of `pods` (those matching `selector` in `namespace`): the first by name, the same each
    time."""
    pods = list(pods)
    ready = ready_pods(pods)
    if not ready:
        raise ClusterError(
            f"no Ready pod among the {len(pods)} matching {selector} in namespace {namespace}; see `make status`"
        )
    return ready[0]
