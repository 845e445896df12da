"""Reading rendered manifests: objects by kind and name, pod templates, label selectors, and NetworkPolicy
evaluation on pod labels (what a CNI would allow, for the pods the manifests would run)."""

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shop_devtools.quantities import memory_bytes
from shop_devtools.topology import DATABASES, SERVICES

Object = dict[str, Any]

SHOP_SERVICES = tuple(service.name for service in SERVICES)
DATABASE_SERVICES = tuple(service.name for service in DATABASES)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


@dataclass(frozen=True)
class Manifests:
    objects: list[Object]

    def of_kind(self, kind: str) -> list[Object]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> Object:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {obj["metadata"]["name"] for obj in self.of_kind(kind)}

    def workloads(self) -> list[Object]:
        return [obj for obj in self.objects if obj["kind"] in WORKLOAD_KINDS]

    def shop_deployment(self, service: str) -> Object:
        return self.get("Deployment", service)

    def config(self, name_prefix: str) -> dict[str, str]:
        """Data of the one ConfigMap generated as `name_prefix` (kustomize appends a hash)."""
        data: dict[str, str] = generated(self.of_kind("ConfigMap"), name_prefix)["data"]
        return data


def generated(objects: Sequence[Object], name_prefix: str) -> Object:
    pattern = re.compile(re.escape(name_prefix) + r"(-[a-z0-9]{10})?")
    found = [obj for obj in objects if pattern.fullmatch(obj["metadata"]["name"])]
    assert len(found) == 1, f"expected one object generated as {name_prefix}, found {len(found)}"
    return found[0]


def pod_spec(workload: Object) -> Object:
    spec: Object = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Object) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


def containers(workload: Object, *, init: bool = True) -> list[Object]:
    spec = pod_spec(workload)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def is_shop_image(image: str) -> bool:
    return image.startswith("resilient-shop/")


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """A Kubernetes LabelSelector (matchLabels + matchExpressions); None labels (outside the cluster) never match."""
    if labels is None:
        return False
    if selector is None:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def pod_memory_request(spec: Object) -> int:
    """What the scheduler reserves for a pod: the larger of its containers' sum and its largest init container."""

    def request(container: Object) -> int:
        return memory_bytes(container.get("resources", {}).get("requests", {}).get("memory", "0"))

    main = sum(request(container) for container in spec["containers"])
    init = max((request(container) for container in spec.get("initContainers", [])), default=0)
    return max(main, init)


PROBE_DEFAULTS = {"periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 1}


def probe_window(probe: Object) -> int:
    """The most seconds from the moment a pod turns sick to the kubelet's decision on a probe: the next look comes
    within one period and may take its timeout, and `failureThreshold` failing looks a period apart decide, so
    period * failureThreshold + timeout (Kubernetes' defaults: 10 s, 3, 1 s). For liveness this is the liveness
    window the docs state, from crossing the memory budget to the kill decision; the drain comes after it."""
    period, failures, timeout = (int(probe.get(field, default)) for field, default in PROBE_DEFAULTS.items())
    return period * failures + timeout


def total_memory_requests(manifests: Manifests) -> int:
    total = 0
    for workload in manifests.workloads():
        replicas = workload["spec"].get("replicas", 1) if workload["kind"] != "Job" else 1
        total += replicas * pod_memory_request(pod_spec(workload))
    return total


def container_env(container: Object, manifests: Manifests) -> dict[str, str]:
    """The environment a container gets, resolved from the rendered ConfigMaps and Secrets (envFrom first, then
    env, as the kubelet does)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if ref := source.get("configMapRef"):
            env |= manifests.get("ConfigMap", ref["name"]).get("data", {})
        if ref := source.get("secretRef"):
            data = manifests.get("Secret", ref["name"]).get("data", {})
            env |= {key: base64.b64decode(value).decode() for key, value in data.items()}
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif ref := variable.get("valueFrom", {}).get("secretKeyRef"):
            env[variable["name"]] = base64.b64decode(manifests.get("Secret", ref["name"])["data"][ref["key"]]).decode()
        elif ref := variable.get("valueFrom", {}).get("configMapKeyRef"):
            env[variable["name"]] = manifests.get("ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            raise AssertionError(f"unsupported env source in {container['name']}: {variable}")
    return env


# --- NetworkPolicy evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """A pod as the policies see it: its labels (None for a client outside the cluster) and named ports."""

    name: str
    labels: Mapping[str, str] | None
    ports: Mapping[str, int] = field(default_factory=dict)


OUTSIDE = Pod("outside", None)


def pods_of(manifests: Manifests) -> list[Pod]:
    pods = []
    for workload in manifests.workloads():
        ports = {
            port.get("name", str(port["containerPort"])): port["containerPort"]
            for container in containers(workload, init=False)
            for port in container.get("ports", [])
        }
        pods.append(Pod(workload["metadata"]["name"], pod_labels(workload), ports))
    return pods


def _port_allowed(rule_ports: list[Object] | None, destination: Pod, port: int) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        value = rule_port.get("port")
        if rule_port.get("protocol", "TCP") != "TCP":
            continue
        if value is None:
            return True
        number: int | None = destination.ports.get(value) if isinstance(value, str) else value
        if number is None:
            continue
        end: int = rule_port.get("endPort") or number
        if number <= port <= end:
            return True
    return False


def _peer_allowed(peers: list[Object] | None, source: Pod) -> bool:
    if not peers:
        return True
    for peer in peers:
        assert "namespaceSelector" not in peer, "cross-namespace peers are not modelled by this test"
        if "ipBlock" in peer and source.labels is None:
            return True
        if "podSelector" in peer and matches(peer["podSelector"], source.labels):
            return True
    return False


def ingress_allowed(policies: Sequence[Object], source: Pod, destination: Pod, port: int) -> bool:
    """Whether `source` may open a TCP connection to `destination`'s `port` (both in the policies' namespace)."""
    selecting = [
        policy
        for policy in policies
        if "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
        and matches(policy["spec"]["podSelector"], destination.labels)  # {} selects every pod
    ]
    if not selecting:
        return True
    return any(
        _peer_allowed(rule.get("from"), source) and _port_allowed(rule.get("ports"), destination, port)
        for policy in selecting
        for rule in policy["spec"].get("ingress", [])
    )


def allowed_pairs(policies: Sequence[Object], pods: Sequence[Pod]) -> set[tuple[str, str, int]]:
    """Every (source, destination, port) the policies allow among `pods` and a client outside the cluster."""
    return {
        (source.name, destination.name, port)
        for destination in pods
        for port in sorted(set(destination.ports.values()))
        for source in [*pods, OUTSIDE]
        if source is not destination and ingress_allowed(policies, source, destination, port)
    }


def iter_kustomize_scripts(manifests: Manifests) -> Iterator[tuple[str, str, str]]:
    """(workload/container, shell, script) of every `sh -c` / `bash -c` command in the pod templates."""
    for workload in manifests.workloads():
        for container in containers(workload):
            command = [*container.get("command", []), *container.get("args", [])]
            if len(command) >= 3 and command[0] in {"sh", "bash"} and command[1] == "-c":
                yield f"{workload['metadata']['name']}/{container['name']}", command[0], command[2]


def validate_strictly(objects: Sequence[Object], version: str, workdir: Path) -> tuple[int, str]:
    """`kubernetes-validate --strict` of the distinct objects against one Kubernetes version: how many there were,
    and what the validator said when it refused any (empty when every one is valid)."""
    unique = {json.dumps(obj, sort_keys=True): obj for obj in objects}
    path = workdir / f"objects-{version}.yaml"
    path.write_text(yaml.safe_dump_all(unique.values(), sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return len(unique), "" if result.returncode == 0 else f"{result.stdout}{result.stderr}" or "refused"
