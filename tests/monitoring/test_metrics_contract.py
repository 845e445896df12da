"""The contract between the monitoring files and the code: every metric the dashboard and the alert rules read
is exposed by a running service's /metrics, with the labels and label values the queries filter on.

The four services run as real processes (`python -m shop_<service>`, as in tests/process), because in one
process prometheus_client's registry is shared and only the first app that serves a request gets the
instrumentator's HTTP metrics; here each service has its own /metrics, as in a pod. They get a little traffic
first: a customer registers, lists products and pays once with an approved and once with a declined card
through the storefront, and the payment service (chaos enabled) takes one chaos injection.
"""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shop_devtools.pg import EmbeddedPostgres
from shop_devtools.topology import CALLEES_FIRST
from tests.conftest import ClonedDatabases
from tests.monitoring.promql import dashboard_expressions, grouping_labels, matchers, metric_names, rule_expressions
from tests.process.conftest import ServiceProcess, launch, wiring

pytestmark = pytest.mark.process

PROMETHEUS_SERIES = {"up": {"job", "instance"}, "ALERTS": {"alertname", "alertstate", "severity"}}
"""Series Prometheus makes itself (scrape health, alert state) rather than scrapes from a service."""
ONLY_AFTER_A_CRASH = {"shop_payments_recovered_total"}
"""Counters a service declares at start but that get a sample only once a payment is recovered after its owner
died, which needs a payment process killed mid-payment (tests/process/test_kill.py)."""
SERVICES = tuple(service.name for service in CALLEES_FIRST)
APPROVED, DECLINED = "4242424242424242", "4000000000000002"
CHAOS_TOKEN = "a-token-for-tests-0123456789"
HIGHR_BUCKETS_AT_LEAST = 10
REQUEST_TIMEOUT = 10.0


class Exposition:
    """What /metrics said: the series each family declares, and the labels and values of the samples present."""

    def __init__(self, texts: list[str]) -> None:
        self.declared: set[str] = set()
        self.labels: dict[str, set[str]] = {}
        self.values: dict[str, dict[str, set[str]]] = {}
        suffixes = {
            "counter": ["_total"],
            "gauge": [""],
            "histogram": ["_bucket", "_count", "_sum"],
            "summary": ["", "_count", "_sum"],
        }
        for text in texts:
            for family in text_string_to_metric_families(text):
                self.declared |= {family.name + suffix for suffix in suffixes.get(family.type, [""])}
                for sample in family.samples:
                    self.declared.add(sample.name)
                    self.labels.setdefault(sample.name, set()).update(sample.labels)
                    for label, value in sample.labels.items():
                        self.values.setdefault(sample.name, {}).setdefault(label, set()).add(value)


@dataclass
class Scrapes:
    """Each service's /metrics, and all of them together."""

    services: dict[str, Exposition]
    union: Exposition

    def __getitem__(self, service: str) -> Exposition:
        return self.services[service]


def drive_traffic(client: httpx.Client, services: dict[str, ServiceProcess]) -> None:
    storefront, payment = services["storefront"].url, services["payment"].url
    account = {"email": f"metrics-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery"}
    created = client.post(services["users"].url + "/users", json={**account, "name": "Ada"})
    assert created.status_code == 201, created.text
    token = client.post(storefront + "/api/tokens", json=account)
    assert token.status_code == 200, token.text
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    products = client.get(storefront + "/api/products")
    assert products.status_code == 200, products.text
    sku = products.json()["items"][0]["sku"]
    for card, expected in [(APPROVED, 201), (DECLINED, 402)]:
        paid = client.post(
            storefront + "/api/payments",
            json={"items": [{"sku": sku, "quantity": 1}], "card_number": card},
            headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert paid.status_code == expected, paid.text
    assert client.get(storefront + "/api/payments", headers=auth).status_code == 200
    chaos = {"X-Chaos-Token": CHAOS_TOKEN}
    assert client.post(payment + "/chaos/unready", headers=chaos).status_code == 200
    assert client.delete(payment + "/chaos", headers=chaos).status_code == 200


@pytest.fixture(scope="module")
def scrapes(
    postgres: EmbeddedPostgres, template_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scrapes]:
    databases, logs = ClonedDatabases(postgres), tmp_path_factory.mktemp("service-logs")
    services: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            env = wiring(name, databases, services)
            if name == "payment":
                env |= {"PAYMENT_PROVIDER_LATENCY_MS": "0", "CHAOS_ENABLED": "true", "CHAOS_TOKEN": CHAOS_TOKEN}
            services[name] = launch(name, logs, **env)
            services[name].wait_ready()
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            drive_traffic(client, services)
            texts = {}
            for name, service in services.items():
                response = client.get(service.url + "/metrics")
                assert response.status_code == 200, response.text
                assert response.headers["content-type"].startswith("text/plain")
                texts[name] = response.text
        yield Scrapes({name: Exposition([text]) for name, text in texts.items()}, Exposition(list(texts.values())))
    finally:
        for service in services.values():
            service.stop()
        databases.drop()


@pytest.fixture(scope="module")
def target_labels(prometheus_config: dict[str, Any]) -> set[str]:
    """Labels Prometheus attaches to every scraped series of the shop: job, instance and the relabelling's targets."""
    [job] = [job for job in prometheus_config["scrape_configs"] if job["job_name"] == "shop-pods"]
    relabelled = {rule["target_label"] for rule in job["relabel_configs"] if "target_label" in rule}
    return {"job", "instance"} | {label for label in relabelled if not label.startswith("__")}


def referenced(dashboard: dict[str, Any], alert_rules: dict[str, Any]) -> dict[str, set[str]]:
    """Metric name → where it is read (panels, annotations, variables, alert rules)."""
    found: dict[str, set[str]] = {}
    for where, expr in queries(dashboard, alert_rules):
        for name in metric_names(expr):
            found.setdefault(name, set()).add(where)
    return found


def queries(dashboard: dict[str, Any], alert_rules: dict[str, Any]) -> list[tuple[str, str]]:
    return [*dashboard_expressions(dashboard), *rule_expressions(alert_rules)]


def test_every_metric_of_the_dashboard_and_the_alerts_is_exposed_by_the_services(
    scrapes: Scrapes, dashboard: dict[str, Any], alert_rules: dict[str, Any]
) -> None:
    names = referenced(dashboard, alert_rules)
    missing = {
        name: sorted(where)
        for name, where in names.items()
        if name not in scrapes.union.declared and name not in PROMETHEUS_SERIES
    }
    assert not missing, f"metrics read but exposed by no service: {missing}"
    no_samples = set(names) - set(scrapes.union.labels) - set(PROMETHEUS_SERIES) - ONLY_AFTER_A_CRASH
    assert not no_samples, f"declared but without a sample after the traffic: {sorted(no_samples)}"
    # The allowances are not stale: each names a metric that is read and declared.
    assert set(names) >= ONLY_AFTER_A_CRASH
    assert scrapes.union.declared >= ONLY_AFTER_A_CRASH


def test_a_metric_filtered_by_app_is_exposed_by_that_service(
    scrapes: Scrapes, dashboard: dict[str, Any], alert_rules: dict[str, Any]
) -> None:
    """`process_start_time_seconds{app="payment"}` needs payment to expose it, not just any service."""
    checked = 0
    for where, expr in queries(dashboard, alert_rules):
        for metric, label, operator, value in matchers(expr):
            if label == "app" and operator == "=":
                assert value in SERVICES, f"{where}: no service is called {value!r}"
                assert metric in scrapes[value].declared, f"{where}: {value} does not expose {metric}"
                checked += 1
    assert checked


def test_what_the_contract_covers(dashboard: dict[str, Any], alert_rules: dict[str, Any]) -> None:
    """The dashboard and the rules read the shop's own metrics, the instrumentator's and the process's."""
    assert {
        "http_requests_total",
        "http_request_duration_highr_seconds_bucket",
        "shop_payments_total",
        "shop_payments_recovered_total",
        "shop_payment_oldest_pending_seconds",
        "shop_reservations_total",
        "shop_chaos_injections_total",
        "shop_chaos_leaked_bytes",
        "shop_resident_memory_bytes",
        "shop_memory_budget_bytes",
        "shop_memory_limit_bytes",
        "shop_gateway_requests_total",
        "shop_gateway_retries_total",
        "process_start_time_seconds",
    } <= set(referenced(dashboard, alert_rules))


def test_filters_and_groupings_use_labels_the_series_carry(
    scrapes: Scrapes, dashboard: dict[str, Any], alert_rules: dict[str, Any], target_labels: set[str]
) -> None:
    """Labels come from the service (status, handler, upstream...) or from Prometheus's relabelling (app, pod...)."""
    labels = scrapes.union.labels
    for where, expr in queries(dashboard, alert_rules):
        available = target_labels | {"le"}
        for name in metric_names(expr):
            available |= PROMETHEUS_SERIES.get(name, set()) | labels.get(name, set())
        for metric, label, _, _ in matchers(expr):
            if metric in labels or metric in PROMETHEUS_SERIES:
                known = labels.get(metric, set()) | PROMETHEUS_SERIES.get(metric, set()) | target_labels
                assert label in known, f"{where}: {metric} has no label {label!r}"
        if not metric_names(expr) & ONLY_AFTER_A_CRASH:  # their labels are known only from a sample
            unknown = grouping_labels(expr) - available
            assert not unknown, f"{where}: groups by labels no series has: {sorted(unknown)}"


def test_exact_label_values_in_filters_are_values_the_services_report(
    scrapes: Scrapes, dashboard: dict[str, Any], alert_rules: dict[str, Any]
) -> None:
    """`handler="/payments"`, `status="captured"`, `upstream="payment"`, `outcome="success"` are what the code
    reports (a value the traffic did not produce would fail here, so the traffic produces each one)."""
    values = scrapes.union.values
    checked = 0
    for where, expr in queries(dashboard, alert_rules):
        for metric, label, operator, value in matchers(expr):
            if operator in {"=", "!="} and label in values.get(metric, {}):
                assert value in values[metric][label], f"{where}: {metric} never has {label}={value!r}"
                checked += 1
    assert checked


def test_the_latency_quantiles_read_a_histogram_with_fine_buckets(
    scrapes: Scrapes, dashboard: dict[str, Any], alert_rules: dict[str, Any]
) -> None:
    """The instrumentator's http_request_duration_seconds has 3 buckets (0.1, 0.5, 1 s): too coarse for a p99."""
    quantiles = [(where, expr) for where, expr in queries(dashboard, alert_rules) if "histogram_quantile" in expr]
    assert quantiles
    for where, expr in quantiles:
        for name in metric_names(expr):
            assert name.endswith("_bucket"), f"{where}: histogram_quantile over {name}, which is not a histogram"
            buckets = {le for le in scrapes.union.values[name]["le"] if le != "+Inf"}
            assert len(buckets) >= HIGHR_BUCKETS_AT_LEAST, f"{where}: {name} has only {len(buckets)} buckets"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_exposes_the_series_the_per_service_panels_need(scrapes: Scrapes, service: str) -> None:
    """Request rate, errors, latency, memory and restarts are shown per service: each one has them all, and one
    process start time (restarts are counted as its changes)."""
    exposition = scrapes[service]
    for name in [
        "http_requests_total",
        "http_request_duration_highr_seconds_bucket",
        "shop_resident_memory_bytes",
        "shop_memory_budget_bytes",
        "shop_memory_limit_bytes",
        "process_start_time_seconds",
    ]:
        assert name in exposition.labels, f"{service} has no sample of {name}"
    assert exposition.labels["process_start_time_seconds"] == set()


def test_status_codes_are_reported_one_by_one_so_5xx_can_be_matched(scrapes: Scrapes) -> None:
    """The error-rate queries match status=~"5..": the instrumentator must not group codes into "2xx", "4xx"."""
    payment = scrapes["payment"].values["http_requests_total"]
    assert {"201", "402"} <= payment["status"]
    assert "/payments" in payment["handler"]  # CheckoutErrorRateHigh filters handler="/payments"
    statuses = scrapes.union.values["http_requests_total"]["status"]
    assert all(re.fullmatch(r"[1-5]\d\d", status) for status in statuses)
