"""The recovery page's access to the Kubernetes API (k8s/components/recovery-view), in every overlay and in every
deployment `python -m shop_devtools.cluster deploy` accepts: the storefront may make the page's calls and nothing
more, no other identity gets the grant, only the storefront's pod mounts a token for it, and the component changes
nothing else in the shop.

`recovery_view_rules(overlay)` gives the Role's rules as an overlay renders them, for a test that checks every call
the storefront's code makes against them."""

import copy
import functools
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shop_devtools.cluster.commands import Cluster, Profile
from shop_devtools.cluster.commands import Target as DeployTarget
from shop_devtools.cluster.generated_secrets import generate_secrets
from shop_devtools.cluster.runner import ClusterError, Runner
from shop_devtools.cluster.shop import Shop
from tests.k8s.conftest import DEMO, K8S, REPO, Deployed, Render, Target, kustomize
from tests.k8s.manifests import SHOP_SERVICES, Manifests, Object, ingress_allowed, matches, pods_of

NAME = "recovery-view"
COMPONENT = K8S / "components" / NAME
NAMESPACE = "shop"
SERVICE_ACCOUNT = {"kind": "ServiceAccount", "name": "storefront", "namespace": NAMESPACE}
STOREFRONT_CALLS = (
    ("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app.kubernetes.io/part-of=resilient-shop"),
    ("GET", f"/api/v1/namespaces/{NAMESPACE}/events?fieldSelector=involvedObject.kind=Pod"),
)
"""What the page asks the API, once a second while it is open."""
GRANTS = {("", "pods", "list"), ("", "events", "list")}
"""(API group, resource, verb) the Role may grant: the page's two lists, and a pod read by its name."""
BROAD_SUBJECTS = {("Group", "system:serviceaccounts"), ("Group", f"system:serviceaccounts:{NAMESPACE}")}
"""Groups the storefront's ServiceAccount belongs to: a binding to one of them would grant it too."""


# --- what the helper and the tests read --------------------------------------------------------------------


@functools.cache
def _overlay(overlay: str) -> Manifests:
    """An overlay rendered from a copy of k8s/ with fresh secrets, as `conftest.k8s_copy` does, for callers that
    have no fixtures (the copy is removed once rendered)."""
    with tempfile.TemporaryDirectory(prefix="recovery-view-") as directory:
        k8s = Path(directory) / "k8s"
        shutil.copytree(K8S, k8s, ignore=shutil.ignore_patterns("generated"))
        generate_secrets(k8s / "base" / "generated")
        return Manifests(kustomize(k8s / "overlays" / overlay))


def recovery_view_rules(overlay: str = "kind") -> list[dict[str, Any]]:
    """The rules of the Role `recovery-view` as `overlay` (a directory of k8s/overlays/) renders them."""
    rules: list[dict[str, Any]] = _overlay(overlay).get("Role", NAME)["rules"]
    return rules


def authorizes(rules: list[Object], method: str, url: str) -> bool:
    """Whether a namespaced Role's rules allow a read of the core API, as RBAC would decide it: a GET of a
    collection is `list` (`watch` with `?watch=true`), of a named object `get`."""
    split = urlsplit(url)
    parts, query = split.path.strip("/").split("/"), split.query
    if method != "GET" or parts[:4] != ["api", "v1", "namespaces", NAMESPACE] or len(parts) not in {5, 6}:
        return False
    resource, name = parts[4], (parts[5] if len(parts) == 6 else None)
    verb = "get" if name else ("watch" if "watch=true" in query.split("&") else "list")
    return any(
        {"", "*"} & set(rule.get("apiGroups", []))
        and {resource, "*"} & set(rule.get("resources", []))
        and {verb, "*"} & set(rule.get("verbs", []))
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for rule in rules
    )


def grants(rules: list[Object]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def pod_templates(manifests: Manifests) -> Iterator[tuple[str, str, Object]]:
    """(kind/name, namespace, pod spec) of every pod template: the workloads' and the CronJobs' (through their Job
    template)."""
    for workload in manifests.workloads():
        where, namespace = f"{workload['kind']}/{workload['metadata']['name']}", workload["metadata"]["namespace"]
        yield where, namespace, workload["spec"]["template"]["spec"]
    for cron in manifests.of_kind("CronJob"):
        where, namespace = f"CronJob/{cron['metadata']['name']}", cron["metadata"]["namespace"]
        yield where, namespace, cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def grants_storefront(binding: Object) -> bool:
    return any(
        {key: subject.get(key) for key in SERVICE_ACCOUNT} == SERVICE_ACCOUNT
        or (subject["kind"], subject["name"]) in BROAD_SUBJECTS
        for subject in binding.get("subjects", [])
    )


def bound_service_accounts(manifests: Manifests) -> set[tuple[str, str]]:
    """(namespace, name) of every ServiceAccount some RoleBinding or ClusterRoleBinding grants something."""
    return {
        (subject.get("namespace", binding["metadata"].get("namespace", "")), subject["name"])
        for binding in [*manifests.of_kind("RoleBinding"), *manifests.of_kind("ClusterRoleBinding")]
        for subject in binding.get("subjects", [])
        if subject["kind"] == "ServiceAccount"
    }


def deploy_targets() -> list[DeployTarget]:
    """Every combination of the flags that `deploy` (so `make kind-up` / `make minikube-up`) accepts."""
    shop, targets = Shop(REPO, Runner()), []
    clusters: tuple[Cluster, ...] = ("kind", "minikube")
    profiles: tuple[Profile, ...] = ("resilient", "fragile")
    flags = (False, True)
    for cluster, profile, monitoring, autoscaling, drill in itertools.product(clusters, profiles, flags, flags, flags):
        target = DeployTarget(cluster, profile, monitoring, autoscaling, drill)
        try:
            shop.overlay_dir(target)
        except ClusterError:
            continue
        targets.append(target)
    return targets


DEPLOYS = [pytest.param(target, id=target.deployment) for target in deploy_targets()]


@pytest.fixture(scope="module")
def without_component(k8s_copy: Path) -> Render:
    """Each overlay rendered as it would be without this component: a copy of overlays/ beside the original (the
    same depth, so its relative paths still reach base/ and components/) with the component taken out of every
    kustomization that lists it."""
    copy = k8s_copy / "overlays-without-recovery-view"
    if not copy.exists():
        shutil.copytree(k8s_copy / "overlays", copy)
        listed = 0
        for path in copy.glob("*/kustomization.yaml"):
            kustomization = yaml.safe_load(path.read_text())
            components = kustomization.get("components", [])
            kept = [component for component in components if Path(component).name != NAME]
            listed += len(components) - len(kept)
            path.write_text(yaml.safe_dump({**kustomization, "components": kept}, sort_keys=False))
        assert listed, "no overlay lists components/recovery-view"
    cache: dict[str, Manifests] = {}

    def rendered(target: Target) -> Manifests:
        if target.id not in cache:
            cache[target.id] = Manifests(kustomize(copy / Path(target.path).name))
        return cache[target.id]

    return rendered


# --- the tests ---------------------------------------------------------------------------------------------


def test_the_component_is_a_kustomize_component() -> None:
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert (kustomization["apiVersion"], kustomization["kind"]) == ("kustomize.config.k8s.io/v1alpha1", "Component")


def check_the_grant(manifests: Manifests) -> None:
    """The Role allows the page's calls and only the reads it may make; the one binding to it names only the
    storefront's ServiceAccount, and no other binding, namespaced or cluster-wide, grants that ServiceAccount
    anything."""
    role = manifests.get("Role", NAME)
    assert role["metadata"]["namespace"] == NAMESPACE
    for method, url in STOREFRONT_CALLS:
        assert authorizes(role["rules"], method, url), f"{method} {url} is refused"
    assert grants(role["rules"]) == GRANTS
    assert not [rule for rule in role["rules"] if rule.keys() - {"apiGroups", "resources", "verbs"}], "narrowed"
    binding = manifests.get("RoleBinding", NAME)
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    assert binding["subjects"] == [SERVICE_ACCOUNT]
    others = [
        obj
        for obj in [*manifests.of_kind("RoleBinding"), *manifests.of_kind("ClusterRoleBinding")]
        if obj is not binding and (grants_storefront(obj) or obj["roleRef"]["name"] == NAME)
    ]
    assert not others, [(obj["kind"], obj["metadata"]["name"]) for obj in others]


def check_the_tokens(manifests: Manifests) -> None:
    """The storefront's pods mount its token and are the only pods running as its ServiceAccount, which stays
    `automountServiceAccountToken: false` itself; any other pod that mounts a token runs as a ServiceAccount some
    other binding grants something (Prometheus' discovery, the scheduled drill), and every other pod of the base
    mounts none."""
    templates = {where: (namespace, spec) for where, namespace, spec in pod_templates(manifests)}
    assert templates["Deployment/storefront"][1]["automountServiceAccountToken"] is True
    assert manifests.get("ServiceAccount", "storefront")["automountServiceAccountToken"] is False
    bound = bound_service_accounts(manifests) - {(NAMESPACE, "storefront")}
    for where, (namespace, spec) in templates.items():
        if where == "Deployment/storefront":
            continue
        assert (namespace, spec.get("serviceAccountName")) != (NAMESPACE, "storefront"), where
        if namespace == NAMESPACE and where.split("/")[1] in {*SHOP_SERVICES, "postgres"}:
            assert spec["automountServiceAccountToken"] is False, where
        elif spec.get("automountServiceAccountToken", True):
            account = (namespace, spec.get("serviceAccountName", "default"))
            assert account in bound, f"{where} mounts a token for nothing"


@pytest.mark.parametrize("target", DEMO)
def test_each_overlay_grants_the_page_its_reads_and_nothing_more(render: Render, target: Target) -> None:
    check_the_grant(render(target))


@pytest.mark.parametrize("target", DEMO)
def test_only_the_storefronts_pods_mount_a_token_for_it(render: Render, target: Target) -> None:
    check_the_tokens(render(target))


@pytest.mark.parametrize("target", DEMO)
def test_the_component_changes_nothing_else(render: Render, without_component: Render, target: Target) -> None:
    """With the component an overlay has the Role and the RoleBinding more, and the storefront's pod template
    mounts the token; every other object (ServiceAccounts, pod templates, Services, policies) is as without it."""
    manifests, plain = render(target), without_component(target)

    def key(obj: Object) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    before = {key(obj): obj for obj in plain.objects}
    after = {key(obj): obj for obj in manifests.objects}
    assert sorted(after.keys() - before.keys()) == [("Role", NAME), ("RoleBinding", NAME)]
    assert before.keys() <= after.keys()
    mounted = after[("Deployment", "storefront")]
    unmounted = copy.deepcopy(mounted)
    unmounted["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    assert mounted["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    assert before[("Deployment", "storefront")] == unmounted
    changed = [name for name in before if name != ("Deployment", "storefront") and before[name] != after[name]]
    assert not changed, changed


@pytest.mark.parametrize("target", DEPLOYS)
def test_what_deploy_applies_has_it(deployed: Deployed, target: DeployTarget) -> None:
    """`make kind-up` / `make minikube-up` apply the overlay with the optional components added after it
    (autoscaling, metrics-server, the scheduled drill): the grant and the tokens are the same there."""
    manifests = deployed(target)
    check_the_grant(manifests)
    check_the_tokens(manifests)
    assert manifests.get("Role", NAME)["rules"] == recovery_view_rules(target.overlay)


@pytest.mark.parametrize("target", DEMO)
def test_the_storefront_reaches_each_service_pod_on_its_http_port(render: Render, target: Target) -> None:
    """The page's probes, /metrics and chaos calls go from the storefront straight to the service pods' `http`
    port: every network policy lets them through, and no policy limits the storefront's egress (the API server
    included)."""
    manifests = render(target)
    policies = manifests.of_kind("NetworkPolicy")
    pods = {pod.name: pod for pod in pods_of(manifests)}
    for service in SHOP_SERVICES:
        assert ingress_allowed(policies, pods["storefront"], pods[service], pods[service].ports["http"]), service
    storefront = pods["storefront"].labels
    egress = [
        policy["metadata"]["name"]
        for policy in policies
        if "Egress" in policy["spec"].get("policyTypes", []) and matches(policy["spec"]["podSelector"], storefront)
    ]
    assert not egress


@pytest.mark.parametrize("target", DEMO)
def test_recovery_view_rules_are_the_rendered_roles(render: Render, target: Target) -> None:
    assert recovery_view_rules(Path(target.path).name) == render(target).get("Role", NAME)["rules"]


def test_authorizes_refuses_what_the_role_does_not_grant() -> None:
    """The checks above can fail: a watch, another namespace, a Secret, a pod's log, one pod by name are all refused."""
    rules = recovery_view_rules()
    for url in (
        "/api/v1/namespaces/shop/pods?watch=true",
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/shop/secrets",
        "/api/v1/namespaces/shop/pods/payment-0/log",
        "/api/v1/namespaces/shop/pods/payment-0",
        "/api/v1/namespaces/shop/events/some-event",
        "/api/v1/namespaces/shop",
        "/apis/apps/v1/namespaces/shop/deployments",
    ):
        assert not authorizes(rules, "GET", url), url
    assert not authorizes(rules, "DELETE", "/api/v1/namespaces/shop/pods/payment-0")
    assert authorizes(rules, "GET", "/api/v1/namespaces/shop/pods")
