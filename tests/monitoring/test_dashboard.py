"""dashboards/resilient-shop.json: a Grafana dashboard whose every panel queries the provisioned Prometheus and
which shows what an operator watches in a drill: traffic, errors, p99, payments, memory against the limit, restarts."""

from typing import Any

import yaml

from tests.monitoring.conftest import GRAFANA_DATASOURCES
from tests.monitoring.promql import dashboard_expressions, metric_names, selectors_without_name

GRID_WIDTH = 24


def datasource_uid() -> str:
    [source] = yaml.safe_load(GRAFANA_DATASOURCES.read_text())["datasources"]
    uid: str = source["uid"]
    return uid


def test_it_is_a_provisionable_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "resilient-shop"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["panels"]
    assert "id" not in dashboard or dashboard["id"] is None  # provisioning assigns the id
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_panel_has_a_promql_query_on_the_provisioned_prometheus(dashboard: dict[str, Any]) -> None:
    uid = datasource_uid()
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"panel {panel['title']!r} has an empty query"
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            assert annotation["datasource"]["uid"] == uid


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        taken |= cells


def test_every_query_names_its_metrics(dashboard: dict[str, Any]) -> None:
    """A selector without a metric name would escape the contract test that scrapes the services."""
    for where, expr in dashboard_expressions(dashboard):
        assert metric_names(expr), where
        assert not selectors_without_name(expr), where


def panel_queries(dashboard: dict[str, Any]) -> dict[str, str]:
    return {panel["title"]: " ".join(t["expr"] for t in panel["targets"]) for panel in dashboard["panels"]}


def test_it_shows_what_the_demo_is_about(dashboard: dict[str, Any]) -> None:
    queries = panel_queries(dashboard)
    wanted = {
        "Request rate per service": ["sum by (app) (rate(http_requests_total"],
        "Error rate (5xx share) per service": ['status=~"5.."', "sum by (app)"],
        "Latency p99 / p50 per service": [
            "histogram_quantile(0.99, sum by (app, le) (rate(http_request_duration_highr_seconds_bucket"
        ],
        "Payments by status": ["sum by (status) (rate(shop_payments_total"],
        "Memory per pod against its limit": [
            "shop_resident_memory_bytes",
            "shop_memory_limit_bytes",
            "shop_memory_budget_bytes",
        ],
        "Restarts per pod (last 10 m)": ["changes(process_start_time_seconds"],
        "Leaked memory per pod": ["shop_chaos_leaked_bytes"],
        "Oldest pending payment": ["shop_payment_oldest_pending_seconds"],
    }
    for title, fragments in wanted.items():
        assert title in queries, f"no panel {title!r}"
        for fragment in fragments:
            assert fragment in queries[title], f"panel {title!r} lacks {fragment!r}"


def test_the_service_variable_lists_the_apps_prometheus_labels(dashboard: dict[str, Any]) -> None:
    [variable] = dashboard["templating"]["list"]
    assert variable["name"] == "app"
    assert variable["query"]["query"] == "label_values(http_requests_total, app)"
    assert variable["includeAll"] is True
    assert variable["allValue"] == ".*"
