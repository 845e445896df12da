"""The drill without a cluster: the local payment processes' probe answers → marks, and which processes it follows
(make run's run.json). Pure."""

import os
from pathlib import Path

import pytest

from shop_devtools.runstate import Process, RunState
from shop_load import drill_args, drill_targets
from shop_load.local import ProbeTracker


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
    target = drill_targets.choose_target(options, lambda: 0.0)
    assert isinstance(target, drill_targets.LocalTarget)
    assert [(r.name, r.url) for r in target.replicas] == [(r.name, r.url) for r in replicas]
    assert (target.name, target.launcher_pid) == ("payment-1", os.getpid())


def test_a_run_json_whose_launcher_is_gone_is_not_followed(tmp_path: Path) -> None:
    beyond_pid_max = 2**22 + 7
    RunState(beyond_pid_max, (Process("payment-1", "payment", "http://127.0.0.1:9001", 1),)).write(tmp_path)
    assert RunState.read(tmp_path) is None
    options = drill_args.parse_args(["--local", "--fault", "rollout", "--data-dir", str(tmp_path)])
    with pytest.raises(drill_args.DrillError, match="needs make run's launcher"):
        drill_targets.choose_target(options, lambda: 0.0)


def test_the_database_fault_needs_a_cluster(tmp_path: Path) -> None:
    options = drill_args.parse_args(["--local", "--fault", "database", "--data-dir", str(tmp_path)])
    with pytest.raises(drill_args.DrillError, match="needs a cluster"):
        drill_targets.choose_target(options, lambda: 0.0)
