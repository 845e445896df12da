"""The drill and Locust against the shop as real processes (catalog, users, payment and storefront
under uvicorn, with chaos enabled and a 250 MB memory budget), each bounded in time."""

import csv
import json
import shutil
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import AS_OPERATOR
from tests.load.conftest import CHAOS_TOKEN, RealShop, run_python

pytestmark = pytest.mark.process


def test_the_drill_against_the_local_shop_detects_the_leak_and_checks_the_invariants(
    real_shop: RealShop, tmp_path: Path
) -> None:
    """The sale's drill at a small load (8 checkouts/s, 40 browses/s through wrk when it is installed)."""
    out = tmp_path / "drill-out"
    browse_rate = 40 if shutil.which("wrk") else 0
    drill = [
        "-m", "shop_load.drill", "--url", real_shop.storefront.url,
        "--payment-url", real_shop.payment.url, "--rate", "8", "--browse-rate", str(browse_rate),
        "--customers", "4", "--warmup", "5", "--duration", "10", "--cooldown", "4",
        "--leak-mb-per-second", "40", "--settle", "10",
        "--restock", "300",
    ]  # fmt: skip
    no_cluster = {"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "KUBERNETES_SERVICE_HOST": ""}
    result = run_python(drill, timeout=150, CHAOS_TOKEN=CHAOS_TOKEN, DRILL_OUT=str(out), **no_cluster)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr

    report = json.loads((out / "drill-resilient.json").read_text())
    steps = report["timeline"]
    assert steps["injected"] >= 5
    assert steps["injected"] < steps["unready"] < steps["injected"] + 10, "readiness turned 503 within 10 s"
    assert steps["injected"] < steps["liveness_failed"] < steps["injected"] + 10, "liveness turned 503 within 10 s"
    assert steps["fault_cleared"] is not None
    assert steps["ready_again"] >= steps["fault_cleared"], (
        "ready again only once the fault is cleared (times in 0.01 s)"
    )
    assert steps["restarted"] is None
    assert report["restarts"] == 0
    assert report["settings"]["mode"] == "local"  # no cluster reachable: detected, not asked for
    assert "restocked before the drill: 24 products raised to 300 units each (POST /ops/restock)" in result.stdout
    inventory = httpx.get(real_shop.storefront.url + "/ops/inventory", headers=AS_OPERATOR, timeout=10)
    assert inventory.status_code == 200, inventory.text
    assert all(row["stock"] + row["held"] + row["sold"] >= 300 for row in inventory.json()), "restocked through /ops"

    load = report["load"]
    assert load["seconds"] >= 19
    assert load["checkouts"]["started"] >= 0.9 * 8 * load["seconds"], "the checkouts kept their pace"
    assert load["checkouts"]["not_started"] == 0
    assert report["requests"]["per_second"][0].keys() >= {
        "sent", "succeeded", "failed", "p50_ms", "p99_ms", "checkouts_started", "checkout_ok", "browse_ok",
    }  # fmt: skip
    assert report["checkouts"]["total"] == load["checkouts"]["started"]
    assert report["checkouts"]["success_rate"] == 1.0  # every checkout answered (retries with its key allowed)
    assert report["checkouts"]["out_of_stock"] == 0  # restocked: the sale did not sell out
    assert set(report["latency_ms"]) == {"before", "during", "after"}
    assert all(report["latency_ms"][phase]["p99_ms"] is not None for phase in ("before", "during", "after"))
    if browse_rate:
        browses = load["browses"]
        served, generator = browses["server"], browses["wrk"]
        assert served["per_second"] >= 0.6 * browse_rate, "paced browsing reached the storefront"
        assert served["failed"] == 0
        assert served["requests"] >= generator["requests"] * 0.95, "the storefront counted what wrk was answered"
        assert [s["phase"] for s in generator["segments"]] == ["before", "during", "after"]
        assert set(report["browse_latency_ms"]) == {"before", "during", "after"}
        during_load = [
            r
            for r in report["requests"]["per_second"]
            if load["window_s"][0] + 1 < r["second"] < steps["fault_cleared"]
        ]
        assert all(r["browse_ok"] is not None and r["browse_ok"] > 0 for r in during_load), "browses every second"
        assert "browses (storefront's count)" in result.stdout
    assert "checkouts started" in result.stdout
    assert [(i["name"], i["ok"]) for i in report["invariants"]] == [
        ("answered_payments_stored", True),
        ("one_payment_per_key", True),
        ("stock_conserved", True),
    ]
    assert "No orchestrator" in result.stdout
    assert (out / "drill-resilient.png").read_bytes().startswith(b"\x89PNG")

    # An invariant broken on purpose behind the API: a captured payment's row says declined.
    with psycopg.connect(real_shop.database_urls["payment"], autocommit=True) as conn:
        changed = conn.execute(
            "UPDATE payments SET status = 'declined' WHERE id = "
            "(SELECT id FROM payments WHERE status = 'captured' ORDER BY created_at LIMIT 1) RETURNING id"
        ).fetchone()
    assert changed is not None
    check = run_python(["-m", "shop_load.drill", "--check", str(out / "drill-resilient.ledger.json")], timeout=60)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "FAIL  answered_payments_stored" in check.stdout
    assert f"payment {changed[0]}" in check.stdout
    assert "INVARIANT FAILED: answered_payments_stored" in check.stdout
    assert "PASS  stock_conserved" in check.stdout


def test_a_short_locust_run_has_no_failures(real_shop: RealShop, tmp_path: Path) -> None:
    locust = [
        "-m", "locust", "-f", "load/locustfile.py", "--headless", "-u", "3", "-r", "3", "-t", "5s",
        "--host", real_shop.storefront.url, "--only-summary", "--csv", str(tmp_path / "locust"),
    ]  # fmt: skip
    result = run_python(locust, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    with (tmp_path / "locust_stats.csv").open() as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) >= 10
    assert int(total["Failure Count"]) == 0, result.stderr[-3000:]
    assert {"/api/users", "/api/tokens", "/api/products"} <= rows.keys()
