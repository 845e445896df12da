"""The shop in containers, checked without a container engine: what it reads from the manifests, the `docker run`
it derives from them, where the drill finds it, and how the container target judges a leak from its marks
(`make e2e-containers` runs the real thing)."""

import itertools
import shutil
from pathlib import Path

import pytest

from shop_devtools.chaos import OOM_LEAK_MIB_PER_SECOND
from shop_devtools.credentials import NAMES, new_credentials
from shop_devtools.quantities import memory_bytes
from shop_devtools.workspace import repository_root
from shop_load.core.drill_args import DrillError, fault_body, parse_args
from shop_load.core.records import Mark
from shop_load.targets.container_shop import (
    ContainerShop,
    PodSpec,
    pod_specs,
    render_manifests,
    run_argv,
    secret_env,
)
from shop_load.targets.containers import VICTIM, restart_check

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
POD = PodSpec(256 * 2**20, 10001, {"SHUTDOWN_DELAY_SECONDS": "5"}, {"/tmp": 64 * 2**20})


@needs_kubectl
def test_containers_get_what_the_kind_overlay_gives_the_pods() -> None:
    specs = pod_specs(render_manifests(repository_root()))
    assert set(specs) == {"catalog", "users", "payment", "storefront", "postgres"}
    payment = specs["payment"]
    assert payment.memory_limit_bytes == memory_bytes("256Mi")
    assert payment.run_as_user == 10001
    assert payment.env["MEMORY_BUDGET_FRACTION"] == "0.6"
    assert payment.env["ENVIRONMENT"] == "production"
    assert payment.tmpfs == {"/tmp": 64 * 2**20}
    assert payment.data_mount is None
    for name in ("catalog", "users", "payment", "storefront"):
        env = specs[name].env
        assert not {"DATABASE_URL", "CHAOS_TOKEN", "USERS_JWT_PRIVATE_KEY", "PORT", "HOST"} & env.keys()
        assert not set(NAMES) & env.keys(), "each run's own credentials, through wiring"
        assert not any(name.endswith("_URL") for name in env)


def test_docker_run_applies_the_pod_constraints() -> None:
    argv = run_argv("payment-a", "resilient-shop/payment:0.1.0", POD, {"PORT": "9999"}, "--network", "host")
    assert argv[:2] == ["run", "--detach"]
    assert argv[-1] == "resilient-shop/payment:0.1.0"
    pairs = set(itertools.pairwise(argv))
    for flag in [
        ("--name", "rs-e2e-payment-a"),
        ("--user", "10001:10001"),
        ("--memory", str(256 * 2**20)),
        ("--memory-swap", str(256 * 2**20)),
        ("--restart", "always"),
        ("--cap-drop", "ALL"),
        ("--security-opt", "no-new-privileges"),
        ("--tmpfs", f"/tmp:rw,size={64 * 2**20}"),
        ("--network", "host"),
        ("--env", "PORT=9999"),
        ("--env", "SHUTDOWN_DELAY_SECONDS=5"),
    ]:
        assert flag in pairs
    assert "--read-only" in argv
    assert "--volume" not in argv


def test_a_secret_is_named_on_the_command_line_and_its_value_given_through_the_environment() -> None:
    credentials = new_credentials()
    env = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": "chaos-token-value", **credentials}
    argv = run_argv("storefront", "resilient-shop/storefront:0.1.0", POD, env)
    pairs = set(itertools.pairwise(argv))
    for name in (*NAMES, "CHAOS_TOKEN"):
        assert ("--env", name) in pairs
    assert not [arg for arg in argv for value in env.values() if value in arg and value != "true"], "no value"
    assert secret_env(env) == {"CHAOS_TOKEN": "chaos-token-value", **credentials}


def test_the_drill_finds_the_shop_in_containers_or_says_how_to_start_it(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match=r"no shop in containers in .*: start one with python -m shop_load.contain"):
        ContainerShop.load(tmp_path)
    shop = ContainerShop(
        client="/usr/bin/docker",
        ports={"storefront": 41001, "payment-a": 41002},
        chaos_token="t",
        users={"storefront": 10001, "postgres": 999},
        database_urls={"payment": "postgresql://payment:payment@127.0.0.1:41000/payment"},
        database_password="pw",
        database_argv=["run", "--name", "rs-e2e-postgres"],
    )
    (tmp_path / "shop.json").write_text(shop.model_dump_json())
    assert ContainerShop.load(tmp_path) == shop
    assert shop.url("storefront") == "http://127.0.0.1:41001"


def test_the_container_target_is_chosen_on_the_command_line_and_leaks_to_the_memory_limit() -> None:
    config = parse_args(["--containers", "--fault", "leak"])
    assert config.containers
    assert not config.local
    assert not config.kubernetes
    assert fault_body(config, "containers") == {"mb_per_second": OOM_LEAK_MIB_PER_SECOND}
    assert config.fault_seconds("containers") == 60.0
    with pytest.raises(SystemExit):
        parse_args(["--containers", "--local"])


def leak_marks(*kinds: tuple[str, float]) -> list[Mark]:
    return [Mark(10.0, "injected", VICTIM, "POST /chaos/leak"), *(Mark(10.0 + t, k, VICTIM) for k, t in kinds)]


def test_a_leak_is_oom_killed_restarted_by_the_engine_and_ready_again() -> None:
    marks = leak_marks(("unready", 1.2), ("oom_killed", 4.45), ("terminated", 4.46), ("restarted", 4.68))
    marks += [Mark(14.0, "unready", "payment-b"), Mark(10.0 + 5.68, "ready_again", VICTIM)]
    checked = restart_check("leak", marks, restarts=1)
    assert checked.ok, checked
    assert checked.detail == (
        "oom killed +4.45 s, restarted +4.68 s, ready again +5.68 s after the injection; RestartCount +1"
    )


@pytest.mark.parametrize(
    ("kinds", "restarts", "problem"),
    [
        ((("terminated", 4.0), ("restarted", 4.2), ("ready_again", 5.0)), 1, "payment-a: no oom killed"),
        ((("oom_killed", 4.0), ("restarted", 4.2), ("ready_again", 5.0)), 0, "the engine counts 0 restarts"),
        ((("oom_killed", 4.0), ("ready_again", 4.1), ("restarted", 4.2)), 1, "payment-a: no ready again"),
    ],
)
def test_what_a_leak_must_show(kinds: tuple[tuple[str, float], ...], restarts: int, problem: str) -> None:
    checked = restart_check("leak", leak_marks(*kinds), restarts)
    assert not checked.ok
    assert any(problem in found for found in checked.problems), checked.problems


@pytest.mark.parametrize(
    ("text", "expected"), [("256Mi", 268435456), ("1Gi", 2**30), ("512M", 512 * 10**6), ("64k", 64000), ("1000", 1000)]
)
def test_memory_bytes(text: str, expected: int) -> None:
    assert memory_bytes(text) == expected
