"""kind's cluster config publishes exactly the NodePorts the overlays use on the host's loopback."""

import pytest
import yaml

from shop_devtools.cluster.commands import CLUSTER_NAME, KIND_HOST_PORTS
from shop_devtools.topology import SHOP_URL
from tests.k8s.conftest import K8S, MONITORING_MISSING, MONITORING_PRESENT, TARGETS, Render

CONFIG = yaml.safe_load((K8S / "kind" / "cluster.yaml").read_text())


def mappings() -> dict[int, int]:
    (node,) = CONFIG["nodes"]
    for mapping in node["extraPortMappings"]:
        assert mapping["listenAddress"] == "127.0.0.1"
        assert mapping.get("protocol", "TCP") == "TCP"
    return {mapping["containerPort"]: mapping["hostPort"] for mapping in node["extraPortMappings"]}


def node_port(render: Render, target_id: str, service: str) -> int:
    (target,) = (target for target in TARGETS if target.id == target_id)
    (port,) = render(target).get("Service", service)["spec"]["ports"]
    number: int = port["nodePort"]
    return number


def test_kind_config_is_the_cluster_the_tool_creates() -> None:
    assert CONFIG["kind"] == "Cluster"
    assert CONFIG["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert CONFIG["name"] == CLUSTER_NAME
    assert set(mappings().values()) == set(KIND_HOST_PORTS)


def test_storefront_is_at_localhost_8080(render: Render) -> None:
    assert mappings()[node_port(render, "overlay:kind", "storefront")] == 8080
    assert SHOP_URL == "http://localhost:8080"


@pytest.mark.skipif(not MONITORING_PRESENT, reason=MONITORING_MISSING)
def test_grafana_is_at_localhost_3000(render: Render) -> None:
    assert mappings()[node_port(render, "overlay:kind-monitoring", "grafana")] == 3000
