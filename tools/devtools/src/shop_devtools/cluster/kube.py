"""The shop's one Kubernetes client for what runs against a live cluster (`make leak` and the drill): the API
through the official client, never `kubectl` text. (`make kind-up`, `deploy` and `status` stay `kubectl`, the tool
the user types too: `apply -k` needs the kustomize built into it.)

- Finds the payment pods (`app.kubernetes.io/name=payment` in namespace `shop`) and picks exactly one Ready pod
  (Ready as `shop_devtools.cluster.pods` reads it).
- Gives a transport to that pod's chaos endpoint (`transport`, for `shop_devtools.chaos.Chaos`) through an API
  port-forward (the client's `portforward`); the token is `CHAOS_TOKEN` or, failing that, what the pod's
  `CHAOS_TOKEN` variable holds (a literal or a Secret's key).
- Reads the operator's credential (`operator_credential`) as the storefront's pods get it: their
  `OPERATOR_CREDENTIAL` variable, from the `credentials` Secret (by the generated name the pod refers to).
- Watches pods, their Events and the ReplicaSets with `watch.Watch().stream(...)` in background threads; every
  notification goes, with its time of arrival, to a sink (the drill's, which feeds its pure
  `PodWatcher`).
- The database faults: crashes PostgreSQL in its pod through the API's exec (`crash_postgres`), or deletes the pod
  with its own grace period (`delete_pod`), never a force delete.
- Reads payment's HorizontalPodAutoscaler (autoscaling/v2), when the cluster has one (`make kind-up
  AUTOSCALING=1`), for the replica count the report shows.
"""

import asyncio
import base64
import contextlib
import http.client
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Event, Thread
from typing import Any

from kubernetes import client, config, watch
from kubernetes.stream import portforward, stream

from shop_devtools.chaos import ChaosRefused, Send
from shop_devtools.cluster.commands import NAMESPACE
from shop_devtools.cluster.pods import Pod, ready_pods
from shop_devtools.cluster.runner import ClusterError
from shop_devtools.credentials import OPERATOR

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
WATCH_WINDOW_SECONDS = 30
"""Each watch call ends after this and is started again (from the last resource version) until the drill stops."""

Sink = Callable[[str, str, Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Autoscaler:
    """What a HorizontalPodAutoscaler says of its Deployment: the replicas it has and wants, within its bounds."""

    name: str
    current_replicas: int
    desired_replicas: int
    min_replicas: int
    max_replicas: int


def autoscaler_of(hpa: Mapping[str, Any]) -> Autoscaler:
    """From an autoscaling/v2 HorizontalPodAutoscaler as the API serves it (a status not yet written counts 0)."""
    spec, status = hpa["spec"], hpa.get("status") or {}
    return Autoscaler(
        name=hpa["metadata"]["name"],
        current_replicas=int(status.get("currentReplicas") or 0),
        desired_replicas=int(status.get("desiredReplicas") or 0),
        min_replicas=int(spec.get("minReplicas") or 1),  # the API's default
        max_replicas=int(spec["maxReplicas"]),
    )


def connect(context: str | None = None) -> Any | None:
    """An API client from the kubeconfig (KUBECONFIG or ~/.kube/config) or the in-cluster config; None if there
    is neither."""
    try:
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
    except (config.ConfigException, FileNotFoundError, TypeError):
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            return None
    return client.ApiClient()


@dataclass
class Cluster:
    """The payment pods (`selector`) of one namespace, and what the drill does to them and their Deployment."""

    api: Any
    namespace: str = NAMESPACE
    selector: str = "app.kubernetes.io/name=payment"
    container: str | None = None
    context: str | None = None
    """The kubeconfig context `api` was made from, named in errors."""

    def __post_init__(self) -> None:
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)

    def _raw(self, model: Any) -> dict[str, Any]:
        return dict(self.api.sanitize_for_serialization(model))

    def reachable(self) -> bool:
        """The API answers and the namespace has payment pods."""
        try:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector, _request_timeout=5)
        except Exception:  # any failure (no server, no auth, no namespace) means: no cluster here
            return False
        return bool(pods.items)

    @contextlib.contextmanager
    def _refusals(self) -> Iterator[None]:
        """The client's own errors (ApiException, urllib3's), which carry the reason, as one `ClusterError`."""
        try:
            yield
        except Exception as exc:
            where = f" of context {self.context}" if self.context else ""
            raise ClusterError(f"the Kubernetes API{where} refused: {exc}") from None

    def pods(self, selector: str) -> list[dict[str, Any]]:
        """The namespace's pods matching `selector`: the payment pods (`self.selector`), the storefront's (for their
        /metrics), the database's."""
        with self._refusals():
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector, _request_timeout=10)
        return [self._raw(pod) for pod in pods.items]

    def pick_ready_pod(self, among: Iterable[Pod] | None = None) -> dict[str, Any]:
        """The payment pod a fault goes to: exactly one Ready pod of `among` (default: the payment pods listed now),
        the first by name, the same each time."""
        pods = self.pods(self.selector) if among is None else list(among)
        if not (ready := ready_pods(pods)):
            where = f"{self.selector} in namespace {self.namespace}"
            raise ClusterError(f"no Ready pod among the {len(pods)} matching {where}; see `make status`")
        return dict(ready[0])

    def autoscaler(self, name: str = "payment") -> Autoscaler | None:
        """The namespace's HorizontalPodAutoscaler `name`; None when there is none (autoscaling is not deployed)."""
        try:
            hpa = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(name, self.namespace, _request_timeout=10)
        except client.exceptions.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return autoscaler_of(self._raw(hpa))

    def _container(self, pod: Mapping[str, Any]) -> Mapping[str, Any]:
        containers = pod["spec"]["containers"]
        named = [c for c in containers if c["name"] == self.container] if self.container else containers
        if not named:
            raise ClusterError(f"pod {pod['metadata']['name']} has no container {self.container}")
        return dict(named[0])

    def http_port(self, pod: Mapping[str, Any]) -> int:
        ports = self._container(pod).get("ports") or []
        named = [p for p in ports if p.get("name") == "http"] or ports
        if not named:
            raise ClusterError(f"pod {pod['metadata']['name']} declares no container port")
        return int(named[0]["containerPort"])

    def chaos_token(self, pod: Mapping[str, Any]) -> str | None:
        """CHAOS_TOKEN as the pod's container gets it: a literal value or a Secret key reference."""
        return self._env_value(self._container(pod), "CHAOS_TOKEN")

    def operator_credential(self, selector: str = "app.kubernetes.io/name=storefront") -> str | None:
        """OPERATOR_CREDENTIAL as the storefront's pods (`selector`) get it, which is what their `/ops/` asks for:
        from the `credentials` Secret, whose generated name (`credentials-<hash>`) the pods refer to. None when no
        pod has one."""
        containers = (container for pod in self.pods(selector) for container in pod["spec"]["containers"])
        return next(filter(None, (self._env_value(container, OPERATOR) for container in containers)), None)

    def _env_value(self, container: Mapping[str, Any], name: str) -> str | None:
        """The variable `name` as `container` gets it: a literal value, a Secret key reference, or a Secret it
        takes whole (`envFrom`)."""
        for variable in [variable for variable in container.get("env") or [] if variable.get("name") == name]:
            if variable.get("value"):
                return str(variable["value"])
            if ref := (variable.get("valueFrom") or {}).get("secretKeyRef"):
                return self._secret_value(ref["name"], ref["key"])
        for source in container.get("envFrom") or []:
            if (ref := source.get("secretRef")) and (value := self._secret_value(ref["name"], name)):
                return value
        return None

    def _secret_value(self, name: str, key: str) -> str | None:
        """One key of a Secret of the namespace, decoded; None when the Secret has no such key."""
        with self._refusals():
            secret = self.core.read_namespaced_secret(name, self.namespace, _request_timeout=10)
        encoded = (secret.data or {}).get(key)
        return base64.b64decode(encoded).decode() if encoded else None

    def request(
        self,
        pod: str,
        port: int,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, str]:
        """One HTTP request to the pod itself (not its Service) through an API port-forward."""
        forward = portforward(self.core.connect_get_namespaced_pod_portforward, pod, self.namespace, ports=str(port))
        connection = http.client.HTTPConnection(pod, port, timeout=timeout)
        connection.sock = forward.socket(port)
        connection.sock.settimeout(timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            all_headers = {"Content-Type": "application/json", "Connection": "close", **(headers or {})}
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()
            forward.close()

    def transport(self, pod: str, port: int) -> Send:
        """The chaos requests' transport to `pod` itself: `request` in a thread; any failure is a `ChaosRefused`."""

        async def send(
            method: str, path: str, body: Mapping[str, Any] | None, headers: Mapping[str, str]
        ) -> tuple[int, str]:
            try:
                return await asyncio.to_thread(self.request, pod, port, method, path, body=body, headers=headers)
            except Exception as exc:  # the API's, the websocket's and the socket's own errors alike
                raise ChaosRefused(f"pod {pod} does not answer through an API port-forward: {exc}") from None

        return send

    def rollout_restart(self, deployment: str) -> None:
        """What `kubectl rollout restart` does: a new pod-template annotation, so the Deployment rolls every pod."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        self.apps.patch_namespaced_deployment(deployment, self.namespace, patch, _request_timeout=10)

    def replicasets(self) -> set[str]:
        """The ReplicaSets of the payment pods that run any (their desired count above 0)."""
        sets = self.apps.list_namespaced_replica_set(self.namespace, label_selector=self.selector, _request_timeout=10)
        raw = [self._raw(rs) for rs in sets.items]
        return {str(rs["metadata"]["name"]) for rs in raw if int(rs["spec"].get("replicas") or 0) > 0}

    def delete_pod(self, name: str) -> None:
        """Deletes the pod as `kubectl delete pod` does, with its own grace period (preStop, SIGTERM, SIGKILL only
        after its terminationGracePeriodSeconds): a StatefulSet starts its successor on the same volume once it is
        gone, never beside it."""
        with self._refusals():
            self.core.delete_namespaced_pod(name, self.namespace, _request_timeout=10)

    def crash_postgres(self, pod: Mapping[str, Any], container: str = "postgres") -> str:
        """Crashes PostgreSQL in `pod`: `pg_ctl stop -m immediate` on the data directory its `container`'s PGDATA
        names, run there through the API's exec. The server stops as in a crash (no checkpoint: its next start
        recovers from the WAL) and its container's main process ends, so the kubelet starts the container again, in
        the same pod. Returns the command."""
        name = pod["metadata"]["name"]
        data = self._env_value(next(c for c in pod["spec"]["containers"] if c["name"] == container), "PGDATA")
        command = ["pg_ctl", "stop", "-m", "immediate", "--no-wait", "-D", data or "/var/lib/postgresql/data"]
        call = {"container": container, "command": command, "stdout": True, "stderr": True, "_preload_content": False}
        with self._refusals():
            session = stream(self.core.connect_get_namespaced_pod_exec, name, self.namespace, **call)
            session.run_forever(timeout=30)
            code, output = session.returncode, session.read_all()
        if code:
            raise ClusterError(f"{' '.join(command)} in pod {name} failed (exit code {code}): {output.strip()}")
        return " ".join(command)

    def watch(self, sink: Sink, stop: Event, also: str | None = None) -> list[Thread]:
        """Starts a watch thread each for the payment pods, the namespace's pod Events and the ReplicaSets (and the
        pods matching the selector `also`: the database's, for its fault)."""
        streams: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
            ("Pod", self.core.list_namespaced_pod, {"label_selector": self.selector}),
            ("Event", self.core.list_namespaced_event, {"field_selector": "involvedObject.kind=Pod"}),
            ("ReplicaSet", self.apps.list_namespaced_replica_set, {"label_selector": self.selector}),
        ]
        if also:
            streams.append(("Pod", self.core.list_namespaced_pod, {"label_selector": also}))
        threads = []
        for n, (kind, lister, query) in enumerate(streams):
            name = f"watch-{kind}-{n}"
            threads.append(Thread(target=self._follow, args=(kind, lister, query, sink, stop), name=name, daemon=True))
            threads[-1].start()
        return threads

    def _follow(self, kind: str, lister: Callable[..., Any], query: dict[str, Any], sink: Sink, stop: Event) -> None:
        """Lists then watches, again and again in windows, until `stop`; a watch that expired (410) lists anew. (The
        client raises an error event, the 410 included, as an `ApiException`: every event that arrives is an
        object's.)"""
        version: str | None = None  # the resource version seen last; None: list first
        window = {"timeout_seconds": WATCH_WINDOW_SECONDS, "_request_timeout": WATCH_WINDOW_SECONDS + 5}
        while not stop.is_set():
            watcher = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in watcher.stream(lister, self.namespace, resource_version=version, **window, **query):  # type: ignore[no-untyped-call]
                    raw = event["raw_object"]
                    version = raw.get("metadata", {}).get("resourceVersion") or version
                    sink(kind, event["type"], raw)
                    if stop.is_set():
                        watcher.stop()  # type: ignore[no-untyped-call]
                        break
            except Exception as exc:  # the API's errors and a dropped connection: watch again after a pause
                if isinstance(exc, client.exceptions.ApiException) and exc.status == 410:
                    version = None  # too old: list again (objects seen before are already the baseline)
                else:
                    time.sleep(1)
