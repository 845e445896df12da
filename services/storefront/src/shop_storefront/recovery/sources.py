"""Where the replicas are, and what the orchestrator knows of them that the replicas cannot say themselves.

- `RunState`: `make run`'s launcher publishes every process it started, its restarts and why, in `run.json`.
- `Cluster`: on Kubernetes, the pods of the shop and their Events, read with the storefront's ServiceAccount token
  (mounted only by the `recovery-view` component, whose Role allows pods get/list and events list in `shop`).
- `Addresses`: anywhere else (compose, or a cluster without that component), the replicas behind the upstream
  URLs, found by resolving their names (compose's DNS answers with every replica); restarts are then seen only as
  a process with a new start time, and their reason is the engine's, which the page cannot read.
"""

import asyncio
import json
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

SHOP_SERVICES = ("storefront", "catalog", "users", "payment", "postgres")
SELECTOR = "app.kubernetes.io/part-of=resilient-shop"
NAME_LABEL = "app.kubernetes.io/name"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMELINE_REASONS = frozenset({"Unhealthy", "Killing", "Started", "BackOff", "Evicted", "OOMKilling"})
"""The pod Events that belong on the timeline: probes failing, containers killed and started, back-off."""


@dataclass(frozen=True)
class Listed:
    """One replica as its source lists it."""

    name: str
    service: str
    url: str | None
    """Where its probes and `/metrics` answer; None for what is not one of the shop's HTTP services (PostgreSQL)."""
    restarts: int | None = None
    """None: this source cannot count them (then a new process start time counts as one)."""
    last_reason: str = ""
    ready: bool | None = None
    """Readiness as the orchestrator last probed it; None: only the replica's own `/ready` tells."""
    limit_bytes: int | None = None
    state: str = ""
    """What the orchestrator says beyond ready: `terminating`, `pending`, `waiting: CrashLoopBackOff`."""


@dataclass(frozen=True)
class ClusterEvent:
    key: str
    at: float
    replica: str
    kind: str
    detail: str


@dataclass(frozen=True)
class Listing:
    replicas: list[Listed]
    events: list[ClusterEvent] = field(default_factory=list)
    blind_spot: str | None = None
    """What the page cannot see from here, said on the page."""


class Source(Protocol):
    target: str

    async def listing(self) -> Listing: ...


@dataclass
class RunState:
    """`make run`: the launcher's `run.json`, named to the storefront by `STOREFRONT_RECOVERY_RUN_STATE`."""

    path: Path
    target: str = "make run"

    async def listing(self) -> Listing:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            processes: list[dict[str, Any]] = raw["processes"]
            replicas = [
                Listed(
                    str(process["name"]),
                    str(process["service"]),
                    str(process["url"]),
                    restarts=int(process.get("restarts", 0)),
                    last_reason=str(process.get("last_reason", "")),
                )
                for process in processes
            ]
        except (OSError, ValueError, KeyError, TypeError):
            return Listing([], blind_spot=f"make run's state ({self.path.name}) cannot be read yet.")
        return Listing(replicas)


@dataclass
class Addresses:
    """The replicas behind each upstream URL, one per address its name resolves to."""

    urls: Mapping[str, Sequence[str]]
    blind_spot: str | None = None
    target: str = "compose"

    async def listing(self) -> Listing:
        resolved = await asyncio.gather(*(self._replicas(service, urls) for service, urls in self.urls.items()))
        return Listing([replica for replicas in resolved for replica in replicas], blind_spot=self.blind_spot)

    async def _replicas(self, service: str, urls: Sequence[str]) -> list[Listed]:
        replicas: list[Listed] = []
        for index, url in enumerate(urls, start=1):
            parts = urlsplit(url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            try:
                found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError:
                found = []
            addresses = sorted({str(info[4][0]) for info in found})
            name = service if len(urls) == 1 else f"{service}-{index}"
            if len(addresses) <= 1:
                replicas.append(Listed(name, service, url.rstrip("/")))
                continue
            for address in addresses:
                shown = f"[{address}]" if ":" in address else address
                replicas.append(Listed(f"{name}@{address}", service, f"{parts.scheme}://{shown}:{port}"))
        return replicas


def memory_quantity(text: str | None) -> int | None:
    """A Kubernetes memory quantity (`256Mi`, `1G`, `134217728`) in bytes; None when absent or unreadable."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?|k)?", (text or "").strip())
    if match is None:
        return None
    number, suffix = float(match[1]), match[2] or ""
    powers = "KMGT"
    if suffix.lower() == "k":
        suffix = "K" + suffix[1:]
    if not suffix:
        return int(number)
    base = 1024 if suffix.endswith("i") else 1000
    return int(number * base ** (powers.index(suffix[0]) + 1))


def _timestamp(text: str | None) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() if text else None
    except ValueError:
        return None


def _pod_replica(pod: Mapping[str, Any], killed_for_liveness: set[str]) -> Listed | None:
    metadata, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    service = metadata.get("labels", {}).get(NAME_LABEL)
    if service not in SHOP_SERVICES:
        return None
    name = str(metadata.get("name", "?"))
    containers = spec.get("containers", [])
    container = next((c for c in containers if c.get("name") == service), containers[0] if containers else {})
    port = next((p.get("containerPort") for p in container.get("ports", []) if p.get("name") == "http"), None)
    ip = status.get("podIP")
    url = f"http://{ip}:{port}" if ip and port and service != "postgres" else None
    statuses = [s for s in status.get("containerStatuses", []) if s.get("name") == container.get("name")]
    current = statuses[0] if statuses else {}
    terminated = current.get("lastState", {}).get("terminated") or {}
    reason = ""
    if terminated:
        code = terminated.get("exitCode")
        if terminated.get("reason") == "OOMKilled":
            reason = "OOM killed"
        elif name in killed_for_liveness:
            reason = "failed liveness"
        else:
            reason = f"exited with code {code}"
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions", [])}
    waiting = (current.get("state", {}).get("waiting") or {}).get("reason")
    state = "terminating" if metadata.get("deletionTimestamp") else f"waiting: {waiting}" if waiting else ""
    state = state or ("pending" if status.get("phase") == "Pending" else "")
    return Listed(
        name,
        service,
        url,
        restarts=int(current.get("restartCount", 0)),
        last_reason=reason,
        ready=conditions.get("Ready") == "True",
        limit_bytes=memory_quantity(container.get("resources", {}).get("limits", {}).get("memory")),
        state=state,
    )


def _event(raw: Mapping[str, Any]) -> ClusterEvent | None:
    if raw.get("reason") not in TIMELINE_REASONS:
        return None
    at = _timestamp(raw.get("lastTimestamp") or raw.get("eventTime") or raw.get("firstTimestamp"))
    pod = str(raw.get("involvedObject", {}).get("name", "?"))
    uid = raw.get("metadata", {}).get("uid", "")
    message = str(raw.get("message", ""))[:300]
    return ClusterEvent(f"{uid}/{raw.get('count', 1)}", at or time.time(), pod, str(raw["reason"]), message)


@dataclass
class Cluster:
    """Kubernetes, through its API with the storefront's ServiceAccount token."""

    api: str
    client: httpx.AsyncClient
    account_dir: Path = SERVICE_ACCOUNT_DIR
    target: str = "kubernetes"

    async def listing(self) -> Listing:
        namespace = (self.account_dir / "namespace").read_text(encoding="utf-8").strip() or "shop"
        headers = {"Authorization": f"Bearer {(self.account_dir / 'token').read_text(encoding='utf-8').strip()}"}
        base = f"{self.api.rstrip('/')}/api/v1/namespaces/{namespace}"
        try:
            pods, events = await asyncio.gather(
                self.client.get(f"{base}/pods", params={"labelSelector": SELECTOR}, headers=headers),
                self.client.get(f"{base}/events", params={"fieldSelector": "involvedObject.kind=Pod"}, headers=headers),
            )
        except httpx.HTTPError as exc:
            return Listing([], blind_spot=f"The Kubernetes API did not answer ({type(exc).__name__}).")
        if pods.status_code != 200:
            why = "the recovery-view Role is missing" if pods.status_code == 403 else f"status {pods.status_code}"
            return Listing([], blind_spot=f"The Kubernetes API refused to list the pods: {why}.")
        raw_events = events.json().get("items", []) if events.status_code == 200 else []
        cluster_events = sorted(filter(None, map(_event, raw_events)), key=lambda event: event.at)
        killed = {e.replica for e in cluster_events if e.kind == "Killing" and "liveness" in e.detail.lower()}
        replicas = [replica for pod in pods.json().get("items", []) if (replica := _pod_replica(pod, killed))]
        blind = None if events.status_code == 200 else f"Events cannot be listed (status {events.status_code})."
        return Listing(sorted(replicas, key=lambda r: r.name), cluster_events, blind)


def choose(
    *,
    run_state: Path | None,
    kubernetes_api: str | None,
    account_dir: Path,
    urls: Mapping[str, Sequence[str]],
    client: httpx.AsyncClient,
) -> Source:
    """The cluster when this pod has a ServiceAccount token, make run's state when the launcher named it, and
    otherwise the addresses behind the upstream URLs."""
    if kubernetes_api and (account_dir / "token").exists():
        return Cluster(kubernetes_api, client, account_dir)
    if run_state is not None:
        return RunState(run_state)
    if kubernetes_api:
        blind = (
            "This storefront has no ServiceAccount token, so the page sees only what the services answer (one address"
            " per Service, no pods, restarts or Events): deploy the recovery-view component."
        )
        return Addresses(urls, blind, target="kubernetes")
    return Addresses(urls)
