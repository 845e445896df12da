"""The shop's database in a container, checked without a container engine: the image's Dockerfile, the `docker
build` and `docker run` of PostgreSQL, and how the container target judges the outage from made-up marks
(`make e2e-containers` runs the real thing)."""

import itertools
import shutil
from pathlib import Path

import pytest

from shop_devtools.workspace import repository_root
from shop_load.core.records import Mark
from shop_load.targets.container_shop import (
    DATABASE,
    POSTGRES_CONTEXT,
    PodSpec,
    database_build_argv,
    pod_specs,
    render_manifests,
    run_argv,
)
from shop_load.targets.containers import NEEDS_DATABASE, lost_or_changed, outage_check
from tests.containers.dockerfile import Dockerfile, parse

ROOT = repository_root()
CONTEXT = POSTGRES_CONTEXT
POD = PodSpec(
    memory_limit_bytes=512 * 2**20,
    run_as_user=999,
    env={"PGDATA": "/var/lib/postgresql/data/pgdata"},
    tmpfs={"/var/run/postgresql": 16 * 2**20, "/tmp": None},
    data_mount="/var/lib/postgresql/data",
)
KILLED = 50.0


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
def test_the_database_container_gets_what_the_statefulset_gives_its_pod() -> None:
    spec = pod_specs(render_manifests(ROOT))["postgres"]
    assert spec.run_as_user == 999
    assert spec.memory_limit_bytes == 512 * 2**20
    assert spec.data_mount == "/var/lib/postgresql/data"
    assert spec.env["PGDATA"].startswith(spec.data_mount + "/")  # initdb refuses a mount point holding lost+found
    assert spec.tmpfs == {"/var/run/postgresql": 16 * 2**20, "/tmp": 64 * 2**20}
    assert "POSTGRES_PASSWORD" not in spec.env, "each run's own, by name"


def test_docker_run_puts_the_data_on_the_named_volume_restarts_and_listens_on_loopback_only() -> None:
    env = {"POSTGRES_PASSWORD": "pw"}
    argv = run_argv("postgres", "resilient-shop/postgres:0.1.0", POD, env, "--publish", "127.0.0.1:5555:5432")
    assert argv[:2] == ["run", "--detach"]
    assert argv[-1] == "resilient-shop/postgres:0.1.0"
    pairs = set(itertools.pairwise(argv))
    for flag in [
        ("--name", "rs-e2e-postgres"),
        ("--volume", "rs-e2e-pgdata:/var/lib/postgresql/data"),
        ("--restart", "always"),
        ("--publish", "127.0.0.1:5555:5432"),
        ("--user", "999:999"),
        ("--memory", str(512 * 2**20)),
        ("--memory-swap", str(512 * 2**20)),
        ("--cap-drop", "ALL"),
        ("--env", "PGDATA=/var/lib/postgresql/data/pgdata"),
        ("--env", "POSTGRES_PASSWORD"),
        ("--tmpfs", f"/var/run/postgresql:rw,size={16 * 2**20}"),
        ("--tmpfs", "/tmp:rw"),
    ]:
        assert flag in pairs
    assert "--read-only" in argv
    assert "--network" not in argv
    assert not any("pw" in arg for arg in argv), "the password goes through the client's environment"


def test_docker_build_uses_the_base_image_the_ca_bundle_and_the_host_network() -> None:
    image, base = "resilient-shop/postgres:0.1.0", "resilient-shop/base:bookworm"
    argv = database_build_argv(image, base, ROOT / CONTEXT, Path("/etc/ca.pem"))
    assert argv[:3] == ["build", "--tag", "resilient-shop/postgres:0.1.0"]
    assert argv[-1] == str(ROOT / CONTEXT)
    pairs = set(itertools.pairwise(argv))
    assert ("--build-arg", "BASE_IMAGE=resilient-shop/base:bookworm") in pairs
    assert ("--secret", "id=ca,src=/etc/ca.pem") in pairs
    assert ("--network", "host") in pairs
    bare = database_build_argv("i", "b", Path("c"), None)
    assert bare == ["build", "--tag", "i", "--build-arg", "BASE_IMAGE=b", "--network", "host", "c"]


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


# --- the outage -------------------------------------------------------------------------------------------------


def at(kind: str, pod: str, *seconds: float) -> list[Mark]:
    """Marks of `pod` at seconds after the kill."""
    return [Mark(KILLED + t, kind, pod, "as scripted") for t in seconds]


def an_outage() -> list[Mark]:
    """A database killed at KILLED, refusing at +0.1, exiting and started again by the engine at +0.15 and +0.4,
    accepting at +1.5, the payment the kill left pending finished at +6; the services that need it unready from +0.2,
    ready by +2.0; storefront ready throughout."""
    marks = [Mark(KILLED, "injected", DATABASE, "SIGKILL ..."), *at("unready", DATABASE, 0.1)]
    marks += [*at("terminated", DATABASE, 0.15), *at("restarted", DATABASE, 0.4), *at("ready_again", DATABASE, 1.5)]
    marks += at("pending_finished", DATABASE, 6.0)
    for index, name in enumerate(NEEDS_DATABASE):
        marks += [*at("unready", name, 0.2), *at("ready_again", name, 1.7 + index / 10)]
    return [*marks, *at("unready", "storefront", -5.0), *at("ready_again", "storefront", -4.0)]


BEFORE = {"p1": "captured", "p2": "declined", "p3": "pending"}
AFTER = {"p1": "captured", "p2": "declined", "p3": "captured"}


def test_an_outage_that_went_as_it_should_with_its_figures() -> None:
    checked = outage_check(an_outage(), 1, True, BEFORE, AFTER)
    assert checked.ok, checked.problems
    assert checked.detail == (
        "unready +0.10 s, terminated +0.15 s, restarted +0.40 s, ready again +1.50 s, pending finished +6.00 s; "
        "every service ready again +2.00 s; 2 finished payments kept"
    )


@pytest.mark.parametrize(
    ("dropped", "restarts", "same_container", "after", "problem"),
    [
        ((), 1, False, AFTER, "the container was replaced, not restarted"),
        ((), 0, True, AFTER, "the engine restarted the database 0 times: expected once"),
        (("terminated", "restarted"), 1, True, AFTER, "postgres: no terminated after the injection"),
        (("pending_finished",), 1, True, AFTER, "postgres: no pending finished after the injection"),
        (("injected",), 1, True, AFTER, "postgres: no unready after the injection"),
        ((), 1, True, {"p1": "captured", "p3": "captured"}, "payment p2 (declined) is gone"),
        ((), 1, True, {"p1": "pending", "p2": "declined"}, "payment p1 was captured, is now pending"),
    ],
)
def test_what_the_outage_must_show(
    dropped: tuple[str, ...], restarts: int, same_container: bool, after: dict[str, str], problem: str
) -> None:
    marks = [m for m in an_outage() if not (m.pod == DATABASE and m.kind in dropped)]
    checked = outage_check(marks, restarts, same_container, BEFORE, after)
    assert not checked.ok
    assert any(problem in found for found in checked.problems), checked.problems


def test_services_must_turn_unready_while_the_database_is_down_and_storefront_must_not() -> None:
    marks = [m for m in an_outage() if m.pod != "catalog" and not (m.pod == "users" and m.kind == "ready_again")]
    marks.append(Mark(KILLED + 0.5, "unready", "storefront", "GET /ready answered 503 (draining)"))
    checked = outage_check(marks, 1, True, BEFORE, AFTER)
    assert checked.problems == [
        "catalog stayed ready while the database was down",
        "users never became ready again (last seen unready +0.20 s: as scripted)",
        "storefront answered unready while the database was down, though it needs none",
    ]


def test_a_slow_answer_is_not_the_database_s_doing() -> None:
    """Under load a probe can time out: storefront slow is not storefront unready, and a service whose probe timed
    out just before the kill was unready while the database was down all the same."""
    marks = [m for m in an_outage() if not (m.pod == "catalog" and m.kind == "unready")]
    marks.append(Mark(KILLED - 0.3, "unready", "catalog", "GET /ready no answer: timed out"))
    marks.append(Mark(KILLED + 0.5, "unready", "storefront", "GET /ready no answer: timed out"))
    checked = outage_check(marks, 1, True, BEFORE, AFTER)
    assert checked.ok, checked.problems


def test_a_service_may_be_seen_ready_before_the_drill_s_own_connection_gets_in() -> None:
    """The drill's connection to the database is a poll, and under load it can be marked later than a service's
    /ready answered 200 (seen in CI: users ready again before the database's "accepts connections"). Ready again
    counts once the engine started the server again; a 200 before that cannot be the recovery."""
    marks = [m for m in an_outage() if not (m.pod == "users" and m.kind == "ready_again")]
    early = outage_check([*marks, *at("ready_again", "users", 1.3)], 1, True, BEFORE, AFTER)
    assert early.ok, early.problems
    assert early.detail.endswith("every service ready again +2.00 s; 2 finished payments kept")
    too_early = outage_check([*marks, *at("ready_again", "users", 0.3)], 1, True, BEFORE, AFTER)
    assert too_early.problems == ["users never became ready again (last seen ready again +0.30 s: as scripted)"]


def test_lost_or_changed_looks_at_finished_payments_only() -> None:
    before = {"a": "captured", "b": "declined", "c": "pending"}
    assert lost_or_changed(before, {"a": "captured", "b": "declined"}) == []
    assert lost_or_changed(before, {"b": "captured"}) == [
        "payment a (captured) is gone",
        "payment b was declined, is now captured",
    ]
