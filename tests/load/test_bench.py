"""`make bench`: its verdicts and parsers (pure), then a short bench against processes it starts itself (its own
PostgreSQL, stock and services), and its reads against a shop that is already running. No threshold on speed
anywhere: what is checked is where each figure comes from, not how large it is."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import get_args

import pytest

from shop_devtools.credentials import OPERATOR, ensure_credentials
from shop_load.bench import measure as bench_measure
from shop_load.bench import report as bench_report
from shop_load.bench import run as bench
from shop_load.bench import shop as bench_shop
from shop_load.core import ops
from shop_load.core.records import InvariantResult
from shop_load.core.scrape import parse
from shop_load.generators import wrk_report
from shop_load.report.bench_model import Bar, BenchReport, Burst, Measurement, Probe
from tests.load.conftest import RealShop, run_python

PGBENCH_OUTPUT = """\
pgbench (16.2)
transaction type: /tmp/payment-writes.sql
scaling factor: 1
query mode: prepared
number of clients: 32
number of threads: 1
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 8934
number of failed transactions: 3 (0.034%)
latency average = 7.1 ms
initial connection time = 60.2 ms
tps = 4467.0 (without initial connection time)
"""

METRICS = """\
# TYPE http_requests_total counter
http_requests_total{handler="/api/{path:path}",method="POST",status="201"} 10.0
http_requests_total{handler="/api/{path:path}",method="POST",status="503"} 2.0
http_requests_total{handler="/api/{path:path}",method="GET",status="200"} 7.0
http_requests_total{handler="/products",method="GET",status="200"} 99.0
# TYPE shop_payments_total counter
shop_payments_total{status="captured"} 4.0
shop_payments_total{status="declined"} 1.0
"""


def test_pgbench_summary_and_log_become_transactions_and_latencies() -> None:
    log = ["0 1 5300 0 1700000000 1", "1 1 12000 0 1700000000 2", "garbage"]
    assert bench_measure.parse_pgbench(PGBENCH_OUTPUT, log) == (8934, 3, 2.0, [5.3, 12.0])
    with pytest.raises(bench_shop.BenchError, match="no summary"):
        bench_measure.parse_pgbench("connection refused", [])


def test_server_counts_are_read_by_route_and_subtracted() -> None:
    before = parse(METRICS)
    after = parse(
        METRICS.replace('status="201"} 10.0', 'status="201"} 25.0').replace('captured"} 4.0', 'captured"} 9.0')
    )
    assert after.statuses(handler=bench_measure.API_HANDLER, method="POST") == {201: 25, 503: 2}
    assert after.statuses_since(before, handler=bench_measure.API_HANDLER, method="POST") == {201: 15}
    assert after.statuses_since(before, handler=bench_measure.API_HANDLER, method="GET") == {}
    assert after.since(before, "shop_payments_total", status="captured") == 5
    assert after.value("shop_payments_total") == 10


def _measurement(name: str, ok: int, *, cpu: float = 0.1) -> Measurement:
    result = wrk_report.WrkResult(
        requests=ok,
        seconds=10.0,
        statuses={200: ok},
        socket_errors=0,
        timeouts=0,
        generator_cpu_seconds=cpu,
        p50_ms=1.0,
        p99_ms=2.0,
        max_ms=3.0,
        connections=32,
    )
    return bench_measure.from_wrk(name, result, 200, {200: ok})


def _burst(connections: int, captured: int, **changes: object) -> Burst:
    checkout = wrk_report.parse_report(
        'WRK_JSON {"requests": 10, "duration_us": 10000000, "statuses": {"201": 10}, "socket_errors": 0,'
        ' "timeouts": 0, "p50_us": 1000, "p99_us": 2000, "max_us": 3000, "retry_after_503": 4, "bare_503": 0}'
    )
    result = Burst(
        connections=connections,
        seconds=10,
        cold_start_s=2.0,
        browse_rate=300,
        honour_retry_after=True,
        checkout=bench_measure.from_wrk("checkouts", checkout, 201),
        browse=None,
        captured=captured,
        captured_per_second=captured / checkout.seconds,
        captured_after=captured,
        checkout_statuses={201: captured, 503: 4},
        browse_statuses={200: 3000},
        payment_statuses={201: captured},
        readiness={"payment": Probe(polls=50)},
        invariants=[InvariantResult("stock_conserved", "", True, "ok")],
        cpu_ms_per_captured={"total": 12.5, "storefront": 5.0, "payment": 7.5},
        cpu_idle_ms_per_second={"storefront": 1.0, "payment": 2.0},
    )
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def test_ratios_are_against_the_ceiling_of_the_same_report_and_each_bar_gets_a_line() -> None:
    ceiling = _measurement("bare FastAPI, same bytes", 10_000)
    report = BenchReport(cores=2, connections=32, seconds=10.0)
    report.measurements = bench_measure.against(
        ceiling,
        [
            _measurement("GET /products?limit=20 (catalog)", 6_000),
            _measurement("GET /api/products?limit=20 (storefront)", 3_000, cpu=9.5),
        ],
    )
    report.bursts = [_burst(128, 2000), _burst(512, 1000, checkout_statuses={201: 1000, 502: 1})]
    report.verdicts = bench_report.verdicts(report)
    lines = [bench_report.line(v) for v in report.verdicts]
    assert lines == [
        "PASS  GET /products?limit=20 (catalog) at 0.60x the bare ceiling (bar 0.5x)",
        "FAIL  GET /api/products?limit=20 (storefront) at 0.30x the bare ceiling (bar 0.33x)"
        " (a generator was saturated: the ratio is not the server's)",
        "PASS  burst 128: no 5xx other than 503 (storefront counted none)",
        "PASS  burst 128: no answer over 10 s (0 later, the others within 3.0 ms)",
        "PASS  burst 128: at least 150 captured/s (200.0)",
        "PASS  burst 128: payment /ready 200 throughout (0 of 50 polls not 200)",
        "FAIL  burst 512: no 5xx other than 503 (storefront counted 502:1)",
        "PASS  burst 512: every 503 carries Retry-After (4 with, 0 without)",
        "FAIL  burst 512: captured/s not lower than at 128 (100.0 vs 200.0)",
        "PASS  burst 512: payment /ready 200 throughout (0 of 50 polls not 200)",
        "PASS  burst 128: invariants hold (1 checked)",
        "PASS  burst 512: invariants hold (1 checked)",
    ]
    assert [(v.bar, v.burst) for v in report.verdicts] == [
        ("catalog-read-ratio", None),
        ("storefront-read-ratio", None),
        ("sale-no-5xx-but-503", 128),
        ("sale-answer-bound", 128),
        ("sale-captured-rate", 128),
        ("sale-payment-ready", 128),
        ("sale-no-5xx-but-503", 512),
        ("sale-retry-after", 512),
        ("sale-captured-not-lower", 512),
        ("sale-payment-ready", 512),
        ("sale-invariants", 128),
        ("sale-invariants", 512),
    ]
    written = json.loads(report.model_dump_json())
    assert written["measurements"][1]["ratio"] == 0.6
    assert written["measurements"][1]["ceiling"] == "bare FastAPI, same bytes"
    assert BenchReport.model_validate(written) == report, "what --json writes reads back as the same report"
    assert not report.invariants_failed
    rendered = bench_report.render(report)
    assert "generator saturated" in rendered
    assert "SATURATED" in rendered
    assert "\n".join(lines) in rendered
    assert "CPU ms per captured checkout (less 3.0 ms/s idle): total 12.5, storefront 5.0, payment 7.5" in rendered


def test_a_readiness_flip_or_a_failed_invariant_is_a_fail() -> None:
    flipped = _burst(128, 2000, readiness={"payment": Probe(polls=50, not_ready=3, first_failure="x")})
    broken = InvariantResult("one_payment_per_key", "", False, "1 violation(s)")
    report = BenchReport(cores=2, connections=32, seconds=10.0, bursts=[flipped])
    flipped.invariants = [broken]
    lines = [bench_report.line(v) for v in bench_report.verdicts(report)]
    assert "FAIL  burst 128: payment /ready 200 throughout (3 of 50 polls not 200; first x)" in lines
    assert "FAIL  burst 128: invariants failed: one_payment_per_key" in lines
    assert report.invariants_failed


def _bench(args: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(["-m", "shop_load.bench", *args], timeout=timeout, **env)


needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


@pytest.mark.process
@needs_wrk
def test_a_short_bench_measures_against_its_own_ceilings_and_plays_the_sale(tmp_path: Path) -> None:
    """Everything of `make bench` at a small scale: own PostgreSQL, stock and services; reads, writes, two bursts."""
    out = tmp_path / "bench.json"
    args = [
        "--seconds", "1", "--connections", "4", "--customers", "4",
        "--burst", "8", "16", "--burst-seconds", "2", "--browse-rate", "20", "--browse-connections", "2",
        "--json", str(out),
    ]  # fmt: skip
    result = _bench(args, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    report = json.loads(out.read_text())
    BenchReport.model_validate(report)
    assert (report["version"], report["kind"]) == (3, "bench")
    print(result.stdout)

    measured = {m["name"]: m for m in report["measurements"]}
    assert list(measured) == [
        "bare FastAPI, same bytes",
        "GET /products?limit=20 (catalog)",
        "GET /api/products?limit=20 (storefront)",
        "pgbench: payment + item in one transaction",
        "POST /payments (payment)",
        "POST /api/payments (storefront)",
    ]
    assert [m["generator"] for m in measured.values()] == ["wrk"] * 3 + ["pgbench"] + ["wrk"] * 2
    reads_ceiling, writes_ceiling = measured["bare FastAPI, same bytes"], measured[bench_measure.PGBENCH_NAME]
    for name, ceiling in [
        ("GET /products?limit=20 (catalog)", reads_ceiling),
        ("GET /api/products?limit=20 (storefront)", reads_ceiling),
        ("POST /payments (payment)", writes_ceiling),
        ("POST /api/payments (storefront)", writes_ceiling),
    ]:
        m = measured[name]
        assert m["ceiling"] == ceiling["name"]
        assert m["ratio"] == pytest.approx(m["throughput"] / ceiling["throughput"])
        assert m["statuses_from"] == "server metrics"
        assert sum(m["statuses"].values()) > 0, m
    assert reads_ceiling["ok"] > 0
    assert writes_ceiling["ok"] > 0

    assert [b["connections"] for b in report["bursts"]] == [8, 16]
    for burst in report["bursts"]:
        assert burst["cold_start_s"] > 0
        assert burst["statuses_from"] == "server metrics"
        served = sum(burst["checkout_statuses"].values())
        assert served > 0
        assert served >= burst["checkout"]["requests"], "the server counts what wrk saw, and what it gave up on"
        assert burst["captured_after"] >= burst["captured"]
        assert burst["payments"].get("captured", 0) >= burst["checkout_statuses"].get("201", 0), "every 201 is stored"
        assert burst["readiness"]["payment"]["polls"] > 0
        assert {i["name"] for i in burst["invariants"]} == {
            "answered_payments_stored",
            "one_payment_per_key",
            "stock_conserved",
            "provider_charges_match",
        }
        assert all(i["ok"] for i in burst["invariants"]), burst["invariants"]
        spent = burst["cpu_ms_per_captured"]
        assert set(spent) == {"total", "storefront", "payment", "catalog", "users", "postgresql"}, "no launcher here"
        assert spent["total"] == pytest.approx(sum(ms for part, ms in spent.items() if part != "total"))
        assert spent["storefront"] > 0
        assert spent["payment"] > 0
        assert spent["postgresql"] > 0

    verdicts = report["verdicts"]
    assert {v["bar"] for v in verdicts} == set(get_args(Bar)), "every bar has its verdict"
    assert all(v["ok"] for v in verdicts if v["bar"] == "sale-invariants")
    assert "the bench's bars, from this run:" in result.stdout
    for verdict in verdicts:
        assert ("PASS" if verdict["ok"] else "FAIL") + "  " + verdict["text"] in result.stdout
    assert f"{os.cpu_count()} cores" in result.stdout


@pytest.mark.process
@needs_wrk
def test_the_reads_of_a_running_shop(real_shop: RealShop, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = [
        "--only", "reads", "--seconds", "1", "--connections", "4",
        "--storefront-url", real_shop.storefront.url, "--catalog-url", real_shop.catalog.url,
        "--payment-url", real_shop.payment.url, "--json", str(out),
    ]  # fmt: skip
    result = _bench(args, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [m["ceiling"] for m in report["measurements"]] == [
        None,
        "bare FastAPI, same bytes",
        "bare FastAPI, same bytes",
    ]
    assert report["bursts"] == []
    assert [v["bar"] for v in report["verdicts"]] == ["catalog-read-ratio", "storefront-read-ratio"]


def test_a_running_shops_sale_reads_its_inventory_with_make_runs_operator_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(OPERATOR, raising=False)
    monkeypatch.setenv("SHOP_DATA_DIR", str(tmp_path))
    options = bench.parse_args(["--storefront-url", "http://127.0.0.1:8080", "--database-url", "postgresql://x"])
    with pytest.raises(bench_shop.BenchError, match=f"no OPERATOR_CREDENTIAL in {tmp_path / 'credentials.env'}"):
        bench.running_operator(options)
    credentials = ensure_credentials(tmp_path / "credentials.env")
    assert bench.running_operator(options) == ops.Operator(credentials[OPERATOR], str(tmp_path / "credentials.env"))
    monkeypatch.setenv(OPERATOR, "given-by-hand-0123456789")
    assert bench.running_operator(options).credential == "given-by-hand-0123456789"


def test_the_bench_refuses_other_machines() -> None:
    with pytest.raises(bench_shop.BenchError, match="only targets this machine"):
        bench_shop.require_loopback("http://example.com:8080")


def test_without_wrk_the_bench_says_how_to_install_it_and_exits_2(tmp_path: Path) -> None:
    result = _bench(["--seconds", "1"], timeout=60, PATH=str(tmp_path))
    assert result.returncode == 2
    assert "apt-get install wrk" in result.stderr
