"""Each workspace member synced alone (`uv sync --locked --package <member>`: a venv with the member and what its
pyproject.toml declares, nothing else) imports every module of its package and runs the commands the Makefile, the
images and the other members run. A member works with what it declares, not with what the dev venv, which holds
every member, happens to have."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shop_devtools.topology import CALLEES_FIRST, DATABASES

ROOT = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).with_name("member_probe.py")
SERVICES = tuple(service.name for service in CALLEES_FIRST)


def _help(*argv: str) -> list[str]:
    return [*argv, "--help"]


SERVED = [_help("python", "-m", f"shop_{service}") for service in SERVICES]
"""How the launcher (`make run`) and the bench start the services."""

PROVISIONED = [database.migrations for database in DATABASES]
"""The migrations `shop_devtools.provision` applies: for `make run`, the bench and the container proof."""

COMMANDS: dict[str, list[list[str]]] = {
    "shopkit": [],  # a library: imported, never run
    "shop-contracts": [],  # a library too
    **{f"shop-{service}": [_help(f"shop-{service}"), _help("python", "-m", f"shop_{service}")] for service in SERVICES},
    # shop-run has no options (it starts the shop): the probe loads it, and these run what it starts
    "shop-devtools": [_help("python", "-m", f"shop_devtools.{module}") for module in ("cluster", "images", "compose")]
    + SERVED,
    "shop-load": [
        _help("shop-drill"),
        _help("shop-bench"),
        *[_help("python", "-m", f"shop_load.{part}") for part in ("drill", "bench", "containers")],
        _help("python", "-m", "shop_load.generators.bare"),
        # the container proof runs these two
        _help("python", "-m", "shop_devtools.cluster"),
        _help("python", "-m", "shop_devtools.images"),
        *SERVED,
    ],
}
"""Per member, the commands (`--help`: they parse their options, having imported everything) the Makefile, the
images and the other members run."""

MIGRATIONS: dict[str, list[str]] = {
    **{f"shop-{service.name}": [service.migrations] for service in DATABASES},
    "shop-devtools": PROVISIONED,
    "shop-load": PROVISIONED,
}


def workspace_members() -> list[str]:
    """The names of the members the root pyproject.toml's workspace globs match."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        patterns = tomllib.load(file)["tool"]["uv"]["workspace"]["members"]
    names = []
    for manifest in sorted(path for pattern in patterns for path in ROOT.glob(f"{pattern}/pyproject.toml")):
        with manifest.open("rb") as file:
            names.append(tomllib.load(file)["project"]["name"])
    return names


def test_every_member_is_checked() -> None:
    assert sorted(workspace_members()) == sorted(COMMANDS)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One venv for every member in turn: `uv sync` makes it exact each time (what the member does not declare is
    removed), and what stays installed keeps its bytecode, which halves the time."""
    return tmp_path_factory.mktemp("members") / "venv"


@pytest.mark.parametrize("member", sorted(COMMANDS))
def test_member_synced_alone_imports_and_runs(member: str, venv: Path, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (`make test` puts .tools/bin there)")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": sys.executable}
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    sync = [uv, "sync", "--locked", "--no-default-groups", "--package", member]
    synced = subprocess.run(sync, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert synced.returncode == 0, f"{' '.join(sync)}\n{synced.stderr}"

    bin_dir = venv / "bin"
    run_env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    probe = [str(bin_dir / "python"), "-I", str(PROBE), member.replace("-", "_"), *MIGRATIONS.get(member, [])]
    commands = [probe, *([str(bin_dir / argv[0]), *argv[1:]] for argv in COMMANDS[member])]
    processes = [
        (argv, subprocess.Popen(argv, cwd=tmp_path, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for argv in commands
    ]
    failures = []
    for argv, process in processes:
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if process.returncode != 0:
            failures.append(f"$ {' '.join(argv)}  (exit {process.returncode})\n{output.decode(errors='replace')}")
    assert not failures, f"{member}, synced alone:\n" + "\n".join(failures)
