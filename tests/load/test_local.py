"""Detection without an orchestrator: the local payment process's probe answers → marks. Pure."""

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
