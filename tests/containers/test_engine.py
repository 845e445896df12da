"""The container proof only uses an engine: it finds the running one and a base image, or says what to do and skips.

Checked with stand-in `docker` clients, and with DOCKER_HOST at a socket nobody listens on (no engine needed)."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shop_devtools import engine, images
from shop_devtools.engine import LOCAL_BASE_IMAGE, Engine, EngineUnavailable
from shop_devtools.workspace import repository_root

ROOT = repository_root()
PYTHON_BASE = images.DEFAULT_BASE_IMAGE

FAKE_DOCKER = """#!/usr/bin/env bash
# A stand-in docker client: the engine's version, the images it has ($FAKE_IMAGES), whether a pull works.
echo "$*" >>"$FAKE_CALLS"
case "$1" in
    version) echo 27.0.1 ;;
    image) [[ " $FAKE_IMAGES " == *" $3 "* ]] ;;
    pull) [[ $FAKE_PULL == ok ]] ;;
    *) exit 1 ;;
esac
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in client as Debian's; returns the file its calls are written to."""
    client = tmp_path / "docker"
    client.write_text(FAKE_DOCKER)
    client.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    monkeypatch.setattr(engine, "DEBIAN_DOCKER_CLIENT", client)
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    monkeypatch.setenv("FAKE_IMAGES", "")
    monkeypatch.setenv("FAKE_PULL", "fail")
    return calls


def test_no_engine_skips_the_proof_and_names_what_to_do(tmp_path: Path) -> None:
    """`make e2e-containers` with nothing listening: exit 0, and the reason names .ci/prepare-containers."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nobody.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "shop_load.containers", "up", "--data-dir", str(tmp_path / "containers")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "e2e    | SKIPPED: " in result.stdout
    assert ".ci/prepare-containers" in result.stdout
    assert "install Docker" in result.stdout


def test_no_client_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(engine, "DEBIAN_DOCKER_CLIENT", tmp_path / "no-docker")
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with pytest.raises(EngineUnavailable, match=r"no docker client is installed: install Docker .*prepare-containers"):
        Engine.find()


def test_the_client_s_own_words_when_nothing_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not engine.DEBIAN_DOCKER_CLIENT.exists() and shutil.which("docker") is None:
        pytest.skip("no docker client here")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")
    with pytest.raises(EngineUnavailable, match=r"no container engine answers \(.*nobody\.sock.*\): install Docker"):
        Engine.find()


def test_a_running_engine_is_used_as_it_is(fake_docker: Path) -> None:
    found = Engine.find()
    assert found.client == str(engine.DEBIAN_DOCKER_CLIENT)
    assert fake_docker.read_text().splitlines() == ["version --format {{.Server.Version}}"]


@pytest.mark.parametrize(
    ("present", "pull", "expected", "pulled"),
    [
        (PYTHON_BASE, "fail", PYTHON_BASE, False),
        (f"{PYTHON_BASE} {LOCAL_BASE_IMAGE}", "fail", PYTHON_BASE, False),
        (LOCAL_BASE_IMAGE, "ok", LOCAL_BASE_IMAGE, False),  # what .ci/prepare-containers built: no pull to wait for
        ("", "ok", PYTHON_BASE, True),
    ],
)
def test_the_base_image(
    fake_docker: Path, monkeypatch: pytest.MonkeyPatch, present: str, pull: str, expected: str, pulled: bool
) -> None:
    monkeypatch.setenv("FAKE_IMAGES", present)
    monkeypatch.setenv("FAKE_PULL", pull)
    assert Engine(str(engine.DEBIAN_DOCKER_CLIENT)).base_image({}) == expected
    assert (f"pull {PYTHON_BASE}" in fake_docker.read_text().splitlines()) is pulled


def test_base_image_setting_wins_without_asking_the_engine(fake_docker: Path) -> None:
    assert Engine(str(engine.DEBIAN_DOCKER_CLIENT)).base_image({"BASE_IMAGE": "python:3.13-slim"}) == "python:3.13-slim"
    assert fake_docker.read_text() == ""


def test_no_base_image_says_what_to_do(fake_docker: Path) -> None:
    with pytest.raises(EngineUnavailable, match=r"no Python base image: .*BASE_IMAGE.*\.ci/prepare-containers"):
        Engine(str(engine.DEBIAN_DOCKER_CLIENT)).base_image({})


@pytest.mark.parametrize(
    "module",
    [
        "tools/devtools/src/shop_devtools/engine.py",
        "tools/devtools/src/shop_devtools/images.py",
        "load/src/shop_load/containers/__main__.py",
        "load/src/shop_load/targets/container_shop.py",
        "load/src/shop_load/targets/containers.py",
    ],
)
def test_the_tooling_installs_and_starts_nothing(module: str) -> None:
    """Installing Docker, starting dockerd and debootstrapping a base are .ci/prepare-containers' work, not the
    tooling's: no such command is run, and no root is asked for."""
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    words = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert not words & {"apt-get", "apt", "dpkg", "debootstrap", "dockerd", "systemctl", "import"}
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert "geteuid" not in names
