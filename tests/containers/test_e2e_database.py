"""The container proof's database, checked without a container engine: the image's Dockerfile, the `docker build`
and `docker run` of PostgreSQL, and the outage's timeline and checks from made-up looks (`make e2e-containers`
runs the real thing)."""

import itertools
import shutil
from pathlib import Path

import pytest

from shop_devtools.workspace import repository_root
from shop_load.containers.db import CONTEXT, DatabaseSpec, build_argv, database_spec, run_argv
from shop_load.containers.db_outage import (
    DATABASE,
    Outage,
    Sample,
    lost_or_changed,
    outage_checkouts,
    outage_marks,
    outage_problems,
    pending_finished,
    recovered,
    summarize_outage,
    transitions,
)
from shop_load.containers.shop import render_manifests
from shop_load.core.records import Checkout
from tests.containers.dockerfile import Dockerfile, parse

ROOT = repository_root()
SPEC = DatabaseSpec(
    memory_limit_bytes=512 * 2**20,
    run_as_user=999,
    data_mount="/var/lib/postgresql/data",
    pgdata="/var/lib/postgresql/data/pgdata",
    tmpfs={"/var/run/postgresql": 16 * 2**20, "/tmp": None},
)
SERVICES = ("catalog", "payment-a")
KILLED = 1000.0


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
def test_the_database_container_gets_what_the_statefulset_gives_its_pod() -> None:
    spec = database_spec(render_manifests(ROOT))
    assert spec.run_as_user == 999
    assert spec.memory_limit_bytes == 512 * 2**20
    assert spec.data_mount == "/var/lib/postgresql/data"
    assert spec.pgdata.startswith(spec.data_mount + "/")  # initdb refuses a mount point holding lost+found
    assert spec.tmpfs == {"/var/run/postgresql": 16 * 2**20, "/tmp": 64 * 2**20}


def test_docker_run_puts_the_data_on_the_named_volume_restarts_and_listens_on_loopback_only() -> None:
    argv = run_argv(SPEC, name="db", image="resilient-shop/postgres:0.1.0", volume="pgdata", port=5555, password="pw")
    assert argv[:2] == ["run", "--detach"]
    assert argv[-1] == "resilient-shop/postgres:0.1.0"
    pairs = set(itertools.pairwise(argv))
    for flag in [
        ("--name", "db"),
        ("--volume", "pgdata:/var/lib/postgresql/data"),
        ("--restart", "always"),
        ("--publish", "127.0.0.1:5555:5432"),
        ("--user", "999:999"),
        ("--memory", str(512 * 2**20)),
        ("--memory-swap", str(512 * 2**20)),
        ("--cap-drop", "ALL"),
        ("--env", "PGDATA=/var/lib/postgresql/data/pgdata"),
        ("--env", "POSTGRES_PASSWORD=pw"),
        ("--tmpfs", f"/var/run/postgresql:rw,size={16 * 2**20}"),
        ("--tmpfs", "/tmp:rw"),
    ]:
        assert flag in pairs
    assert "--read-only" in argv
    assert "--network" not in argv


def test_docker_build_uses_the_base_image_the_ca_bundle_and_the_host_network() -> None:
    argv = build_argv(
        image="resilient-shop/postgres:0.1.0",
        base_image="resilient-shop/base:bookworm",
        context=ROOT / CONTEXT,
        ca_bundle=Path("/etc/ca.pem"),
        network="host",
    )
    assert argv[:3] == ["build", "--tag", "resilient-shop/postgres:0.1.0"]
    assert argv[-1] == str(ROOT / CONTEXT)
    pairs = set(itertools.pairwise(argv))
    assert ("--build-arg", "BASE_IMAGE=resilient-shop/base:bookworm") in pairs
    assert ("--secret", "id=ca,src=/etc/ca.pem") in pairs
    assert ("--network", "host") in pairs
    bare = build_argv(image="i", base_image="b", context=Path("c"), ca_bundle=None, network=None)
    assert bare == ["build", "--tag", "i", "--build-arg", "BASE_IMAGE=b", "c"]


def test_the_database_dockerfile_pulls_nothing_and_runs_the_server_as_its_main_process() -> None:
    path = ROOT / CONTEXT / "Dockerfile"
    text = path.read_text(encoding="utf-8")
    assert not any(line.lstrip().lower().startswith("# syntax") for line in text.splitlines())
    dockerfile = Dockerfile.read(path)
    assert [stage.base for stage in dockerfile.stages] == ["${BASE_IMAGE}"]
    assert "BASE_IMAGE" in dockerfile.global_args
    stage = dockerfile.stages[0]
    for copy in stage.all("COPY"):
        assert "from" not in copy.flags()
        *sources, _ = copy.operands()
        assert all((ROOT / CONTEXT / source).is_file() for source in sources)
    assert stage.all("USER")[-1].arguments == "999:999"
    assert any("PGDATA=/var/lib/postgresql/data/pgdata" in env.arguments for env in stage.all("ENV"))
    entrypoint = stage.all("ENTRYPOINT")[-1].exec_form()
    assert entrypoint is not None
    script = (ROOT / CONTEXT / "entrypoint.sh").read_text(encoding="utf-8").strip().splitlines()
    assert script[-1] == 'exec "$@"'  # the server replaces the shell: SIGKILL to PID 1 kills PostgreSQL itself
    assert [instruction.keyword for instruction in parse(text)].count("FROM") == 1


# --- the outage's timeline --------------------------------------------------------------------------------------


def looks(target: str, *timeline: tuple[float, bool], pending: int | None = None) -> list[Sample]:
    """Looks at `target` at seconds after the kill."""
    return [Sample(KILLED + at, target, ok, pending if target == DATABASE and ok else None) for at, ok in timeline]


def an_outage(**changes: object) -> Outage:
    """A database killed at KILLED, refusing at +0.1, accepting at +1.5 with one payment of the crash pending,
    finished at +6; catalog and payment-a unready from +0.2, ready at +1.8 and +2.0; storefront ready throughout."""
    samples = [
        *looks(DATABASE, (-0.5, True), (0.1, False), (1.0, False)),
        *looks(DATABASE, (1.5, True), (3.0, True), pending=1),
        *looks(DATABASE, (6.0, True), pending=0),
        *looks("catalog", (-0.3, True), (0.2, False), (1.2, False), (1.8, True), (6.1, True)),
        *looks("payment-a", (0.2, False), (1.6, False), (2.0, True), (6.1, True)),
        *looks("storefront", (0.2, True), (2.0, True), (6.1, True)),
    ]
    outage = Outage(
        killed=KILLED,
        clock_at_kill=50.0,
        pid=4242,
        samples=samples,
        engine_events=[(KILLED - 30, "start"), (KILLED + 0.15, "die"), (KILLED + 0.4, "start")],
        container_before={"id": "c1", "restart_count": 0, "running": True},
        container_after={"id": "c1", "restart_count": 1, "running": True},
        pending_at_kill=1,
        payments_before={"p1": "captured", "p2": "declined", "p3": "pending"},
        payments_after={"p1": "captured", "p2": "declined", "p3": "captured"},
    )
    for name, value in changes.items():
        setattr(outage, name, value)
    return outage


def test_transitions_count_from_the_kill() -> None:
    samples = looks("catalog", (-1.0, False), (-0.5, True), (0.3, True), (0.5, False), (0.9, False), (1.4, True))
    assert set(transitions(samples, KILLED)) == {"catalog"}
    seen = transitions(samples, KILLED)["catalog"]
    assert (seen.down, seen.up) == (KILLED + 0.5, KILLED + 1.4)
    never_down = transitions(looks("storefront", (0.1, True), (0.2, True)), KILLED)["storefront"]
    assert (never_down.down, never_down.up) == (None, None)


def test_the_marks_of_an_outage_in_seconds_after_the_kill() -> None:
    marks = outage_marks(an_outage(), SERVICES)
    assert marks == {
        "killed": 0.0,
        "database_refused": 0.1,
        "engine_saw_exit": 0.15,
        "engine_restarted": 0.4,  # the start before the kill is not the restart
        "database_accepting": 1.5,
        "catalog_unready": 0.2,
        "payment-a_unready": 0.2,
        "catalog_ready_again": 1.8,
        "payment-a_ready_again": 2.0,
        "all_ready_again": 2.0,
        "pending_finished": 6.0,
    }
    assert pending_finished(an_outage().samples, KILLED) == (1, KILLED + 6.0)


def test_an_outage_that_went_as_it_should_has_no_problem() -> None:
    assert outage_problems(an_outage(), SERVICES, stays_ready=("storefront",)) == []


def test_watching_stops_once_the_pending_payments_are_finished_and_every_service_is_ready() -> None:
    samples = an_outage().samples
    targets = [*SERVICES, "storefront"]
    assert recovered(samples, KILLED, targets)
    before_the_sweep = [s for s in samples if s.at < KILLED + 5]
    assert not recovered(before_the_sweep, KILLED, targets)
    assert not recovered([s for s in samples if s.target != DATABASE], KILLED, targets)
    assert not recovered([*samples, *looks("catalog", (7.0, False))], KILLED, targets)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"container_after": {"id": "c2", "restart_count": 0}}, "replaced, not restarted"),
        ({"container_after": {"id": "c1", "restart_count": 0}}, "expected one restart more"),
        ({"engine_events": []}, "did not report the database container's exit and start"),
        ({"payments_after": {"p1": "captured", "p3": "captured"}}, "payment p2 (declined) is gone"),
        ({"payments_after": {"p1": "pending", "p2": "declined"}}, "payment p1 was captured, is now pending"),
        ({"killed": None}, "never killed"),
    ],
)
def test_what_the_outage_must_show(changes: dict[str, object], problem: str) -> None:
    problems = outage_problems(an_outage(**changes), SERVICES, stays_ready=("storefront",))
    assert any(problem in found for found in problems), problems


def test_services_must_turn_unready_while_the_database_is_down_and_storefront_must_not() -> None:
    outage = an_outage()
    outage.samples = [s for s in outage.samples if s.target != "catalog"]
    outage.samples += looks("catalog", (0.2, True), (2.0, True))
    outage.samples += looks("storefront", (0.5, False), (0.6, True))
    outage.samples = [s for s in outage.samples if not (s.target == DATABASE and s.pending == 0)]
    problems = outage_problems(outage, SERVICES, stays_ready=("storefront",))
    assert "catalog stayed ready while the database was down" in problems
    assert "storefront turned unready, though it needs no database" in problems
    assert "1 payment(s) pending since before the kill were never finished" in problems


def test_lost_or_changed_looks_at_finished_payments_only() -> None:
    before = {"a": "captured", "b": "declined", "c": "pending"}
    assert lost_or_changed(before, {"a": "captured", "b": "declined"}) == []
    assert lost_or_changed(before, {"b": "captured"}) == [
        "payment a (captured) is gone",
        "payment b was declined, is now captured",
    ]


def checkout(t: float, finished: float | None, outcome: str = "captured", attempts: int = 1) -> Checkout:
    return Checkout("k", 0, {}, t, outcome=outcome, attempts=attempts, finished=finished)


def test_the_checkouts_an_outage_touched() -> None:
    checkouts = [
        checkout(40.0, 40.3),  # answered before the kill at 50
        checkout(49.9, 50.4),  # in flight at the kill
        checkout(50.5, 54.0, attempts=3),  # during the outage, retried
        checkout(51.0, 81.0, outcome="failed", attempts=9),
        checkout(51.8, 52.0),  # started before every service was ready again (52)
        checkout(53.0, 53.1),  # after the recovery
    ]
    assert outage_checkouts(checkouts, 50.0, 52.0) == {
        "touched": 4,
        "answered": 3,
        "retried": 2,
        "gave_up": 1,
        "longest_answer_seconds": 3.5,
    }


def test_the_summary_of_an_outage() -> None:
    checkouts = [checkout(49.9, 50.4), checkout(50.5, 54.0, attempts=3)]
    summary = summarize_outage(an_outage(), checkouts, SERVICES, ("storefront",))
    assert summary["outage_seconds"] == 1.5
    assert summary["recovery_seconds"] == 2.0
    assert summary["restart_count"] == 1
    assert (summary["pending_at_kill"], summary["pending_when_back"]) == (1, 1)
    assert (summary["payments_before_kill"], summary["payments_kept"]) == (2, 2)
    assert summary["checkouts"]["touched"] == 2
    assert summary["problems"] == []
