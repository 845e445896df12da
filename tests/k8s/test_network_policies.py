"""The network policies, evaluated on the rendered pods' labels and ports, allow exactly: anyone → storefront,
storefront → catalog/users/payment, payment → catalog/users, the database services → postgres, Prometheus → each
service's metrics port (and, for monitoring itself, Grafana → Prometheus, anyone → Grafana's UI and Prometheus → the
Pushgateway)."""

import pytest

from tests.k8s.conftest import ALL, WITH_POLICIES, Render, Target
from tests.k8s.manifests import DATABASE_SERVICES, OUTSIDE, SHOP_SERVICES, Pod, allowed_pairs, pods_of

STAND_INS = {
    # the monitoring component's pods as its manifests label them, for renders without it
    "prometheus": Pod("prometheus", {"app.kubernetes.io/name": "prometheus"}, {"http": 9090}),
    "grafana": Pod("grafana", {"app.kubernetes.io/name": "grafana"}, {"http": 3000}),
}


def expected_pairs(pods: dict[str, Pod]) -> set[tuple[str, str, int]]:
    port = {name: pod.ports.get("http", 0) for name, pod in pods.items()}
    everyone = [*pods, OUTSIDE.name]
    pairs = {(source, "storefront", port["storefront"]) for source in everyone if source != "storefront"}
    pairs |= {("storefront", backend, port[backend]) for backend in ("catalog", "users", "payment")}
    pairs |= {("payment", backend, port[backend]) for backend in ("catalog", "users")}
    pairs |= {(service, "postgres", 5432) for service in DATABASE_SERVICES}
    pairs |= {("prometheus", service, port[service]) for service in SHOP_SERVICES}
    pairs |= {("grafana", "prometheus", number) for number in set(pods["prometheus"].ports.values())}
    pairs |= {(source, "grafana", port["grafana"]) for source in everyone if source != "grafana"}
    if "pushgateway" in pods:  # rendered with monitoring
        pairs.add(("prometheus", "pushgateway", port["pushgateway"]))
    return pairs


@pytest.mark.parametrize("target", WITH_POLICIES)
def test_policies_allow_exactly_the_documented_pairs(render: Render, target: Target) -> None:
    manifests = render(target)
    pods = {pod.name: pod for pod in pods_of(manifests)}
    for name, stand_in in STAND_INS.items():
        pods.setdefault(name, stand_in)
    allowed = allowed_pairs(manifests.of_kind("NetworkPolicy"), list(pods.values()))
    expected = expected_pairs(pods)
    assert allowed - expected == set(), "allowed but not documented"
    assert expected - allowed == set(), "documented but denied"


@pytest.mark.parametrize("target", WITH_POLICIES)
def test_ingress_is_denied_by_default(render: Render, target: Target) -> None:
    policies = render(target).of_kind("NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") for p in policies)
    outsider = Pod("intruder", {"app.kubernetes.io/name": "intruder"}, {})
    pods = [*pods_of(render(target)), outsider]
    reached = {pair[1] for pair in allowed_pairs(policies, pods) if pair[0] == "intruder"}
    assert reached <= {"storefront", "grafana"}, "only the two web UIs are public"


@pytest.mark.parametrize("target", ALL)
def test_policies_come_only_with_their_component(render: Render, target: Target) -> None:
    assert bool(render(target).of_kind("NetworkPolicy")) is target.network_policies
