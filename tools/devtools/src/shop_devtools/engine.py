"""The container engine the images are proven on: one that already runs, found here, never installed or started.

Kubernetes cannot run on every machine, but a real container engine can, and it enforces the memory limit and
restart policy the kubelet would. `Engine.find()` returns the engine the docker client reaches (`DOCKER_HOST`,
else the client's default socket); `base_image()` picks the Python base the images are built on. Getting an
engine ready is the machine's business: Docker on a laptop, `.ci/prepare-containers` on the CI machine (Debian's
docker.io, dockerd, and a local Debian bookworm base where no registry gives the Python image). Where either is
missing, `EngineUnavailable` says what to do.
"""

import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shop_devtools.images import DEFAULT_BASE_IMAGE

DEBIAN_DOCKER_CLIENT = Path("/usr/bin/docker")  # Debian's client: its `docker build` speaks BuildKit natively
LOCAL_BASE_IMAGE = "resilient-shop/base:bookworm-python3.11"
"""Debian bookworm's Python, built by `.ci/prepare-containers` with debootstrap where no registry answers."""
PREPARE_SCRIPT = ".ci/prepare-containers"
WHAT_TO_DO = (
    "install Docker and start it (https://docs.docker.com/get-docker/), or on a Debian machine run "
    f"{PREPARE_SCRIPT} as root (it installs docker.io, starts dockerd and builds a local base image)"
)
PULL_SECONDS = 60


def pod_constraints(run_as_user: int, memory_limit_bytes: int) -> list[str]:
    """`docker run` flags for what the pod spec asks of a container: its user, a read-only root, the memory limit
    (no swap), no capabilities, no privilege gain, and the kubelet's restart policy."""
    memory = str(memory_limit_bytes)
    return [
        "--user", f"{run_as_user}:{run_as_user}", "--read-only", "--memory", memory, "--memory-swap", memory,
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--restart", "always",
    ]  # fmt: skip


class EngineUnavailable(Exception):
    """No container engine answers here, or it has no Python base image; the message says what to do."""


@dataclass(frozen=True)
class Engine:
    client: str

    def docker(
        self, *args: str, timeout: float = 120, check: bool = True, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`docker <args>`; `env` is added to the client's environment: a secret goes there, named in `args` as
        `--env NAME` without its value, so it is in no command line (`ps`) and no error message."""
        environ = {**os.environ, **env} if env else None
        return subprocess.run(
            [self.client, *args], capture_output=True, text=True, timeout=timeout, check=check, env=environ
        )

    @classmethod
    def find(cls) -> "Engine":
        """The engine the docker client reaches; `EngineUnavailable` when there is no client or nothing answers."""
        client = str(DEBIAN_DOCKER_CLIENT) if DEBIAN_DOCKER_CLIENT.exists() else shutil.which("docker")
        if client is None:
            raise EngineUnavailable(f"no docker client is installed: {WHAT_TO_DO}")
        engine = cls(client)
        try:
            version = engine.docker("version", "--format", "{{.Server.Version}}", timeout=15, check=False)
        except subprocess.TimeoutExpired:
            raise EngineUnavailable(f"the container engine did not answer in 15 s: {WHAT_TO_DO}") from None
        if version.returncode != 0:
            said = (version.stderr.strip().splitlines() or [f"`docker version` exited {version.returncode}"])[-1]
            raise EngineUnavailable(f"no container engine answers ({said}): {WHAT_TO_DO}")
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        print(f"engine | using the running Docker engine {version.stdout.strip()} ({client}, {where})", flush=True)
        return engine

    def has_image(self, image: str) -> bool:
        return self.docker("image", "inspect", image, check=False).returncode == 0

    def base_image(self, environ: Mapping[str, str] = os.environ) -> str:
        """`BASE_IMAGE` if set; else the slim Python image if the engine has it; else the local Debian base if it has
        that (built where the Python image could not be pulled); else the Python image, pulled."""
        if explicit := environ.get("BASE_IMAGE", "").strip():
            return explicit
        if self.has_image(DEFAULT_BASE_IMAGE):
            return DEFAULT_BASE_IMAGE
        if self.has_image(LOCAL_BASE_IMAGE):
            print(f"engine | {DEFAULT_BASE_IMAGE} is not here: using {LOCAL_BASE_IMAGE}", flush=True)
            return LOCAL_BASE_IMAGE
        print(f"engine | pulling {DEFAULT_BASE_IMAGE}", flush=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            if self.docker("pull", DEFAULT_BASE_IMAGE, timeout=PULL_SECONDS, check=False).returncode == 0:
                return DEFAULT_BASE_IMAGE
        raise EngineUnavailable(
            f"no Python base image: {DEFAULT_BASE_IMAGE} cannot be pulled and {LOCAL_BASE_IMAGE} is not here; "
            f"set BASE_IMAGE to a Python 3.11+ image the engine has, or run {PREPARE_SCRIPT} as root (it builds "
            f"{LOCAL_BASE_IMAGE} from Debian bookworm)"
        )
