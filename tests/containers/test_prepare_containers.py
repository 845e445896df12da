""".ci/prepare-containers, the CI machine's preparation for the container proof, and how `.ci/run` uses it.

Nothing here installs or starts anything: the script is read, linted, and run only where it stops before acting
(a DOCKER_HOST nobody listens on, `--stop` with a pid file that is not its dockerd's)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shop_devtools import engine, images
from shop_devtools.workspace import repository_root

ROOT = repository_root()
SCRIPT = ROOT / ".ci" / "prepare-containers"
TEXT = SCRIPT.read_text(encoding="utf-8")
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def run_script(*args: str, state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PREPARE_CONTAINERS_STATE": str(state), **env}
    return subprocess.run([str(SCRIPT), *args], env=environ, capture_output=True, text=True, timeout=60, check=False)


def assignment(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)", TEXT, re.MULTILINE)
    assert match, f"the script sets no {name}"
    return match.group(1)


def test_a_strict_executable_bash_script() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert TEXT.startswith("#!/usr/bin/env bash\n")
    assert re.search(r"^set -euo pipefail$", TEXT, re.MULTILINE)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck comes with the dev dependencies")
@pytest.mark.parametrize("script", ["prepare-containers", "run"])
def test_passes_shellcheck(script: str) -> None:
    result = subprocess.run(["shellcheck", str(ROOT / ".ci" / script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_it_prepares_the_base_images_the_tooling_looks_for() -> None:
    assert assignment("PYTHON_BASE") == images.DEFAULT_BASE_IMAGE
    assert assignment("LOCAL_BASE") == engine.LOCAL_BASE_IMAGE
    assert set(assignment("BASE_PACKAGES").split(",")) >= {"python3", "python3-pip", "python3-venv", "ca-certificates"}


def test_nothing_but_the_python_base_is_asked_of_a_registry() -> None:
    """No `# syntax=` frontend, no image to build from: the one pull is of the Python base, bounded, with the
    local Debian base as its fallback."""
    assert not re.search(r"#\s*syntax\s*=", TEXT, re.IGNORECASE)
    assert not re.search(r"^\s*FROM\s", TEXT, re.MULTILINE)
    pulls = [line.strip() for line in TEXT.splitlines() if re.search(r"\bpull\b", line) and "docker" in line.lower()]
    assert pulls == ['if timeout 60 "$DOCKER" pull -q "$PYTHON_BASE" >/dev/null 2>&1; then']


def test_ci_prepares_the_engine_before_the_proof_and_stops_it_after() -> None:
    lines = [line.strip() for line in CI_RUN.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    trap = lines.index("trap '.ci/prepare-containers --stop' EXIT")
    prepare = lines.index(".ci/prepare-containers")
    proof = next(i for i, line in enumerate(lines) if line.endswith("make e2e-containers"))
    assert lines.index("make test") < trap < prepare < proof


def test_an_engine_elsewhere_is_never_started_here(tmp_path: Path) -> None:
    result = run_script(state=tmp_path, DOCKER_HOST=f"unix://{tmp_path}/nobody.sock")
    assert result.returncode == 1
    assert f"DOCKER_HOST=unix://{tmp_path}/nobody.sock does not answer" in result.stdout
    assert not (tmp_path / "dockerd.pid").exists()


def test_stop_leaves_alone_a_process_it_did_not_start(tmp_path: Path) -> None:
    """A pid file whose process is not a dockerd (a pid reused since, say): nothing is killed, the file goes."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "dockerd.pid").write_text(f"{other.pid}\n")
        result = run_script("--stop", state=tmp_path)
        assert result.returncode == 0, result.stderr
        assert other.poll() is None
        assert not (tmp_path / "dockerd.pid").exists()
    finally:
        other.kill()
        other.wait()


def test_stop_with_nothing_started_does_nothing(tmp_path: Path) -> None:
    result = run_script("--stop", state=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")


def test_an_unknown_argument_is_refused(tmp_path: Path) -> None:
    result = run_script("--frobnicate", state=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr
