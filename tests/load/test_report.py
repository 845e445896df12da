"""The drill's report and invariants as pure functions, and its PNG."""

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from shop_devtools.workspace import repository_root
from shop_load.core.customers import Customer, Shoppers
from shop_load.core.drill_args import parse_args
from shop_load.core.records import (
    Checkout,
    CounterSample,
    InvariantResult,
    Mark,
    RequestRecord,
    WrkBrowsing,
    WrkResult,
    WrkSegment,
)
from shop_load.drill import results, run
from shop_load.invariants.checks import check_answered_payments, check_one_payment_per_key, check_stock
from shop_load.invariants.ledger import Ledger, Observed, evaluate
from shop_load.report import plot, schema
from shop_load.report.build import build_report
from shop_load.report.model import DrillReport, Latency, ReportError, Settings, Timeline, read_report
from shop_load.report.text import compare, summary
from shop_load.report.timeline import counts_between, cumulative_at, latency_phases, per_second, percentile, timeline
from shop_load.targets.choose import LocalTarget
from shop_load.targets.local import LocalPayment

PAY = "POST /api/payments"


def checkout(key: str, outcome: str, payment_id: str | None, customer: int = 0, status: int | None = None) -> Checkout:
    statuses = {"captured": 201, "declined": 402, "out_of_stock": 409}
    return Checkout(
        key,
        customer,
        {"items": [{"sku": "KB-ERGO-01", "quantity": 1}], "card_number": "4242424242424242"},
        1.0,
        outcome,
        status or statuses.get(outcome),
        payment_id,
        1,
    )


def payment(payment_id: str, status: str) -> dict[str, Any]:
    return {"id": payment_id, "status": status, "amount_cents": 14900, "currency": "EUR"}


def declined_problem(payment_id: str) -> dict[str, Any]:
    return {
        "type": "https://resilient-shop.dev/problems/payment-declined",
        "status": 402,
        "payment": payment(payment_id, "declined"),
    }


INVENTORY = [
    {"sku": "KB-ERGO-01", "stock": 40, "held": 0, "sold": 0},
    {"sku": "MS-VERT-02", "stock": 80, "held": 0, "sold": 0},
]


def consistent() -> tuple[Ledger, Observed]:
    """Three checkouts: captured, declined, and one whose customer gave up and that the check finished."""
    checkouts = [
        checkout("k-1", "captured", "p-1"),
        checkout("k-2", "declined", "p-2"),
        checkout("k-3", "failed", None, status=503),
        checkout("k-4", "out_of_stock", None),
    ]
    ledger = Ledger(
        "http://shop", "2026-11-25T14:00:00+00:00", 300, [Customer("a@example.com", "t")], checkouts, INVENTORY
    )
    observed = Observed(
        fetched={"k-1": (200, payment("p-1", "captured")), "k-2": (200, payment("p-2", "declined"))},
        replays={
            "k-1": (201, payment("p-1", "captured")),
            "k-2": (402, declined_problem("p-2")),
            "k-3": (201, payment("p-3", "captured")),
        },
        listed={0: ["p-3", "p-2", "p-1"]},
        final_inventory=[
            {"sku": "KB-ERGO-01", "stock": 38, "held": 0, "sold": 2},
            {"sku": "MS-VERT-02", "stock": 80, "held": 0, "sold": 0},
        ],
        elapsed_seconds=60,
    )
    return ledger, observed


def test_every_invariant_holds_for_a_consistent_shop() -> None:
    ledger, observed = consistent()
    results = evaluate(ledger, observed)
    assert [(r.name, r.ok) for r in results] == [
        ("answered_payments_stored", True),
        ("one_payment_per_key", True),
        ("stock_conserved", True),
    ]


def test_a_payment_changed_behind_the_api_breaks_answered_payments_stored() -> None:
    ledger, observed = consistent()
    observed.fetched["k-1"] = (200, payment("p-1", "declined"))
    result = check_answered_payments(ledger.checkouts, observed.fetched)
    assert not result.ok
    assert result.detail == "1 violation(s): payment p-1 (key k-1) was answered captured but is stored as declined"


def test_a_lost_payment_breaks_answered_payments_stored() -> None:
    ledger, observed = consistent()
    observed.fetched["k-2"] = (404, {"status": 404})
    assert not check_answered_payments(ledger.checkouts, observed.fetched).ok


def test_a_key_with_a_second_payment_breaks_one_payment_per_key() -> None:
    ledger, observed = consistent()
    observed.listed[0].append("p-9")  # a payment no key answers with: a key was charged twice
    result = check_one_payment_per_key(ledger.checkouts, observed.replays, observed.listed)
    assert not result.ok
    assert "p-9" in result.detail


def test_a_replay_answering_another_payment_breaks_one_payment_per_key() -> None:
    ledger, observed = consistent()
    observed.replays["k-1"] = (201, payment("p-7", "captured"))
    observed.listed[0].append("p-7")
    result = check_one_payment_per_key(ledger.checkouts, observed.replays, observed.listed)
    assert not result.ok
    assert "key k-1 sent again gave payment p-7" in result.detail


def test_a_key_still_in_doubt_breaks_one_payment_per_key() -> None:
    ledger, observed = consistent()
    observed.replays["k-3"] = (503, {"status": 503})
    assert not check_one_payment_per_key(ledger.checkouts, observed.replays, observed.listed).ok


def test_stock_that_appears_or_vanishes_breaks_stock_conserved() -> None:
    final = [{"sku": "KB-ERGO-01", "stock": 38, "held": 0, "sold": 1}, INVENTORY[1]]
    result = check_stock(INVENTORY, final, elapsed_seconds=60, reservation_ttl_seconds=300)
    assert not result.ok
    assert result.detail == "1 violation(s): KB-ERGO-01: stock 38 + held 0 + sold 1 = 39, was 40"


def test_held_stock_passes_only_while_younger_than_the_reservation_ttl() -> None:
    final = [{"sku": "KB-ERGO-01", "stock": 38, "held": 1, "sold": 1}, INVENTORY[1]]
    young = check_stock(INVENTORY, final, elapsed_seconds=60, reservation_ttl_seconds=300)
    assert young.ok
    assert "1 units still held" in young.detail
    old = check_stock(INVENTORY, final, elapsed_seconds=400, reservation_ttl_seconds=300)
    assert not old.ok
    assert "did not expire" in old.detail


def test_the_ledger_round_trips_through_json(tmp_path: Path) -> None:
    ledger, _ = consistent()
    ledger.save(tmp_path / "ledger.json")
    assert Ledger.load(tmp_path / "ledger.json") == ledger


def records() -> list[RequestRecord]:
    """Two checkouts a second for 30 s; the ones sent in 10-15 s fail after 5 s (a dead pod)."""
    rows = []
    for tenth in range(300):
        t = tenth / 10
        if tenth % 5:
            rows.append(RequestRecord(t, "GET /api/products/{sku}", 200, 5.0, True))
        elif 10 <= t < 15:
            rows.append(RequestRecord(t, PAY, 503, 5000.0, False))
        else:
            rows.append(RequestRecord(t, PAY, 201, 100.0 + t, True))
    return rows


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(v) for v in range(1, 101)], 99) == 99.0


def shopping(**recorded: Any) -> Shoppers:
    """The drill's customers as they were when the load stopped: `records()` and what else is given."""
    return Shoppers("http://shop", lambda: 0.0, records=records(), **recorded)


def test_per_second_counts_and_latencies() -> None:
    rows = per_second(shopping(), 30.0)
    assert len(rows) == 30
    assert rows[3].model_dump() == {
        "second": 3,
        "sent": 10,
        "succeeded": 10,
        "failed": 0,
        "p50_ms": 5.0,
        "p99_ms": 103.5,
        "checkouts_started": 0,
        "checkouts_not_started": 0,
        "checkouts_late": 0,
        "checkout_requests": 2,
        "checkout_ok": 2,
        "checkout_failed": 0,
        "checkout_p50_ms": 103.0,
        "checkout_p99_ms": 103.5,
        "browse_ok": None,
        "browse_failed": None,
        "client_lag_ms": None,
    }
    assert rows[12].failed == 2
    assert rows[12].checkout_failed == 2
    assert rows[12].checkout_p99_ms == 5000.0


def browse_samples() -> list[CounterSample]:
    """The storefront's count of GETs, read about once a second: 300/s, of which 10/s are 503 in 10-15 s."""
    samples, ok, shed = [], 0.0, 0.0
    for second in range(31):
        samples.append(CounterSample(float(second), {200: ok, 503: shed}))
        ok, shed = (ok + 290, shed + 10) if 10 <= second < 15 else (ok + 300, shed)
    return samples


def test_per_second_has_the_checkouts_started_and_the_browses_the_server_counted() -> None:
    checkouts = [checkout(f"k-{i}", "captured", f"p-{i}") for i in range(3)]
    for index, started in enumerate((2.1, 2.9, 7.5)):
        checkouts[index].t = started
    rows = per_second(shopping(checkouts=checkouts, not_started=[7.2]), 30.0, browse_samples())
    assert [rows[2].checkouts_started, rows[7].checkouts_started, rows[7].checkouts_not_started] == [2, 1, 1]
    assert rows[5].browse_ok == 300.0
    assert rows[5].browse_failed == 0.0
    assert rows[12].browse_ok == 290.0
    assert rows[12].browse_failed == 10.0
    assert len(rows) == 30
    late = per_second(shopping(), 30.0, [CounterSample(t + 0.6, c.counts) for t, c in enumerate(browse_samples())])
    assert late[0].browse_ok is None  # less than half of the second sampled
    assert late[1].browse_ok is not None


def test_server_counts_are_interpolated_between_samples() -> None:
    samples = [CounterSample(1.0, {200: 0.0}), CounterSample(3.0, {200: 100.0, 503: 10.0})]
    assert cumulative_at(samples, 0.5) is None
    assert cumulative_at(samples, 2.0) == {200: 50.0, 503: 5.0}
    assert counts_between(samples, 0.0, 10.0) == {200: 100.0, 503: 10.0}  # clamped to the sampled time
    assert counts_between([], 0.0, 1.0) is None


def test_latency_is_split_at_the_injection_and_at_recovery() -> None:
    phases = latency_phases(records(), injected=10.0, recovered=15.0)
    assert phases.before.requests == 20
    assert phases.during == Latency(requests=10, failed=10, p50_ms=5000.0, p99_ms=5000.0)
    assert phases.after.failed == 0
    assert phases.after.p50_ms == 122.0


def wrk_segment(phase: str, start: float, end: float, p99: float, shed: int = 0) -> WrkSegment:
    requests = round(300 * (end - start))
    result = WrkResult(
        requests=requests,
        seconds=end - start,
        statuses={200: requests - shed, **({503: shed} if shed else {})},
        socket_errors=0,
        timeouts=0,
        p50_ms=4.0,
        p99_ms=p99,
        max_ms=p99 * 2,
        generator_cpu_seconds=0.5,
    )
    return WrkSegment(phase=phase, start_s=start, end_s=end, result=result)


def wrk_summary() -> WrkBrowsing:
    segments = [
        wrk_segment("before", 0.0, 10.0, 20.0),
        wrk_segment("during", 10.0, 24.0, 80.0, shed=50),
        wrk_segment("after", 24.0, 30.0, 25.0),
    ]
    return WrkBrowsing(
        url="http://shop",
        rate=300.0,
        connections=150,
        paths=85,
        requests=sum(s.result.requests for s in segments if s.result),
        seconds=30.0,
        statuses={200: 8950, 503: 50},
        socket_errors=0,
        timeouts=0,
        retry_after_503=47,
        bare_503=3,
        generator_cpu_seconds=1.5,
        segments=segments,
    )


def settings(profile: str) -> Settings:
    config = parse_args(["--profile", profile, "--url", "http://shop", "--rate", "2", "--browse-rate", "300"])
    return Settings(
        **config.model_dump(exclude={"browse_connections", "chaos_token"}),
        mode="kubernetes",
        fault_phase_s=180.0,
        fault_body={"mb_per_second": 3.0},
        orchestrator="kubernetes",
        payment_urls=[],
        browse_connections=150,
    )


def test_the_report_records_the_options_and_what_they_came_to_but_never_the_chaos_token() -> None:
    argv = ["--chaos-token", "a-secret-token", "--credentials", "ops.env", "--fault", "crash", "--browse-rate", "0"]
    replicas = [LocalPayment(f"http://127.0.0.1:{port}", "a-secret-token", lambda: 0.0) for port in (9001, 9002)]
    alone = results.drill_settings(parse_args(argv), LocalTarget(replicas, "crash"), None)
    assert alone.orchestrator is None, "payment processes make run did not start: nothing restarts them"
    recorded = results.drill_settings(parse_args(argv), LocalTarget(replicas, "crash", launcher_pid=1), None)
    assert (recorded.mode, recorded.fault_phase_s, recorded.fault_body, recorded.orchestrator) == (
        "local",
        30.0,
        None,
        "make run",
    )
    assert recorded.payment_urls == ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
    written = recorded.model_dump_json()
    assert "a-secret-token" not in written
    assert (json.loads(written)["credentials"], json.loads(written)["fault"]) == ("ops.env", "crash"), "a path is shown"
    assert Settings.model_validate_json(written) == recorded.model_copy(update={"chaos_token": None})


def report(
    profile: str = "resilient",
    invariants: list[InvariantResult] | None = None,
    autoscaler: dict[str, Any] | None = None,
) -> DrillReport:
    marks = [
        Mark(10.0, "injected", "payment-x", "POST /chaos/leak"),
        Mark(12.0, "unready", "payment-x"),
        Mark(16.0, "liveness_failed", "payment-x"),
        Mark(20.0, "oom_killed", "payment-x", "payment: OOMKilled, exit code 137"),
        Mark(20.5, "restarted", "payment-x"),
        Mark(24.0, "ready_again", "payment-x"),
        Mark(13.0, "unready", "payment-other"),  # another pod: not the timeline of the faulted one
    ]
    checkouts = [checkout("k-1", "captured", "p-1"), checkout("k-2", "failed", None)]
    shoppers = shopping(checkouts=checkouts, not_started=[14.5], late=[15.1, 15.3])
    return build_report(
        settings=settings(profile),
        shoppers=shoppers,
        marks=marks,
        replicasets=[],
        invariants=invariants if invariants is not None else [InvariantResult("stock_conserved", "", True, "ok")],
        end=30.0,
        target_pod="payment-x",
        restarts=1,
        notes=[],
        started_at="2026-11-25T14:00:00+00:00",
        load_window=(0.0, 30.0),
        browsing=wrk_summary(),
        browse_samples=browse_samples(),
        client_lag=[(t / 10, 1200.0 if t == 150 else 2.0) for t in range(300)],
        client_cpu_seconds=1.5,
        autoscaler=autoscaler,
    )


def test_the_report_has_every_field() -> None:
    built = report()
    assert built.timeline.model_dump() == {
        "injected": 10.0,
        "unready": 12.0,
        "liveness_failed": 16.0,
        "oom_killed": 20.0,
        "killing": None,
        "restarted": 20.5,
        "fault_cleared": None,
        "ready_again": 24.0,
    }
    assert built.restarts == 1
    assert built.requests.sent == 300
    assert built.requests.failed == 10
    assert built.requests.statuses == {"200": 240, "201": 50, "503": 10}
    assert built.requests.by_endpoint[PAY].model_dump() == {
        "sent": 60,
        "succeeded": 50,
        "failed": 10,
        "statuses": {"201": 50, "503": 10},
    }
    assert len(built.requests.per_second) == 30
    assert built.checkouts.success_rate == 0.5
    assert set(dict(built.latency_ms)) == {"before", "during", "after"}
    assert built.ok is True
    assert (built.version, built.kind) == (3, "drill")
    assert DrillReport.model_validate_json(built.model_dump_json()) == built, "the JSON holds all of it"
    text = summary(built)
    assert "OOMKilled" in text
    assert "20.0 s  (+10.0 s)" in text
    assert "checkout success rate                 50.00 %" in text


@pytest.mark.parametrize(
    ("orchestrator", "kills", "restarts"),
    [("kubernetes", True, True), ("container engine", True, True), ("make run", False, True), (None, False, False)],
)
def test_the_summary_shows_the_kills_and_restarts_its_orchestrator_can_show(
    orchestrator: str | None, kills: bool, restarts: bool
) -> None:
    """The kubelet and the engine report kills (an OOM kill, the kubelet's) and restarts; make run restarts (its
    run.json names a new process) but kills nothing by itself; without an orchestrator neither happens."""
    built = report()
    text = summary(
        built.model_copy(update={"settings": built.settings.model_copy(update={"orchestrator": orchestrator})})
    )
    assert ("OOMKilled" in text) is kills
    assert ("\nrestarted " in text) is restarts
    assert ("(no orchestrator)" in text) is (orchestrator is None)


def test_the_report_says_the_load_it_ran() -> None:
    built = report()
    load = built.load
    assert load.seconds == 30.0
    assert load.checkouts.model_dump() == {
        "target_per_second": 2.0,
        "started": 2,
        "per_second": 0.1,
        "not_started": 1,
        "max_in_flight": 256,
        "requests": 60,
        "retries": 58,
        "answered_first_try": 1,
    }
    assert load.client.model_dump() == {"cpu_seconds": 1.5, "lag_p99_ms": 2.0, "lag_max_ms": 1200.0, "late_ticks": 2}
    assert load.browses is not None
    server, wrk = load.browses.server, load.browses.wrk
    assert server is not None
    assert server.requests == 9000  # 30 s of 300/s, from the samples; not from wrk
    assert (server.ok, server.failed, server.statuses) == (8950, 50, {"200": 8950, "503": 50})
    assert server.per_second == 300.0
    assert wrk is not None
    assert wrk.segments[1].phase == "during"
    assert built.browse_latency_ms is not None
    assert built.browse_latency_ms.during == Latency(requests=4200, failed=50, p50_ms=4.0, p99_ms=80.0)
    text = summary(built)
    assert text.splitlines()[0].endswith("2.0 checkouts/s + 300.0 browses/s, 30 s")
    assert "checkouts started             2/s        0.1/s: 2 in 30.0 s; 1 not started at the bound of 256" in text
    assert "browses (storefront's count)  300/s      300/s: 9000 answered, 8950 ok, 50 failed (503: 50)" in text
    assert "wrk (the browsers)          150 conn.  9000 answers in 30.0 s" in text
    assert "wrk CPU 1.5 s; 503 without Retry-After: 3" in text
    assert (
        "the drill's own client                 CPU 1.5 s (5% of a core), loop lag p99 2 ms, max 1200 ms; "
        "2 ticks missed late" in text
    )
    rows = built.requests.per_second
    assert (rows[15].checkouts_late, rows[15].client_lag_ms, rows[16].client_lag_ms) == (2, 1200.0, 2.0)
    assert "during   28              10      122 ms  5000 ms  4200           50      4 ms  80 ms" in text


def test_ready_again_is_the_recovery_not_a_flap_while_the_fault_is_in() -> None:
    marks = [
        Mark(10.0, "injected"),
        Mark(11.0, "unready", None, "GET /ready timed out"),
        Mark(11.5, "ready_again"),
        Mark(14.0, "unready"),
        Mark(20.0, "fault_cleared"),
        Mark(21.0, "ready_again"),
    ]
    steps = timeline(marks, None)
    assert (steps.unready, steps.fault_cleared, steps.ready_again) == (11.0, 20.0, 21.0)
    assert timeline(marks[:3], None).ready_again == 11.5  # a hang that ended by itself
    assert timeline([Mark(10.0, "injected"), Mark(12.0, "ready_again")], None).ready_again is None


def test_the_report_shows_payments_replicas_when_an_hpa_scales_them() -> None:
    assert report().autoscaler is None
    assert "(HPA)" not in summary(report())
    hpa = {"name": "payment", "current_replicas": 4, "desired_replicas": 5, "min_replicas": 3, "max_replicas": 5}
    built = report(autoscaler=hpa)
    assert built.autoscaler is not None
    assert built.autoscaler.model_dump() == hpa
    assert json.loads(built.model_dump_json())["autoscaler"] == hpa
    rows = summary(built).splitlines()
    assert [row.split() for row in rows if "(HPA)" in row] == [["payment", "replicas", "(HPA)", "4/5,", "3-5"]]
    restarts = next(i for i, row in enumerate(rows) if row.startswith("restarts"))
    assert "(HPA)" in rows[restarts + 1], "in the timeline, under the restarts"


def test_a_failed_invariant_makes_the_report_not_ok() -> None:
    built = report(invariants=[InvariantResult("one_payment_per_key", "", False, "1 violation(s): ...")])
    assert built.ok is False
    assert "FAIL  one_payment_per_key" in summary(built)


def test_compare_puts_profiles_side_by_side() -> None:
    text = compare([report("resilient"), report("fragile")])
    header, _, *rows = text.splitlines()
    assert header.split() == ["resilient", "fragile"]
    assert any(row.startswith("checkout success rate") and row.count("50.00 %") == 2 for row in rows)
    assert any(row.startswith("browses per second (storefront)") and row.count("300/s") == 2 for row in rows)


def test_compare_reads_the_reports_and_refuses_another_version_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resilient, fragile = tmp_path / "drill-resilient.json", tmp_path / "drill-fragile.json"
    resilient.write_text(report("resilient").model_dump_json(indent=1))
    fragile.write_text(report("fragile").model_dump_json(indent=1))
    assert read_report(fragile, DrillReport) == report("fragile")
    with pytest.raises(SystemExit) as compared:
        run.main(["--compare", str(resilient), str(fragile)])
    assert compared.value.code == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["resilient", "fragile"]

    older = json.loads(fragile.read_text()) | {"version": 2}
    fragile.write_text(json.dumps(older))
    with pytest.raises(ReportError, match=r"drill-fragile.json: not a DrillReport of version 3 \(version: "):
        read_report(fragile, DrillReport)
    with pytest.raises(SystemExit) as refused:
        run.main(["--compare", str(resilient), str(fragile)])
    assert refused.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"shop-drill: {fragile}: not a DrillReport of version 3 (version: Input should be 3)\n"

    fragile.write_text(json.dumps(older | {"version": 3, "kind": "bench"}))
    with pytest.raises(ReportError, match=r"not a DrillReport of version 3 \(kind: Input should be 'drill'\)"):
        read_report(fragile, DrillReport)


def test_after_a_drill_the_other_profiles_report_is_compared_unless_of_another_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, ledger = parse_args(["--out", str(tmp_path), "--profile", "fragile"]), consistent()[0]
    other = tmp_path / "drill-resilient.json"
    other.write_text(report("resilient").model_dump_json())
    assert results.write_results(config, report("fragile"), ledger) == results.EXIT_OK
    printed = capsys.readouterr().out
    assert read_report(tmp_path / "drill-fragile.json", DrillReport) == report("fragile")
    assert [line.split() for line in printed.splitlines() if line.strip().startswith("resilient")] == [
        ["resilient", "fragile"]
    ], "the resilient column first"

    other.write_text(json.dumps(json.loads(other.read_text()) | {"version": 2}))
    results.write_results(config, report("fragile"), ledger)
    printed = capsys.readouterr().out
    assert f"\nnot compared: {other}: not a DrillReport of version 3 (version: Input should be 3)\n" in printed
    assert "checkouts started per second" not in printed, "no comparison"


def test_the_exit_status_is_the_invariants_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, ledger = parse_args(["--out", str(tmp_path)]), consistent()[0]
    broken = InvariantResult("one_payment_per_key", "", False, "1 violation(s): ...")
    assert results.write_results(config, report(invariants=[broken]), ledger) == results.EXIT_INVARIANT
    assert capsys.readouterr().out.endswith("\nINVARIANT FAILED: one_payment_per_key\n")
    assert results.write_results(config, report().model_copy(update={"invariants": None}), ledger) == results.EXIT_OK


def test_the_published_schema_is_what_the_models_say_and_a_report_fits_it() -> None:
    document = (repository_root() / schema.DOCUMENT).read_text(encoding="utf-8")
    assert document == schema.schema_text(), "run `make report-schema` and commit the result"
    validator = Draft202012Validator(json.loads(document))
    written = json.loads(report().model_dump_json())
    assert list(validator.iter_errors(written)) == []
    assert not validator.is_valid(written | {"kind": "bench"})
    assert not validator.is_valid(written | {"version": 2})
    assert not validator.is_valid(written | {"extra": 1})


def test_the_png_timeline_is_written(tmp_path: Path) -> None:
    path = plot.render(report(), tmp_path / "out" / "drill.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000


@pytest.mark.parametrize("steps", [{}, {"injected": 3.0}])
def test_the_png_copes_with_a_run_without_marks(tmp_path: Path, steps: dict[str, float]) -> None:
    built = report().model_copy(update={"timeline": Timeline(**steps)})
    assert plot.render(built, tmp_path / "drill.png").stat().st_size > 10_000
