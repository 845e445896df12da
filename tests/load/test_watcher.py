"""The Kubernetes watcher on recorded watch streams: pods, their Events and the ReplicaSet, as the API sends them
(`tests/load/fixtures/*.json`: each notification with the drill's time of arrival). Pure: no cluster needed."""

from datetime import datetime
from typing import Any

from shop_load.core.records import Mark
from shop_load.report.timeline import timeline
from shop_load.targets.watcher import PodWatcher
from tests.load.conftest import load_recording


def replay(recording: dict[str, Any]) -> tuple[PodWatcher, list[Mark], list[bool]]:
    """Feeds every notification to a watcher; returns it, the marks (with the drill's injection mark first) and
    whether the drill would have called the pod recovered after each notification."""
    watcher = PodWatcher(not_before=datetime.fromisoformat(recording["not_before"]))
    marks = [Mark(recording["injected_at"], "injected", recording["target"], "POST /chaos/...")]
    recovered = []
    for event in recording["events"]:
        marks += watcher.apply(event["received_at"], event["kind"], event["type"], event["object"])
        recovered.append(watcher.recovered(recording["target"]))
    return watcher, marks, recovered


def test_a_leaking_pod_goes_unready_fails_liveness_is_oomkilled_restarts_and_is_ready_again() -> None:
    recording = load_recording("payment_leak_oomkilled.json")
    watcher, marks, recovered = replay(recording)
    target = recording["target"]

    assert timeline(marks, target).model_dump() == {
        "injected": 10.0,
        "unready": 12.88,
        "liveness_failed": 17.52,
        "oom_killed": 23.41,
        "killing": None,
        "restarted": 24.02,
        "fault_cleared": None,
        "ready_again": 27.47,
    }
    kinds = [(m.kind, m.pod) for m in marks[1:]]
    assert kinds == [
        ("readiness_failed", target),
        ("unready", target),
        ("readiness_failed", target),  # the same Event again, count 2
        ("liveness_failed", target),
        ("liveness_failed", target),
        ("oom_killed", target),  # once: the same termination shows again as lastState after the restart
        ("restarted", target),
        ("ready_again", target),
    ]
    oom = next(m for m in marks if m.kind == "oom_killed")
    assert oom.detail == "payment: OOMKilled, exit code 137"
    assert "restartCount 0 → 1" in next(m for m in marks if m.kind == "restarted").detail
    assert watcher.restarts == 1
    assert [(s.t, s.desired, s.ready, s.available) for s in watcher.samples] == [
        (0.06, 3, 3, 3),
        (12.95, 3, 2, 2),
        (27.53, 3, 3, 3),
    ]
    assert recovered[-1] is True
    assert not any(recovered[:-1]), "recovered only once the pod is Ready again and the ReplicaSet whole"


def test_a_hung_pod_is_killed_by_liveness_and_restarted() -> None:
    recording = load_recording("payment_hang_liveness_killed.json")
    watcher, marks, recovered = replay(recording)
    target = recording["target"]

    steps = timeline(marks, target)
    assert steps.unready == 9.9
    assert steps.liveness_failed == 11.2
    assert steps.killing == 21.3
    assert steps.oom_killed is None
    assert steps.restarted == 52.1
    assert steps.ready_again == 55.4
    assert [m.detail for m in marks if m.kind == "terminated"] == ["payment: Error, exit code 137"]
    assert [m.detail for m in marks if m.kind == "killing"] == [
        "Container payment failed liveness probe, will be restarted"
    ]
    assert len([m for m in marks if m.kind == "liveness_failed"]) == 3
    assert watcher.restarts == 1
    assert recovered[-1] is True


def test_history_before_the_drill_and_the_initial_list_are_the_baseline() -> None:
    recording = load_recording("payment_leak_oomkilled.json")
    watcher = PodWatcher(not_before=datetime.fromisoformat(recording["not_before"]))
    initial = [e for e in recording["events"] if e["type"] == "ADDED" and e["received_at"] < 1]
    marks = [m for e in initial for m in watcher.apply(e["received_at"], e["kind"], e["type"], e["object"])]
    assert marks == []  # three pods, the ReplicaSet and a readiness failure from an hour before: no marks
    assert set(watcher.pods) == {
        "payment-6d5f9c7b8-x7k2p",
        "payment-6d5f9c7b8-4hq9z",
        "payment-6d5f9c7b8-m2w6r",
    }
    assert watcher.replicas_ready()


def test_a_relisted_pod_with_the_same_state_gives_no_new_marks() -> None:
    recording = load_recording("payment_leak_oomkilled.json")
    watcher, _, _ = replay(recording)
    last_pod = [e for e in recording["events"] if e["kind"] == "Pod"][-1]
    assert watcher.apply(99.0, "Pod", "ADDED", last_pod["object"]) == []  # a watch restarted after a 410
    last_event = [e for e in recording["events"] if e["kind"] == "Event"][-1]
    assert watcher.apply(99.0, "Event", "ADDED", last_event["object"]) == []


def test_a_deleted_pod_is_recovered_when_its_replicaset_is_whole_again() -> None:
    recording = load_recording("payment_leak_oomkilled.json")
    watcher = PodWatcher()
    for event in recording["events"][:4]:  # three pods and the ReplicaSet
        watcher.apply(event["received_at"], event["kind"], event["type"], event["object"])
    pod, rs = recording["events"][0]["object"], recording["events"][3]["object"]
    marks = watcher.apply(5.0, "Pod", "DELETED", pod)
    assert [m.kind for m in marks] == ["deleted", "unready"]
    short = {**rs, "status": {**rs["status"], "readyReplicas": 2}}
    watcher.apply(5.1, "ReplicaSet", "MODIFIED", short)
    assert not watcher.recovered(pod["metadata"]["name"])
    watcher.apply(9.0, "ReplicaSet", "MODIFIED", rs)
    assert watcher.recovered(pod["metadata"]["name"])


def test_a_pod_is_ready_by_the_rule_the_pick_uses() -> None:
    """Ready is `shop_devtools.cluster.pods.is_ready` (tests/k8s/test_cluster.py): a pod being deleted that still
    says Ready is out of traffic already, and is seen unready."""
    watcher = PodWatcher()
    watcher.apply(0.0, "Pod", "ADDED", pod("payment-a", True))
    terminating = pod("payment-a", True)
    terminating["metadata"]["deletionTimestamp"] = "2026-11-25T09:05:00Z"
    assert [mark.kind for mark in watcher.apply(1.0, "Pod", "MODIFIED", terminating)] == ["unready"]


def replicaset(name: str, desired: int, ready: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"replicas": desired}, "status": {"readyReplicas": ready}}


def pod(name: str, ready: bool) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "metadata": {"name": name},
        "status": {"phase": "Running", "conditions": [condition], "containerStatuses": []},
    }


def test_a_rollout_is_done_when_only_new_replicasets_run_pods_all_ready() -> None:
    watcher = PodWatcher()
    watcher.apply(0.0, "ReplicaSet", "ADDED", replicaset("payment-old", 3, 3))
    before = watcher.active_replicasets()
    assert not watcher.rolled_out(before), "nothing rolled yet"
    steps = [  # maxSurge 1, maxUnavailable 0: a new pod Ready before an old one goes
        ("payment-new", 1, 0),
        ("payment-new", 1, 1),
        ("payment-old", 2, 2),
        ("payment-new", 2, 2),
        ("payment-old", 1, 1),
        ("payment-new", 3, 2),
        ("payment-old", 0, 0),
    ]
    for t, (name, desired, ready) in enumerate(steps, start=1):
        watcher.apply(float(t), "ReplicaSet", "MODIFIED", replicaset(name, desired, ready))
        assert not watcher.rolled_out(before), (name, desired, ready)
    watcher.apply(9.0, "ReplicaSet", "MODIFIED", replicaset("payment-new", 3, 3))
    assert watcher.rolled_out(before)


def test_a_killed_statefulset_pod_came_back_once_its_successor_of_the_same_name_is_ready() -> None:
    watcher = PodWatcher()
    watcher.apply(0.0, "Pod", "ADDED", pod("postgres-0", ready=True))
    assert not watcher.came_back("postgres-0"), "it has not been away"
    marks = watcher.apply(1.0, "Pod", "DELETED", pod("postgres-0", ready=True))
    assert [m.kind for m in marks] == ["deleted", "unready"]
    watcher.apply(2.0, "Pod", "ADDED", pod("postgres-0", ready=False))  # the StatefulSet's new pod, same name
    assert not watcher.came_back("postgres-0")
    marks = watcher.apply(6.5, "Pod", "MODIFIED", pod("postgres-0", ready=True))
    assert [(m.kind, m.t) for m in marks] == [("ready_again", 6.5)]
    assert watcher.came_back("postgres-0")
