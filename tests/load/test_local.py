"""The drill without a cluster: the local payment processes' probe answers → marks, which processes it follows
(make run's run.json), and the faults it sends one (to shopkit's chaos router in process)."""

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest

from shop_devtools.chaos import ChaosRefused
from shop_devtools.credentials import OPERATOR, ensure_credentials
from shop_devtools.runstate import Process, RunState
from shop_load.core import drill_args, ops
from shop_load.targets import choose
from shop_load.targets.local import LocalPayment, ProbeTracker
from shopkit import ServiceSettings, create_app
from tests.conftest import client_for, running

CHAOS_TOKEN = "local-drill-chaos-token-0123456789"


def test_a_leak_is_seen_as_unready_then_liveness_failing_then_ready_after_clearing() -> None:
    tracker = ProbeTracker()
    assert tracker.observe(0.0, 200, 200) == []
    unready = tracker.observe(1.0, 200, 503, ready_detail="memory over budget")
    assert [(m.kind, m.detail) for m in unready] == [("unready", "GET /ready answered 503 (memory over budget)")]
    liveness = tracker.observe(2.0, 503, 503)
    assert [m.kind for m in liveness] == ["liveness_failed"]
    assert tracker.observe(3.0, 503, 503) == []
    assert [m.kind for m in tracker.observe(9.0, 200, 200)] == ["ready_again"]
    assert tracker.unready_seen
    assert tracker.ready


def test_a_hang_is_seen_as_probes_timing_out() -> None:
    tracker = ProbeTracker()
    marks = tracker.observe(1.0, None, None, "timed out", "timed out")
    assert [(m.kind, m.detail) for m in marks] == [
        ("liveness_failed", "GET /healthz no answer: timed out"),
        ("unready", "GET /ready no answer: timed out"),
    ]
    assert not tracker.gone


def test_a_crash_is_seen_as_the_process_gone() -> None:
    tracker = ProbeTracker()
    marks = tracker.observe(1.0, None, None, "connection refused", "connection refused")
    assert [m.kind for m in marks] == ["process_gone", "liveness_failed", "unready"]
    assert tracker.observe(2.0, None, None, "connection refused", "connection refused") == []


def test_the_local_drill_follows_every_replica_make_run_lists(tmp_path: Path) -> None:
    replicas = tuple(Process(f"payment-{n}", "payment", f"http://127.0.0.1:{9000 + n}", 1000 + n) for n in (1, 2))
    RunState(os.getpid(), (Process("storefront", "storefront", "http://127.0.0.1:9000", 999), *replicas)).write(
        tmp_path
    )
    options = drill_args.parse_args(["--local", "--fault", "crash", "--data-dir", str(tmp_path), "--chaos-token", "t"])
    target = choose.choose_target(options, lambda: 0.0)
    assert isinstance(target, choose.LocalTarget)
    assert [(r.name, r.url) for r in target.replicas] == [(r.name, r.url) for r in replicas]
    assert (target.name, target.launcher_pid) == ("payment-1", os.getpid())


def test_restarts_are_the_replicas_make_run_runs_a_new_process_for(tmp_path: Path) -> None:
    """From run.json's pids, not from the probes: a replica replaced between two polls still counts."""
    replicas = [Process(f"payment-{n}", "payment", f"http://127.0.0.1:{9000 + n}", 1000 + n) for n in (1, 2)]
    RunState(os.getpid(), tuple(replicas)).write(tmp_path)
    options = drill_args.parse_args(["--local", "--fault", "rollout", "--data-dir", str(tmp_path)])
    target = choose.choose_target(options, lambda: 0.0)
    assert isinstance(target, choose.LocalTarget)
    assert target.restarts() == 0
    RunState(os.getpid(), (replicas[0], Process("payment-2", "payment", replicas[1].url, 2002))).write(tmp_path)
    assert not any(replica.tracker.gone for replica in target.replicas), "no poll saw the port closed"
    assert target.restarts() == 1
    target.replicas[1].tracker.ready = False
    assert target.restarts() == 0, "a new process counts once it is ready"


def test_a_crash_is_over_once_make_run_started_the_replica_again_not_after_a_flap(tmp_path: Path) -> None:
    """A probe that timed out under load during warm-up (unready, then ready again) is no recovery from the crash
    that follows: the fault phase ends once run.json names a new, ready process for the crashed replica."""
    replicas = [Process(f"payment-{n}", "payment", f"http://127.0.0.1:{9000 + n}", 1000 + n) for n in (1, 2)]
    RunState(os.getpid(), tuple(replicas)).write(tmp_path)
    options = drill_args.parse_args(["--local", "--fault", "crash", "--data-dir", str(tmp_path), "--chaos-token", "t"])
    target = choose.choose_target(options, lambda: 0.0)
    assert isinstance(target, choose.LocalTarget)
    crashed = target.payment.tracker
    crashed.observe(1.0, None, None, "timed out", "timed out")
    crashed.observe(2.0, 200, 200)
    assert not target.recovered(), "a flap before the crash"
    crashed.observe(3.0, None, None, "connection refused", "connection refused")
    again = Process("payment-1", "payment", replicas[0].url, 2001, restarts=1, last_reason="exited with code 70")
    RunState(os.getpid(), (again, replicas[1])).write(tmp_path)
    assert not target.recovered(), "started again, not ready yet"
    crashed.observe(6.0, 200, 200)
    assert target.recovered()
    restarted = [(m.kind, m.pod, m.detail) for m in target.marks() if m.kind == "restarted"]
    assert restarted == [("restarted", "payment-1", "make run started payment-1 again: exited with code 70")]


async def test_a_restart_is_marked_when_make_run_starts_the_new_process_in_any_phase(tmp_path: Path) -> None:
    """Not only while the fault phase asks whether it is over: a liveness restart that comes later (the drill
    clearing or waiting) is marked as run.json names the new process, before it can be ready, so Ready again is
    found after it."""
    url = "http://127.0.0.1:9"  # the discard port: the probes are refused, the replica never looks ready
    RunState(os.getpid(), (Process("payment", "payment", url, 1001),)).write(tmp_path)
    options = drill_args.parse_args(["--local", "--fault", "leak", "--data-dir", str(tmp_path), "--chaos-token", "t"])
    target = choose.choose_target(options, time.monotonic)
    assert isinstance(target, choose.LocalTarget)
    async with httpx.AsyncClient() as client:
        target.start(client)
        started = time.monotonic()
        again = Process("payment", "payment", url, 2002, restarts=1, last_reason="failed liveness")
        RunState(os.getpid(), (again,)).write(tmp_path)
        await asyncio.sleep(0.6)
        target.stop()
        await asyncio.gather(*target.tasks)
    restarted = [mark for mark in target.marks() if mark.kind == "restarted"]
    assert [mark.detail for mark in restarted] == ["make run started payment again: failed liveness"]
    assert restarted[0].t - started < 0.5


def test_locally_the_operators_credential_is_make_runs_unless_one_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(OPERATOR, raising=False)
    RunState(os.getpid(), (Process("payment", "payment", "http://127.0.0.1:9001", 1001),)).write(tmp_path)
    options = drill_args.parse_args(["--local", "--fault", "rollout", "--data-dir", str(tmp_path)])
    target = choose.choose_target(options, lambda: 0.0)
    path = tmp_path / "credentials.env"
    with pytest.raises(drill_args.DrillError, match=f"no operator credential for the storefront's /ops/ in {path}"):
        choose.find_operator(options, target)
    credentials = ensure_credentials(path)  # what make run writes at its start
    assert choose.find_operator(options, target) == ops.Operator(credentials[OPERATOR], str(path))
    assert choose.find_operator(options, None) == ops.Operator(credentials[OPERATOR], str(path)), "--check"

    given = tmp_path / "elsewhere.env"
    given.write_text(f"{OPERATOR}=from-a-file-given-0123\n")
    with_file = drill_args.parse_args(["--local", "--data-dir", str(tmp_path), "--credentials", str(given)])
    assert choose.find_operator(with_file, target).credential == "from-a-file-given-0123"
    monkeypatch.setenv(OPERATOR, "from-the-environment-0123")
    assert choose.find_operator(with_file, target).credential == "from-the-environment-0123"


def test_a_run_json_whose_launcher_is_gone_is_not_followed(tmp_path: Path) -> None:
    beyond_pid_max = 2**22 + 7
    RunState(beyond_pid_max, (Process("payment-1", "payment", "http://127.0.0.1:9001", 1),)).write(tmp_path)
    assert RunState.read(tmp_path) is None
    options = drill_args.parse_args(["--local", "--fault", "rollout", "--data-dir", str(tmp_path)])
    with pytest.raises(drill_args.DrillError, match="needs make run's launcher"):
        choose.choose_target(options, lambda: 0.0)


def test_the_database_fault_needs_a_cluster(tmp_path: Path) -> None:
    options = drill_args.parse_args(["--local", "--fault", "database", "--data-dir", str(tmp_path)])
    with pytest.raises(drill_args.DrillError, match="needs a cluster"):
        choose.choose_target(options, lambda: 0.0)


async def test_the_local_drill_checks_injects_and_clears_through_the_chaos_api() -> None:
    app = create_app(ServiceSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN), title="payment", routers=[])
    async with running(app), client_for(app, "payment") as client:
        payment = LocalPayment("http://payment", CHAOS_TOKEN, lambda: 1.0, "payment-1")
        await payment.check(client)
        assert await payment.inject(client, "unready", None) == "POST /chaos/unready"
        assert (await client.get("/ready")).status_code == 503
        assert await payment.clear(client)
        assert (await client.get("/ready")).status_code == 200
        assert [(m.kind, m.pod, m.detail) for m in payment.marks] == [
            ("injected", "payment-1", "POST /chaos/unready"),
            ("fault_cleared", "payment-1", "DELETE /chaos"),
        ]
        wrong = LocalPayment("http://payment", "wrong", lambda: 1.0)
        with pytest.raises(ChaosRefused, match=r"refused the chaos token \(403\)"):
            await wrong.check(client)
        assert not await wrong.clear(client)
        assert wrong.marks == []


async def test_the_local_drill_says_chaos_is_disabled() -> None:
    app = create_app(ServiceSettings(), title="payment", routers=[])
    async with running(app), client_for(app, "payment") as client:
        with pytest.raises(ChaosRefused, match=r"chaos is disabled at http://payment .*CHAOS_ENABLED=true"):
            await LocalPayment("http://payment", CHAOS_TOKEN, lambda: 1.0).check(client)
