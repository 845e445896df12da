"""prometheus.yml: pod discovery in `shop` only, and its relabelling run here on discovered targets as Prometheus
would, so "annotated pods only, with pod/namespace/app labels" is checked on behaviour, not on text."""

import re
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import pytest

from tests.monitoring.conftest import ALERTS, NAMESPACE, PROMETHEUS_CONFIG

Labels = dict[str, str]
SHOP_PORTS = {"storefront": 8080, "catalog": 8081, "users": 8082, "payment": 8083}


def relabel(labels: Mapping[str, str], configs: list[dict[str, Any]]) -> Labels | None:
    """Prometheus's relabelling (the actions this config uses); None when the target is dropped."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        value = config.get("separator", ";").join(labels.get(name, "") for name in config.get("source_labels", []))
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if action == "keep" and match is None:
            return None
        if action == "drop" and match is not None:
            return None
        if action == "replace" and match is not None:
            template = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", config.get("replacement", "$1"))
            result = match.expand(template)
            if result:
                labels[config["target_label"]] = result
            else:
                labels.pop(config["target_label"], None)
        assert action in {"keep", "drop", "replace"}, f"relabel action {action} not simulated"
    return labels


def shop_pod(app: str, *, ip: str = "10.244.1.7", **overrides: str) -> Labels:
    """The meta labels Kubernetes pod discovery gives a target of a shop pod, as the base manifests label it."""
    port = str(SHOP_PORTS[app])
    return {
        "__address__": f"{ip}:{port}" if ":" not in ip else f"[{ip}]:{port}",
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_name": f"{app}-7d9c5b6f4-x2k8p",
        "__meta_kubernetes_pod_ip": ip,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_node_name": "kind-control-plane",
        "__meta_kubernetes_pod_container_init": "false",
        "__meta_kubernetes_pod_container_name": app,
        "__meta_kubernetes_pod_container_port_number": port,
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": app,
        "__meta_kubernetes_pod_label_app_kubernetes_io_part_of": "resilient-shop",
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": "backend",
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_pod_annotation_prometheus_io_port": port,
        "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
        **overrides,
    }


@pytest.fixture(scope="module")
def job(prometheus_config: dict[str, Any]) -> dict[str, Any]:
    [pods] = [job for job in prometheus_config["scrape_configs"] if job["job_name"] == "shop-pods"]
    return dict(pods)


def test_the_only_other_job_is_the_pushgateway_with_its_pushed_labels_kept(prometheus_config: dict[str, Any]) -> None:
    """The Pushgateway's Service in `shop`; honor_labels keeps what a batch job pushed as `job` (the drill's
    `failover-drill`) instead of this job's name."""
    [pushgateway] = [job for job in prometheus_config["scrape_configs"] if job["job_name"] != "shop-pods"]
    assert pushgateway == {
        "job_name": "pushgateway",
        "honor_labels": True,
        "static_configs": [{"targets": [f"pushgateway.{NAMESPACE}.svc:9091"]}],
    }


def test_it_discovers_pods_of_namespace_shop_only(job: dict[str, Any]) -> None:
    [discovery] = job["kubernetes_sd_configs"]
    assert discovery["role"] == "pod"
    assert discovery["namespaces"] == {"names": [NAMESPACE]}
    assert set(job) <= {"job_name", "kubernetes_sd_configs", "relabel_configs"}  # no static or other targets


def test_it_scrapes_fast_enough_to_watch_a_leak_and_loads_the_rules(prometheus_config: dict[str, Any]) -> None:
    assert prometheus_config["global"]["scrape_interval"] == "5s"
    assert prometheus_config["global"]["evaluation_interval"] == "5s"
    assert prometheus_config["rule_files"] == [f"/etc/prometheus/rules/*{ALERTS.suffix}"]


@pytest.mark.parametrize("app", sorted(SHOP_PORTS))
def test_an_annotated_shop_pod_is_scraped_on_its_port_and_path_with_pod_namespace_and_app(
    job: dict[str, Any], app: str
) -> None:
    target = relabel(shop_pod(app), job["relabel_configs"])
    assert target is not None
    assert target["__address__"] == f"10.244.1.7:{SHOP_PORTS[app]}"
    assert target["__metrics_path__"] == "/metrics"
    assert target["pod"] == f"{app}-7d9c5b6f4-x2k8p"
    assert target["namespace"] == NAMESPACE
    assert target["app"] == app


def test_the_annotations_choose_the_port_and_path(job: dict[str, Any]) -> None:
    pod = shop_pod(
        "payment",
        __meta_kubernetes_pod_annotation_prometheus_io_port="9100",
        __meta_kubernetes_pod_annotation_prometheus_io_path="/custom",
    )
    target = relabel(pod, job["relabel_configs"])
    assert target is not None
    assert (target["__address__"], target["__metrics_path__"]) == ("10.244.1.7:9100", "/custom")


def test_an_ipv6_pod_gets_a_bracketed_address(job: dict[str, Any]) -> None:
    target = relabel(shop_pod("catalog", ip="fd00:10:244::7"), job["relabel_configs"])
    assert target is not None
    assert target["__address__"] == "[fd00:10:244::7]:8081"


@pytest.mark.parametrize(
    "overrides",
    [
        {"__meta_kubernetes_pod_annotation_prometheus_io_scrape": "false"},
        {"__meta_kubernetes_pod_annotation_prometheus_io_scrape": ""},  # not annotated at all
        {"__meta_kubernetes_pod_container_init": "true"},  # a migration init container
        {"__meta_kubernetes_pod_phase": "Succeeded"},  # a finished migration Job's pod
        {"__meta_kubernetes_pod_phase": "Pending"},
    ],
    ids=["scrape-false", "no-annotation", "init-container", "finished-pod", "pending-pod"],
)
def test_pods_that_do_not_ask_or_cannot_answer_are_not_scraped(job: dict[str, Any], overrides: Labels) -> None:
    assert relabel(shop_pod("payment", **overrides), job["relabel_configs"]) is None


def test_promtool_accepts_the_config_when_it_is_installed() -> None:
    """promtool has no PyPI wheel; Debian's build lacks Kubernetes discovery, so only a full build can check."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (no PyPI wheel ships it)")
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "kubernetes_sd_configs not found" in result.stdout + result.stderr:
        pytest.skip("this promtool was built without Kubernetes service discovery (Debian's package)")
    assert result.returncode == 0, result.stdout + result.stderr
