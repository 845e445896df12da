"""`--scheduled-drill` (`make kind-up MONITORING=1 SCHEDULED_DRILL=1`): k8s/components/scheduled-drill composed after
the overlay by `Shop.deployable`, as `make deploy` applies it, on both clusters and with the monitoring component it
requires. The objects validate; the Role allows exactly the API calls the drill makes from inside the cluster
(recorded against a fake API, from the in-cluster configuration on) and never exec, Secrets, a write or anything
cluster-wide; the network policies let the drill's pod reach the DNS, the API server, the storefront and the
Pushgateway and nothing else; the CronJob is a weekly, bounded, locked-down run of a valid drill whose secrets exist;
the alerts fire on a failed or a missing verdict; and the footprint with it is what the guide says."""

import asyncio
import ipaddress
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from kubernetes import client
from kubernetes.client import rest
from kubernetes.config import incluster_config, kube_config
from prometheus_client import CollectorRegistry

from shop_devtools.cluster import cli, kube
from shop_devtools.cluster.commands import Cluster
from shop_devtools.cluster.commands import Target as DeployTarget
from shop_devtools.cluster.runner import ClusterError, Runner
from shop_devtools.cluster.shop import Shop
from shop_devtools.credentials import OPERATOR
from shop_devtools.images import DRILL, SERVICES, image_name
from shop_devtools.workspace import project_version
from shop_load.core import stock
from shop_load.core.drill_args import (
    SALE_BROWSES_PER_SECOND,
    SALE_CHECKOUTS_PER_SECOND,
    DrillConfig,
    fault_body,
    parse_args,
)
from shop_load.drill import scheduled
from shop_load.generators import browse_counts
from shop_load.targets.choose import choose_target, find_operator
from shop_load.targets.cluster import ClusterTarget
from tests.k8s.conftest import K8S, REPO, Deployed
from tests.k8s.fake_api import payment_pods, storefront_pod
from tests.k8s.manifests import (
    Manifests,
    Object,
    Pod,
    allowed_pairs,
    container_env,
    matches,
    pod_memory_request,
    pods_of,
    total_memory_requests,
    validate_strictly,
)
from tests.k8s.test_contracts import LAPTOP_MEMORY_REQUESTS
from tests.monitoring.promql import metric_names
from tests.test_makefile import dry_run

COMPONENT = K8S / "components" / "scheduled-drill"
RULES = COMPONENT / "rules" / "failover-drill.yaml"
NAME = "failover-drill"
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CLUSTERS: tuple[Cluster, ...] = ("kind", "minikube")
WEEK_SECONDS = 7 * 24 * 3600
API_SERVER_PORTS = {443, 6443, 8443}
"""The `kubernetes` Service's port, and the API server's own on kind (6443) and on minikube (8443)."""
POD_NETWORK = ipaddress.IPv4Network("10.244.0.0/16")
"""Where kind and minikube (Calico, as `make minikube-up` starts it) give pods their addresses."""
READ_VERBS = {"get", "list", "watch"}


def with_the_drill(cluster: Cluster, *, autoscaling: bool = False) -> DeployTarget:
    return DeployTarget(cluster, monitoring=True, autoscaling=autoscaling, scheduled_drill=True)


TARGETS = [pytest.param(with_the_drill(cluster), id=cluster) for cluster in CLUSTERS]


def cronjob(manifests: Manifests) -> Object:
    return manifests.get("CronJob", NAME)


def drill_pod_spec(manifests: Manifests) -> Object:
    spec: Object = cronjob(manifests)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def drill_container(manifests: Manifests) -> Object:
    (container,) = drill_pod_spec(manifests)["containers"]
    return dict(container)


def drill_config(manifests: Manifests) -> DrillConfig:
    container = drill_container(manifests)
    assert container["command"] == ["shop-drill"]
    return parse_args(container["args"])


def drill_pod(manifests: Manifests) -> Pod:
    return Pod(NAME, cronjob(manifests)["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])


# --- rendering -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_it_renders_with_monitoring_on_both_clusters_and_every_object_validates_strictly(
    deployed: Deployed, target: DeployTarget, version: str, tmp_path: Path
) -> None:
    manifests = deployed(target)
    count, refusal = validate_strictly(manifests.objects, version, tmp_path)
    assert refusal == ""
    assert count == len(manifests.objects)
    assert {"CronJob", "Role", "RoleBinding", "ServiceAccount"} <= {obj["kind"] for obj in manifests.objects}
    assert all(obj["metadata"].get("namespace") == "shop" for obj in manifests.objects if obj["kind"] != "Namespace")


def test_it_goes_with_monitoring_only(k8s_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The cluster commands refuse it without `--monitoring`, before running anything; and kustomize cannot render
    it without the monitoring component's alert rules to add its own to."""
    with pytest.raises(ClusterError, match=r"--scheduled-drill needs --monitoring \(MONITORING=1\)"):
        Shop(k8s_copy.parent, Runner()).deployable(DeployTarget("kind", scheduled_drill=True))
    if shutil.which("kubectl") is not None:
        assert cli.run(["--dry-run", "deploy", "--scheduled-drill"]) == 1
        assert "--scheduled-drill needs --monitoring" in capsys.readouterr().err
    alone = k8s_copy / "drill-without-monitoring"
    alone.mkdir(exist_ok=True)
    kustomization = {"resources": ["../overlays/kind"], "components": ["../components/scheduled-drill"]}
    (alone / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(["kubectl", "kustomize", str(alone)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "prometheus-rules" in result.stderr


def test_one_switch_turns_it_on_and_builds_its_image(tmp_path: Path) -> None:
    for make_target in ("kind-up", "minikube-up", "deploy"):
        assert "--scheduled-drill" in dry_run(make_target, tmp_path, "SCHEDULED_DRILL=1").split(), make_target
        assert "--scheduled-drill" not in dry_run(make_target, tmp_path).split(), make_target
    target = with_the_drill("kind", autoscaling=True)
    assert target.components == ["autoscaling", "metrics-server", "scheduled-drill"], "after what it adds rules to"
    assert target.deployment == "kind-monitoring-autoscaling-scheduled-drill"
    assert target.images == [*SERVICES, DRILL]
    assert DeployTarget("kind", monitoring=True).images == [], "without it: the default build, the drill's left out"
    listed = subprocess.run(
        [sys.executable, "-m", "shop_devtools.images", "--list", *target.images],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert image_name(DRILL, project_version(REPO)) in listed
    default = subprocess.run(
        [sys.executable, "-m", "shop_devtools.images", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert image_name(DRILL, project_version(REPO)) not in default


# --- the Role ----------------------------------------------------------------------------------------------------


def added_objects(manifests: Manifests, without: Manifests) -> list[Object]:
    """The objects the component adds (a merged ConfigMap counts as changed: it gets a new hash)."""
    before = {(obj["kind"], obj["metadata"]["name"]) for obj in without.objects}
    return [obj for obj in manifests.objects if (obj["kind"], obj["metadata"]["name"]) not in before]


@pytest.mark.parametrize("target", TARGETS)
def test_its_role_grants_no_exec_no_secrets_no_write_and_nothing_cluster_wide(
    deployed: Deployed, target: DeployTarget
) -> None:
    manifests = deployed(target)
    plain = deployed(DeployTarget(target.cluster, monitoring=True))
    added = added_objects(manifests, plain)
    assert sorted((obj["kind"], re.sub(r"-[a-z0-9]{10}$", "", obj["metadata"]["name"])) for obj in added) == [
        ("ConfigMap", "prometheus-rules"),
        ("CronJob", NAME),
        ("NetworkPolicy", "failover-drill-egress"),
        ("NetworkPolicy", "pushgateway-from-failover-drill"),
        ("Role", NAME),
        ("RoleBinding", NAME),
        ("ServiceAccount", NAME),
    ]
    assert not manifests.of_kind("ClusterRole")
    assert not manifests.of_kind("ClusterRoleBinding")
    role = manifests.get("Role", NAME)
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
        assert not set(rule["resources"]) & {"secrets", "pods/exec", "pods/attach", "pods/ephemeralcontainers"}, rule
        writes = set(rule["verbs"]) - READ_VERBS
        assert not writes or (rule["resources"] == ["pods/portforward"] and writes == {"create"}), rule
    binding = manifests.get("RoleBinding", NAME)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": "shop"}]
    spec = drill_pod_spec(manifests)
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == (NAME, True)
    assert manifests.get("ServiceAccount", NAME)["automountServiceAccountToken"] is False


@dataclass(frozen=True)
class Call:
    """One request to the Kubernetes API, as its authorizer sees it."""

    verb: str
    group: str
    resource: str
    namespace: str
    name: str | None


def authorized_as(method: str, url: str) -> Call:
    """The verb, API group, resource (with its subresource) and namespace of a request URL, as RBAC reads them."""
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    group, rest = ("", segments[2:]) if segments[0] == "api" else (segments[1], segments[3:])
    assert rest[0] == "namespaces", f"a request outside any namespace: {method} {url}"
    namespace, resource, *tail = rest[1:]
    name = tail[0] if tail else None
    watch = parse_qs(parts.query).get("watch") == ["true"]
    verbs = {"GET": "watch" if watch else "get" if name else "list", "POST": "create", "PUT": "update"}
    verbs |= {"PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}
    return Call(verbs[method], group, "/".join([resource, *tail[1:]]), namespace, name)


class Answer:
    """What urllib3 hands the Kubernetes client: a status and a JSON body, or a watch's events line by line."""

    def __init__(self, status: int, body: Any, events: Sequence[Any] = ()) -> None:
        self.status, self.reason = status, "OK" if status < 300 else "Not Found"
        self.data = json.dumps(body).encode()
        self.headers = {"content-type": "application/json"}
        self.lines = [json.dumps(event).encode() + b"\n" for event in events]

    def stream(self, amt: int | None = None, decode_content: bool = False) -> Iterator[bytes]:
        yield from self.lines
        time.sleep(0.05)  # the watch window ends; the drill opens the next one, as after a real timeout

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


def serve_one_request(server: socket.socket) -> None:
    """A pod's port at the far end of a port-forward: reads one HTTP request, answers it (202 to the chaos calls, an
    empty 200 to GET /metrics) and closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += server.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    while length and len(body) < int(length.group(1)):
        body += server.recv(65536)
    status, text = (b"200 OK", b"") if head.startswith(b"GET /metrics") else (b"202 Accepted", b'{"detail": "ok"}')
    server.sendall(b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, len(text), text))
    server.close()


@dataclass
class Forward:
    """A port-forward as `kubernetes.stream.portforward` gives it: a socket per port."""

    def socket(self, port: int) -> socket.socket:
        ours, theirs = socket.socketpair()
        threading.Thread(target=serve_one_request, args=(theirs,), daemon=True).start()
        return ours

    def close(self) -> None:
        pass


STOREFRONT = "app.kubernetes.io/name=storefront"
HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "payment", "namespace": "shop"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "payment"}, "maxReplicas": 5},
    "status": {"currentReplicas": 3, "desiredReplicas": 3},
}


@dataclass
class RecordingApi:
    """The Kubernetes API behind the client's HTTP layer and its port-forward, as a pod of the cluster reaches it:
    every request recorded as the authorizer sees it, answered from tests/k8s/data's payment pods and a storefront
    pod."""

    calls: list[Call] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)

    def install(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> "RecordingApi":
        # In a pod: no kubeconfig, the service account's token and CA, the API's address in the environment.
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "no-kubeconfig"))
        for name, text in (("SERVICE_TOKEN_FILENAME", "token"), ("SERVICE_CERT_FILENAME", "ca")):
            (tmp_path / name).write_text(f"the service account's {text}")
            monkeypatch.setattr(incluster_config, name, str(tmp_path / name))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
        monkeypatch.setattr(client.Configuration, "_default", None)  # the in-cluster loader sets it; put back after
        monkeypatch.setattr(rest.RESTClientObject, "request", self._request)
        monkeypatch.setattr(kube, "portforward", self._portforward)
        monkeypatch.setattr(kube, "stream", self._exec)
        return self

    def _request(self, method: str, url: str, *args: Any, **kwargs: Any) -> rest.RESTResponse:
        call = authorized_as(method, url)
        self.calls.append(call)
        self.hosts.add(urlsplit(url).netloc)
        return rest.RESTResponse(self._answer(call, parse_qs(urlsplit(url).query)))

    def _answer(self, call: Call, query: dict[str, list[str]]) -> Answer:
        if call.resource == "horizontalpodautoscalers" and call.verb == "get":
            return Answer(200, HPA)
        items: list[Any] = []
        if call.resource == "pods":
            items = payment_pods() if query.get("labelSelector") != [STOREFRONT] else [storefront()]
        elif call.resource == "replicasets":
            items = [{"metadata": {"name": "payment-7d9c5b6f4", "resourceVersion": "7"}, "spec": {"replicas": 3}}]
        elif call.resource != "events":
            return Answer(404, {"kind": "Status", "code": 404})
        items = [as_served(item) for item in items]
        if call.verb == "watch":
            return Answer(200, {}, [{"type": "ADDED", "object": item} for item in items])
        return Answer(200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})

    def _portforward(self, api_method: Callable[..., Any], name: str, namespace: str, **_: Any) -> Forward:
        verb = "get" if api_method.__name__.startswith("connect_get_") else "create"  # a WebSocket upgrade of a GET
        self.calls.append(Call(verb, "", "pods/portforward", namespace, name))
        return Forward()

    def _exec(self, api_method: Callable[..., Any], name: str, namespace: str, **_: Any) -> Any:
        self.calls.append(Call("get", "", "pods/exec", namespace, name))
        raise AssertionError("the scheduled drill runs no command in a pod")


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def as_served(obj: dict[str, Any]) -> Any:
    """An object as the API server writes it: an unset field left out, never null, and a container status with its
    required image ID (the recording has neither)."""
    served = without_nulls(obj)
    for status in served.get("status", {}).get("containerStatuses", []):
        status.setdefault("imageID", "")
    return served


def storefront() -> dict[str, Any]:
    pod = storefront_pod()
    pod["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    pod["status"] = {"phase": "Running"}
    return pod


def allows(role: Object, call: Call) -> bool:
    return any(
        call.group in rule["apiGroups"]
        and call.resource in rule["resources"]
        and call.verb in rule["verbs"]
        and (not rule.get("resourceNames") or call.name in rule["resourceNames"])
        for rule in role["rules"]
    )


async def run_the_drills_cluster_side(options: DrillConfig) -> ClusterTarget:
    """What the drill does with the cluster, in its order: the target (the pod picked, the watches started), the
    operator's credential, a scrape of the storefront pods, the fault injected and cleared, the report's HPA line."""
    target = choose_target(options, time.monotonic)
    assert isinstance(target, ClusterTarget)
    find_operator(options, target)
    await browse_counts.cluster_scrape(target.cluster, options.storefront_selector)()
    async with httpx.AsyncClient() as control:
        await target.inject(control, options.fault, fault_body(options, target.mode))
        await asyncio.sleep(0.5)  # the watch threads list and watch meanwhile
        target.recovered()
        target.status()
        await target.finish(control)
    assert target.autoscaler() is not None
    target.stop()
    for thread in target.threads:
        thread.join(timeout=5)
    return target


async def test_the_role_allows_every_api_call_the_drill_makes_in_the_cluster_and_nothing_more(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The CronJob's drill, from the in-cluster configuration on (no kubeconfig), against a fake API that records
    each request as RBAC authorizes it: every request is one the Role allows, and every grant of the Role is used
    (`create` on pods/portforward is how Kubernetes 1.35 authorizes the same WebSocket port-forward)."""
    manifests = deployed(with_the_drill("kind"))
    env = container_env(drill_container(manifests), manifests)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    api = RecordingApi().install(monkeypatch, tmp_path)
    await run_the_drills_cluster_side(drill_config(manifests))

    assert api.hosts == {"10.96.0.1:443"}, "the in-cluster configuration: the API at the kubernetes Service"
    calls = set(api.calls)
    assert {call.namespace for call in calls} == {"shop"}
    role = manifests.get("Role", NAME)
    assert [call for call in calls if not allows(role, call)] == []
    used = {(call.group, call.resource, call.verb) for call in calls}
    assert ("", "pods/portforward", "get") in used, "the chaos call and the scrape go through a port-forward"
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == used | {("", "pods/portforward", "create")}
    named = {tuple(rule["resourceNames"]): rule["resources"] for rule in role["rules"] if rule.get("resourceNames")}
    assert named == {("payment",): ["horizontalpodautoscalers"]}
    assert {call.name for call in calls if call.resource == "horizontalpodautoscalers"} == {"payment"}
    assert not [call for call in calls if call.resource in {"secrets", "pods/exec"}], "its values come as variables"


# --- the CronJob -------------------------------------------------------------------------------------------------


def weekly(schedule: str) -> bool:
    """A cron schedule that runs once a week: a fixed minute, hour and day of the week, any day of any month."""
    minute, hour, day, month, weekday = schedule.split()
    return (
        minute.isdigit()
        and hour.isdigit()
        and (day, month) == ("*", "*")
        and re.fullmatch(r"[0-6]", weekday) is not None
    )


@pytest.mark.parametrize("target", TARGETS)
def test_the_cronjob_is_a_weekly_bounded_locked_down_run_of_the_drill_image(
    deployed: Deployed, target: DeployTarget
) -> None:
    manifests = deployed(target)
    spec = cronjob(manifests)["spec"]
    assert weekly(spec["schedule"]), spec["schedule"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 3
    assert 1 <= spec["failedJobsHistoryLimit"] <= 3
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    options = drill_config(manifests)
    longest = options.warmup + options.fault_seconds("kubernetes") + options.cooldown + options.retry_for
    longest += options.settle + 60  # start-up, the customers' registration, the checks, put-back, the report
    assert longest <= job["activeDeadlineSeconds"] <= 3 * longest
    pod = drill_pod_spec(manifests)
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = drill_container(manifests)
    assert container["image"] == image_name(DRILL, project_version(REPO))
    assert container["imagePullPolicy"] == "IfNotPresent"
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    (tmp,) = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
    assert "emptyDir" in {volume["name"]: volume for volume in pod["volumes"]}[tmp["name"]]
    assert options.out.is_relative_to("/tmp"), "the report is written where the filesystem is writable"


@pytest.mark.parametrize("target", TARGETS)
def test_its_arguments_are_a_leak_drill_on_a_modest_sale_against_this_shop(
    deployed: Deployed, target: DeployTarget
) -> None:
    manifests = deployed(target)
    options = drill_config(manifests)
    assert (options.kubernetes, options.fault, options.namespace) == (True, "leak", "shop")
    assert options.rate <= SALE_CHECKOUTS_PER_SECOND / 5
    assert options.browse_rate <= SALE_BROWSES_PER_SECOND / 5
    assert options.stop_below is not None
    assert 0.5 <= options.stop_below < 1
    assert options.put_back
    assert options.restock.strip().lower() in stock.OFF, "the sale's stock is the shop's own, put back exactly"
    for url, service in ((options.url, "storefront"), (options.pushgateway, "pushgateway")):
        assert url is not None
        address = urlsplit(url)
        (port,) = manifests.get("Service", service)["spec"]["ports"]
        assert (address.scheme, address.hostname, address.port) == ("http", f"{service}.shop.svc", port["port"])
    labels = {pod.name: pod.labels for pod in pods_of(manifests)}
    for selector, workload in ((options.selector, "payment"), (options.storefront_selector, "storefront")):
        key, value = selector.split("=")
        assert matches({"matchLabels": {key: value}}, labels[workload])


@pytest.mark.parametrize("target", TARGETS)
def test_the_secrets_it_reads_exist_and_hold_what_the_shop_checks(deployed: Deployed, target: DeployTarget) -> None:
    manifests = deployed(target)
    env = container_env(drill_container(manifests), manifests)  # every Secret and key it names is rendered
    assert set(env) == {"CHAOS_TOKEN", OPERATOR}
    payment = container_env(
        manifests.get("Deployment", "payment")["spec"]["template"]["spec"]["containers"][0], manifests
    )
    storefront_env = container_env(
        manifests.get("Deployment", "storefront")["spec"]["template"]["spec"]["containers"][0], manifests
    )
    assert env["CHAOS_TOKEN"] == payment["CHAOS_TOKEN"]
    assert env[OPERATOR] == storefront_env[OPERATOR]


# --- network policies ----------------------------------------------------------------------------------------------


def egress_allowed(policies: Sequence[Object], destination: Pod, port: int) -> bool:
    """Whether the egress `policies` (all selecting the source) let it open a TCP connection to a pod of the namespace:
    a podSelector peer matching it, or an ipBlock holding the pod network, on an allowed port."""
    for rule in (rule for policy in policies for rule in policy["spec"].get("egress", [])):
        peers = rule.get("to", [])
        reached = not peers or any(
            (
                "podSelector" in peer
                and "namespaceSelector" not in peer
                and matches(peer["podSelector"], destination.labels)
            )
            or ("ipBlock" in peer and POD_NETWORK.subnet_of(ipaddress.IPv4Network(peer["ipBlock"]["cidr"])))
            for peer in peers
        )
        ports = rule.get("ports", [])
        if reached and (not ports or any(p.get("protocol", "TCP") == "TCP" and p["port"] == port for p in ports)):
            return True
    return False


@pytest.mark.parametrize("target", TARGETS)
def test_its_pod_reaches_the_dns_the_api_the_storefront_and_the_pushgateway_only(
    deployed: Deployed, target: DeployTarget
) -> None:
    manifests = deployed(target)
    policies = manifests.of_kind("NetworkPolicy")
    drill, pods = drill_pod(manifests), pods_of(manifests)
    ports = {pod.name: pod.ports.get("http") for pod in pods}

    egress = [policy for policy in policies if "Egress" in policy["spec"]["policyTypes"]]
    assert egress
    assert all(matches(policy["spec"]["podSelector"], drill.labels) for policy in egress)
    assert not [pod.name for pod in pods if any(matches(p["spec"]["podSelector"], pod.labels) for p in egress)]
    reached = {(pod.name, port) for pod in pods for port in pod.ports.values() if egress_allowed(egress, pod, port)}
    goes = {("storefront", ports["storefront"]), ("pushgateway", ports["pushgateway"])}
    assert reached == goes, "egress: nowhere else in the namespace (payment is reached through the API's port-forward)"
    allowed = allowed_pairs(policies, [*pods, drill])
    assert goes <= {(to, port) for source, to, port in allowed if source == NAME}, "and admitted there"
    assert {source for source, to, _ in allowed if to == "pushgateway"} == {"prometheus", NAME}
    assert not [pair for pair in allowed if pair[1] == NAME], "nothing connects to the drill"
    rules = [rule for policy in egress for rule in policy["spec"]["egress"]]
    assert all(rule.get("to") and rule.get("ports") for rule in rules), "no rule opens every address or every port"
    (dns,) = [rule for rule in rules if any("namespaceSelector" in peer for peer in rule["to"])]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert sorted((p["port"], p["protocol"]) for p in dns["ports"]) == [(53, "TCP"), (53, "UDP")]
    (api,) = [rule for rule in rules if any("ipBlock" in peer for peer in rule["to"])]
    assert all(ipaddress.ip_network(peer["ipBlock"]["cidr"]).is_private for peer in api["to"])
    assert {(p["port"], p["protocol"]) for p in api["ports"]} == {(port, "TCP") for port in API_SERVER_PORTS}


# --- the alerts ----------------------------------------------------------------------------------------------------


def pushed_metric_names(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The metrics the drill pushes (`push_verdict`), caught on their way out."""
    pushed: list[CollectorRegistry] = []
    monkeypatch.setattr(scheduled, "push_to_gateway", lambda gateway, job, registry, timeout: pushed.append(registry))
    scheduled.push_verdict("http://pushgateway.invalid", 0)
    return {metric.name for metric in pushed[0].collect()}


def test_its_alerts_read_what_the_drill_pushes_and_wait_two_periods(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = deployed(with_the_drill("kind"))
    assert manifests.config("prometheus-rules")[RULES.name] == RULES.read_text(), "merged into Prometheus's rules"
    rules = {rule["alert"]: rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert set(rules) == {"FailoverDrillFailed", "FailoverDrillMissing"}
    pushed = pushed_metric_names(monkeypatch)
    for name, rule in rules.items():
        assert metric_names(rule["expr"]) <= pushed | {"process_start_time_seconds"}, name
        assert f'job="{scheduled.PUSH_JOB}"' in rule["expr"], name
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
    assert metric_names(rules["FailoverDrillFailed"]["expr"]) == {"shop_drill_last_success"}
    schedule = cronjob(manifests)["spec"]["schedule"]
    assert weekly(schedule)
    thresholds = {int(n) for n in re.findall(r">\s*(\d+)", rules["FailoverDrillMissing"]["expr"])}
    assert thresholds == {2 * WEEK_SECONDS}, "two periods of the weekly schedule"
    assert "absent(shop_drill_last_run_timestamp_seconds" in rules["FailoverDrillMissing"]["expr"]


def promtool_cases(rules: dict[str, Any]) -> dict[str, Any]:
    """`promtool test rules` cases: a failed verdict fires, a passing one does not; no verdict for two weeks fires,
    whether there was an old one or none since the Pushgateway started; a fresh Pushgateway waits."""

    def fires(name: str, quiet_at: str, firing_at: str) -> list[dict[str, Any]]:
        """Not yet at `quiet_at`, at `firing_at` with the rule's labels and the job's (absent() keeps the job)."""
        rule = rules[name]
        firing = [{"exp_labels": {**rule["labels"], "job": "failover-drill"}, "exp_annotations": rule["annotations"]}]
        return [
            {"eval_time": quiet_at, "alertname": name, "exp_alerts": []},
            {"eval_time": firing_at, "alertname": name, "exp_alerts": firing},
        ]

    job, started = 'job="failover-drill"', 'process_start_time_seconds{job="pushgateway"}'
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": f"shop_drill_last_success{{{job}}}", "values": "1x5 0x5"}],
                "alert_rule_test": fires("FailoverDrillFailed", "3m", "8m"),
            },
            {
                "interval": "1d",
                "input_series": [
                    {"series": f"shop_drill_last_run_timestamp_seconds{{{job}}}", "values": "0x20"},
                    {"series": started, "values": "0x20"},
                ],
                "alert_rule_test": fires("FailoverDrillMissing", "13d", "15d"),
            },
            {
                "interval": "1d",
                "input_series": [{"series": started, "values": "0x20"}],
                "alert_rule_test": fires("FailoverDrillMissing", "13d", "15d"),
            },
            {
                "interval": "1d",
                "input_series": [{"series": started, "values": f"{10 * 86400}x20"}],
                "alert_rule_test": [{"eval_time": "15d", "alertname": "FailoverDrillMissing", "exp_alerts": []}],
            },
        ],
    }


def test_the_alerts_fire_on_made_up_series_when_promtool_is_installed(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (no PyPI wheel ships it; Debian's `prometheus` package does)")
    rules = {rule["alert"]: rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    cases = tmp_path / "failover_drill_test.yaml"
    cases.write_text(yaml.safe_dump(promtool_cases(rules)))
    for command in (["check", "rules", str(RULES)], ["test", "rules", str(cases)]):
        result = subprocess.run([promtool, *command], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


# --- the footprint -------------------------------------------------------------------------------------------------


def drill_request_mib(manifests: Manifests) -> int:
    return pod_memory_request(drill_pod_spec(manifests)) // 2**20


@pytest.mark.parametrize("target", TARGETS)
def test_with_its_pod_running_the_shop_still_fits_the_laptop_at_its_usual_size(
    deployed: Deployed, target: DeployTarget
) -> None:
    manifests = deployed(target)
    total = total_memory_requests(manifests) + pod_memory_request(drill_pod_spec(manifests))
    assert total <= LAPTOP_MEMORY_REQUESTS, f"memory requests {total / 2**20:.0f} MiB with the drill's pod"
