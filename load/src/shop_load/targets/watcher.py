"""Pod, Event and ReplicaSet watch events → the drill's timeline. Pure: no client, no clock, no I/O.

The input is what the Kubernetes API sends on a watch (`{"type": "ADDED"|"MODIFIED"|"DELETED", "object": {...}}`,
the object as JSON, as `kubectl get -o json` prints it), plus the drill's own time of arrival. The kubernetes
client's `watch.stream` hands that JSON over as `raw_object`, so the watcher sees exactly what a recording shows
and tests can replay recordings of real objects.

What becomes a mark on the timeline:
- a pod ceasing to be Ready (`unready`: the Service stops sending it traffic) and Ready again after that
  (`ready_again`), Ready as `make leak` and the drill's pick read it (`shop_devtools.cluster.pods.is_ready`);
- a container's termination, from `state.terminated` or `lastState.terminated`: `oom_killed` when the reason is
  `OOMKilled` (the kernel killed it at its memory limit, exit code 137), `terminated` otherwise;
- a container's `restartCount` growing (`restarted`);
- kubelet Events on those pods: `Unhealthy` with "Liveness probe failed" (`liveness_failed`), "Readiness probe
  failed" (`readiness_failed`), `Killing` (`killing`: the kubelet kills the container, e.g. "failed liveness
  probe, will be restarted"), `BackOff` (`backoff`).
ReplicaSets give samples of desired / ready / available replicas instead of marks.

Objects seen first are the baseline (no mark for a restart or an event that happened before the drill).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shop_devtools.cluster.pods import is_ready
from shop_load.core.records import Mark, ReplicaSetSample

PROBE_FAILURES = {
    "Liveness probe failed": "liveness_failed",
    "Readiness probe failed": "readiness_failed",
    "Startup probe failed": "startup_failed",
}


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    current: Any = obj
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


@dataclass
class ContainerSeen:
    restart_count: int
    terminations: set[str] = field(default_factory=set)


@dataclass
class PodSeen:
    ready: bool
    containers: dict[str, ContainerSeen] = field(default_factory=dict)
    was_unready: bool = False
    deleted: bool = False
    restarts: int = 0
    """Container restarts seen since the fault was injected (`PodWatcher.arm`), or during the drill before."""


def _termination_key(container: str, terminated: Mapping[str, Any]) -> str:
    stamps = (terminated.get(key) for key in ("startedAt", "finishedAt", "exitCode"))
    return str(terminated.get("containerID") or ":".join(map(str, (container, *stamps))))


def _terminations(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = (_get(status, where, "terminated") for where in ("state", "lastState"))
    return [terminated for terminated in found if isinstance(terminated, Mapping)]


@dataclass
class PodWatcher:
    """Folds watch events into marks. `not_before`: Events older than this (the initial list replays the
    namespace's history) are ignored. `container`: only this container's restarts count (all when None)."""

    not_before: datetime | None = None
    container: str | None = None
    pods: dict[str, PodSeen] = field(default_factory=dict)
    replicasets: dict[str, ReplicaSetSample] = field(default_factory=dict)
    samples: list[ReplicaSetSample] = field(default_factory=list)
    _events_seen: set[tuple[str, int]] = field(default_factory=set)

    @property
    def restarts(self) -> int:
        return sum(pod.restarts for pod in self.pods.values())

    def apply(self, t: float, kind: str, event_type: str, obj: Mapping[str, Any]) -> list[Mark]:
        if event_type in {"ERROR", "BOOKMARK"}:
            return []
        if kind == "Pod":
            return self._pod(t, event_type, obj)
        if kind == "Event":
            return self._event(t, obj)
        if kind == "ReplicaSet":
            self._replicaset(t, event_type, obj)
        return []

    def _pod(self, t: float, event_type: str, pod: Mapping[str, Any]) -> list[Mark]:
        name, ready = str(_get(pod, "metadata", "name")), is_ready(pod)
        statuses = _get(pod, "status", "containerStatuses") or []
        baseline = name not in self.pods  # nothing that happened before the drill is a mark
        seen = self.pods.setdefault(name, PodSeen(ready=ready))
        marks: list[Mark] = []
        if event_type == "DELETED":
            marks.append(Mark(t, "deleted", name, "pod deleted"))
            seen.deleted, ready = True, False
        for status in (s for s in statuses if self.container in (None, s.get("name"))):
            container = status["name"]
            before = seen.containers.setdefault(container, ContainerSeen(int(status.get("restartCount", 0))))
            for terminated in _terminations(status):
                if (key := _termination_key(container, terminated)) in before.terminations:
                    continue
                before.terminations.add(key)
                reason = str(terminated.get("reason") or "Unknown")
                detail = f"{container}: {reason}, exit code {terminated.get('exitCode')}"
                marks.append(Mark(t, "oom_killed" if reason == "OOMKilled" else "terminated", name, detail))
            if (count := int(status.get("restartCount", 0))) > before.restart_count:
                seen.restarts += count - before.restart_count
                marks.append(Mark(t, "restarted", name, f"{container}: restartCount {before.restart_count} → {count}"))
                before.restart_count = count
        if seen.ready and not ready:
            seen.was_unready = True
            marks.append(Mark(t, "unready", name, "Ready condition False"))
        elif ready and not seen.ready:
            marks.append(Mark(t, "ready_again", name, "Ready condition True"))
        seen.ready = ready
        return [] if baseline else marks

    def _event(self, t: float, event: Mapping[str, Any]) -> list[Mark]:
        involved = _get(event, "involvedObject") or {}
        pod = involved.get("name")
        if involved.get("kind") != "Pod" or pod not in self.pods:
            return []
        stamps = (("lastTimestamp",), ("eventTime",), ("series", "lastObservedTime"), ("metadata", "creationTimestamp"))
        when = next(filter(None, (parse_time(_get(event, *path)) for path in stamps)), None)  # the first one set
        if self.not_before is not None and when is not None and when < self.not_before:
            return []
        uid = _get(event, "metadata", "uid") or _get(event, "metadata", "name")
        identity = (str(uid), int(event.get("count") or 1))
        if identity in self._events_seen:
            return []
        self._events_seen.add(identity)
        reason, message = str(event.get("reason") or ""), str(event.get("message") or "")
        if reason == "Unhealthy":
            kind = next((k for prefix, k in PROBE_FAILURES.items() if message.startswith(prefix)), "unhealthy")
        elif reason in {"Killing", "BackOff"}:
            kind = reason.lower()
        else:
            return []
        return [Mark(t, kind, pod, message[:200])]

    def _replicaset(self, t: float, event_type: str, rs: Mapping[str, Any]) -> None:
        name = str(_get(rs, "metadata", "name"))
        desired = 0 if event_type == "DELETED" else int(_get(rs, "spec", "replicas") or 0)
        ready, available = (int(_get(rs, "status", key) or 0) for key in ("readyReplicas", "availableReplicas"))
        sample = ReplicaSetSample(t, name, desired, ready, available)
        if (previous := self.replicasets.get(name)) is None or replace(previous, t=t) != sample:
            self.samples.append(sample)  # a change, not the same counts again
        self.replicasets[name] = sample

    def arm(self) -> None:
        """The fault is injected now: what the pods went through before (a readiness flap or a restart in the
        warm-up) is not its effect, for `came_back`, `recovered` and `restarts`. Their marks stay on the timeline."""
        for pod in self.pods.values():
            pod.was_unready, pod.restarts = False, 0

    def replicas_ready(self) -> bool:
        """Every ReplicaSet that should run pods runs them all Ready."""
        active = [rs for rs in self.replicasets.values() if rs.desired > 0]
        return bool(active) and all(rs.ready >= rs.desired for rs in active)

    def active_replicasets(self) -> set[str]:
        return {rs.name for rs in self.replicasets.values() if rs.desired > 0}

    def rolled_out(self, before: set[str]) -> bool:
        """A rollout that began while `before` were the ReplicaSets running pods is done: only newer ones run pods,
        every one of them Ready."""
        active = self.active_replicasets()
        return bool(active) and not active & before and self.replicas_ready()

    def came_back(self, name: str) -> bool:
        """The pod went away (deleted, unready or restarted) and is Ready again: a StatefulSet's pod keeps its name."""
        pod = self.pods.get(name)
        return pod is not None and (pod.deleted or pod.was_unready or pod.restarts > 0) and pod.ready

    def recovered(self, target: str) -> bool:
        """The faulted pod went through its restart (or away) and the ReplicaSets are whole again."""
        if (pod := self.pods.get(target)) is None:
            return False
        if pod.deleted:  # replaced by a new pod: recovered once the ReplicaSet is whole again
            return self.replicas_ready()
        return (pod.restarts > 0 or pod.was_unready) and pod.ready and self.replicas_ready()
