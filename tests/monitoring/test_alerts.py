"""rules/alerts.yaml: Prometheus rule format, the alerts (a payment pod restarting, checkouts failing), and their
behaviour.

promtool has no PyPI wheel, so the structure is checked here in Python always; `promtool check rules` and the
rule unit tests in alerts_test.yaml (series in, alerts out) run where promtool is installed (Debian's
`prometheus` package ships it).
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.conftest import ALERTS
from tests.monitoring.promql import metric_names, rule_expressions

DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
RULE_FIELDS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
PROMTOOL_TIMEOUT = 60


def rules_by_name(alert_rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in alert_rules["groups"] for rule in group["rules"]}


def test_the_file_has_the_prometheus_rule_format(alert_rules: dict[str, Any]) -> None:
    assert set(alert_rules) == {"groups"}
    names = [group["name"] for group in alert_rules["groups"]]
    assert len(names) == len(set(names))
    for group in alert_rules["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}
        for rule in group["rules"]:
            assert "alert" in rule, "this file holds alerting rules only"
            assert set(rule) <= RULE_FIELDS, rule["alert"]
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
            assert isinstance(rule["expr"], str)
            assert rule["expr"].strip()
            assert DURATION.match(rule.get("for", "0s")), rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["description"]


def test_the_required_alerts_exist(alert_rules: dict[str, Any]) -> None:
    rules = rules_by_name(alert_rules)
    assert {"PaymentPodRestarting", "CheckoutErrorRateHigh"} <= set(rules)
    assert {"PaymentMemoryNearLimit", "PendingPaymentsStuck"} <= set(rules)


def test_payment_pod_restarting_counts_container_restarts_of_payment_in_10_minutes(
    alert_rules: dict[str, Any],
) -> None:
    expr = rules_by_name(alert_rules)["PaymentPodRestarting"]["expr"]
    assert metric_names(expr) == {"process_start_time_seconds"}
    assert 'changes(process_start_time_seconds{app="payment"}[10m])' in expr
    assert re.search(r"by \([^)]*\bpod\b", expr)  # one alert per pod, naming it
    assert expr.rstrip().endswith("> 0")


def test_checkout_error_rate_high_is_the_5xx_share_of_post_payments_over_5_minutes(
    alert_rules: dict[str, Any],
) -> None:
    rule = rules_by_name(alert_rules)["CheckoutErrorRateHigh"]
    expr = " ".join(rule["expr"].split())
    assert metric_names(expr) == {"http_requests_total", "shop_gateway_requests_total"}
    assert 'app="payment", method="POST", handler="/payments", status=~"5.."}[5m]' in expr
    assert 'app="storefront", upstream="payment", outcome=~"server_error|unavailable|timeout"}[5m]' in expr
    assert expr.count("> 0.01") == 2
    assert rule["labels"]["severity"] == "critical"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (no PyPI wheel ships it); the structure is checked in Python above")
    return found


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_fire_on_made_up_series_as_intended() -> None:
    """alerts_test.yaml: a payment restart fires, a catalog restart or a new pod does not; 2 % failed checkouts
    fire at payment or at storefront, 0.5 % or failing reads do not; memory near the budget; a stuck payment."""
    tests = Path(__file__).with_name("alerts_test.yaml")
    result = subprocess.run(
        [promtool(), "test", "rules", tests.name],
        cwd=tests.parent,
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_names_at_least_one_metric(alert_rules: dict[str, Any]) -> None:
    for where, expr in rule_expressions(alert_rules):
        assert metric_names(expr), where
