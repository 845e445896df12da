"""The metric-name finder the contract test relies on, and (where `promql-parser` is installed) a real PromQL
parse of every expression of the dashboard and the rules, compared with what the finder found."""

from typing import Any

import pytest

from tests.monitoring.promql import (
    dashboard_expressions,
    grafana_to_promql,
    metric_names,
    rule_expressions,
    selectors_without_name,
)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        (
            'sum by (app) (rate(http_requests_total{status=~"5..", app=~"$app"}[$__rate_interval]))',
            {"http_requests_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (app, le) (rate(http_request_duration_highr_seconds_bucket[5m])))",
            {"http_request_duration_highr_seconds_bucket"},
        ),
        ("sum(rate(a_total[5m])) by (pod) / ignoring (le) group_left (app) b_total", {"a_total", "b_total"}),
        ("x / on (namespace, pod) (y > 0) > bool 0.9 and z offset 1h30m", {"x", "y", "z"}),
        ('count(ALERTS{alertstate="firing"}) or vector(0)', {"ALERTS"}),
        ('label_replace(m, "dst", "$1", "src", "(.*){1}[2]")', {"m"}),
        ("max_over_time(deriv(g[5m])[30m:1m]) unless g2 @ 1700000000", {"g", "g2"}),
        ("-metric_with:colon * 1e3 + Inf - NaN", {"metric_with:colon"}),
        ("label_values(http_requests_total, app)", {"http_requests_total"}),
        ('label_values(shop_payments_total{status="captured"}, pod)', {"shop_payments_total"}),
        ("sum without (instance) (changes(process_start_time_seconds[${__range}]))", {"process_start_time_seconds"}),
    ],
)
def test_metric_names_finds_every_selected_metric_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_a_selector_without_a_metric_name_is_noticed() -> None:
    assert selectors_without_name('rate({__name__="x"}[5m])')
    assert selectors_without_name('{job="a"}')
    assert not selectors_without_name('rate(x{job="a"}[5m]) / y {job="b"}')
    assert not selectors_without_name('label_replace(x, "a", "{b}", "c", "(.*)")')


def expressions(dashboard: dict[str, Any], alert_rules: dict[str, Any]) -> list[tuple[str, str]]:
    return [*dashboard_expressions(dashboard), *rule_expressions(alert_rules)]


def test_every_expression_parses_as_promql_and_selects_what_the_finder_found(
    dashboard: dict[str, Any], alert_rules: dict[str, Any]
) -> None:
    promql_parser = pytest.importorskip(
        "promql_parser", reason="promql-parser is not installed; the names are checked by the tokenizer only"
    )
    for where, expr in expressions(dashboard, alert_rules):
        if expr.startswith("label_values("):
            continue  # a Grafana variable query, not PromQL
        try:
            tree = promql_parser.parse(grafana_to_promql(expr))
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}\n{expr}")
        selected: set[str] = set()

        def visit(node: Any, selected: set[str] = selected) -> bool:
            if isinstance(node, promql_parser.VectorSelector):
                selected.add(node.name)
            return True

        promql_parser.walk(tree, visit)
        assert selected == metric_names(expr), where
