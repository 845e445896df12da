"""The container proof's setup, checked without a container engine: what it reads from the manifests, and the
`docker run` it derives from them (`make e2e-containers` runs the real thing)."""

import itertools
import shutil

import pytest

from shop_devtools.credentials import NAMES, new_credentials
from shop_devtools.quantities import memory_bytes
from shop_devtools.workspace import repository_root
from shop_load.containers.shop import ContainerSpec, container_specs, docker_run_argv, render_manifests, secret_env

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")


def test_containers_get_what_the_kind_overlay_gives_the_pods() -> None:
    specs = container_specs(render_manifests(repository_root()))
    assert set(specs) == {"catalog", "users", "payment", "storefront"}
    payment = specs["payment"]
    assert payment.memory_limit_bytes == memory_bytes("256Mi")
    assert payment.run_as_user == 10001
    assert payment.env["MEMORY_BUDGET_FRACTION"] == "0.6"
    assert payment.env["ENVIRONMENT"] == "production"
    for spec in specs.values():
        assert not {"DATABASE_URL", "CHAOS_TOKEN", "USERS_JWT_PRIVATE_KEY", "PORT", "HOST"} & spec.env.keys()
        assert not set(NAMES) & spec.env.keys(), "each run's own credentials, through wiring"
        assert not any(name.endswith("_URL") for name in spec.env)


def test_docker_run_applies_the_pod_constraints() -> None:
    spec = ContainerSpec("payment", 256 * 2**20, 10001, {"SHUTDOWN_DELAY_SECONDS": "5"})
    argv = docker_run_argv(
        spec, name="p", image="resilient-shop/payment:0.1.0", port=9999, env={"CHAOS_ENABLED": "true"}
    )
    assert argv[0] == "run"
    assert argv[-1] == "resilient-shop/payment:0.1.0"
    pairs = set(itertools.pairwise(argv))
    for flag in [
        ("--user", "10001:10001"),
        ("--memory", str(256 * 2**20)),
        ("--memory-swap", str(256 * 2**20)),
        ("--restart", "always"),
        ("--cap-drop", "ALL"),
        ("--security-opt", "no-new-privileges"),
        ("--env", "PORT=9999"),
        ("--env", "SHUTDOWN_DELAY_SECONDS=5"),
        ("--env", "CHAOS_ENABLED=true"),
    ]:
        assert flag in pairs
    assert "--read-only" in argv


def test_a_secret_is_named_on_the_command_line_and_its_value_given_through_the_environment() -> None:
    spec = ContainerSpec("storefront", 256 * 2**20, 10001, {})
    credentials = new_credentials()
    env = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": "chaos-token-value", **credentials}
    argv = docker_run_argv(spec, name="s", image="resilient-shop/storefront:0.1.0", port=9999, env=env)
    pairs = set(itertools.pairwise(argv))
    for name in (*NAMES, "CHAOS_TOKEN"):
        assert ("--env", name) in pairs
    assert not [arg for arg in argv for value in env.values() if value in arg and value != "true"], "no value"
    assert secret_env(env) == {"CHAOS_TOKEN": "chaos-token-value", **credentials}


@pytest.mark.parametrize(
    ("text", "expected"), [("256Mi", 268435456), ("1Gi", 2**30), ("512M", 512 * 10**6), ("64k", 64000), ("1000", 1000)]
)
def test_memory_bytes(text: str, expected: int) -> None:
    assert memory_bytes(text) == expected
