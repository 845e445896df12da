"""`make images` (shop_devtools.images): the image names it promises the manifests, and the `docker build` commands
it runs, checked with a stand-in `docker` that records its calls."""

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shop_devtools import images
from shop_devtools.images import SERVICES, BuildOptions, ImageError, build_argv, run
from shop_devtools.workspace import WorkspaceError, project_version
from tests.containers.dockerfile import ROOT, Dockerfile


def _version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


EXPECTED = [f"resilient-shop/{service}:{_version()}" for service in ("catalog", "users", "payment", "storefront")]


def test_list_prints_the_four_image_names_with_the_project_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shop_devtools.images", "--list"], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == EXPECTED
    assert all(not name.endswith(":latest") for name in EXPECTED)


def test_the_version_is_the_root_pyprojects() -> None:
    assert project_version(ROOT) == _version()
    assert [images.image_name(service, _version()) for service in images.SERVICES] == EXPECTED


def test_a_version_that_is_no_image_tag_is_refused(tmp_path: Path) -> None:
    for version in ["latest", "1.0+local", ""]:
        (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\nversion = "{version}"\n')
        with pytest.raises(WorkspaceError, match="not a usable image tag"):
            project_version(tmp_path)


def test_default_build_command() -> None:
    argv = build_argv("payment", version="0.1.0", root=ROOT, options=BuildOptions.from_env({}))
    assert argv == [
        "docker",
        "build",
        "--target",
        "payment",
        "--tag",
        "resilient-shop/payment:0.1.0",
        "--build-arg",
        "BASE_IMAGE=python:3.11-slim-bookworm",
        "--build-arg",
        "VERSION=0.1.0",
        "--file",
        str(ROOT / "Dockerfile"),
        str(ROOT),
    ]


def test_the_environment_adapts_the_build_to_a_corporate_network(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    environ = {
        "BASE_IMAGE": "python:3.11-slim-bookworm",
        "CA_BUNDLE": str(bundle),
        "DOCKER_BUILD_NETWORK": "host",
        "HTTPS_PROXY": "http://user:secret@proxy:3128",
        "no_proxy": "localhost",
    }
    argv = build_argv("users", version="0.1.0", root=ROOT, options=BuildOptions.from_env(environ))
    assert "BASE_IMAGE=python:3.11-slim-bookworm" in argv
    assert argv[argv.index("--secret") + 1] == f"id=ca,src={bundle}"
    assert argv[argv.index("--network") + 1] == "host"
    assert {"HTTPS_PROXY", "no_proxy"} <= set(argv), "proxies are passed by name"
    assert not any("secret@proxy" in arg for arg in argv), "their values (credentials) stay out of the command"


def test_a_missing_ca_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"CA_BUNDLE=.* is not a file"):
        BuildOptions.from_env({"CA_BUNDLE": str(tmp_path / "missing.pem")})


def test_the_dockerfile_declares_every_build_argument_passed() -> None:
    dockerfile = Dockerfile.read()
    declared = set(dockerfile.global_args) | {
        arg.arguments.split("=")[0] for stage in dockerfile.stages for arg in stage.all("ARG")
    }
    argv = build_argv("catalog", version="0.1.0", root=ROOT, options=BuildOptions.from_env({}))
    passed = {argv[i + 1].split("=")[0] for i, arg in enumerate(argv) if arg == "--build-arg"}
    assert passed <= declared
    assert set(SERVICES) <= set(dockerfile.by_name)


def test_without_docker_it_says_what_to_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([], environ={"PATH": str(tmp_path)}) == 1
    assert "docker is not on PATH" in capsys.readouterr().err


def test_unknown_services_are_refused() -> None:
    with pytest.raises(SystemExit) as exited:
        run(["checkout"], environ={})
    assert exited.value.code == 2


def _fake_docker(directory: Path, *, exit_code: int = 0) -> Path:
    log = directory / "calls.log"
    docker = directory / "docker"
    docker.write_text(f'#!/bin/sh\necho "DOCKER_BUILDKIT=$DOCKER_BUILDKIT $*" >> "{log}"\nexit {exit_code}\n')
    docker.chmod(0o755)
    return log


def test_builds_every_target_with_buildkit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _fake_docker(tmp_path)
    assert run([], environ={"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"}) == 0
    calls = log.read_text().splitlines()
    assert len(calls) == len(SERVICES)
    for call, service, name in zip(calls, SERVICES, EXPECTED, strict=True):
        assert call.startswith("DOCKER_BUILDKIT=1 build --target " + service + " --tag " + name)
    output = capsys.readouterr().out
    assert output.count("$ DOCKER_BUILDKIT=1 docker build") == len(SERVICES), "each command is shown first"
    assert output.rstrip().endswith("built " + " ".join(EXPECTED))


def test_a_failed_build_names_the_image_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _fake_docker(tmp_path, exit_code=3)
    assert run(["storefront", "payment"], environ={"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"}) == 1
    assert len(log.read_text().splitlines()) == 1, "stops at the first failure"
    assert f"building {EXPECTED[3]} failed (docker build exited 3)" in capsys.readouterr().err


def test_dry_run_needs_no_docker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--dry-run", "users"], environ={"PATH": str(tmp_path)}) == 0
    assert capsys.readouterr().out.splitlines() == [
        "$ DOCKER_BUILDKIT=1 " + shlex.join(build_argv("users", version=_version(), root=ROOT, options=BuildOptions()))
    ]
