"""A container engine to prove the images on: the machine's Docker, or Debian's docker.io installed and started here.

Kubernetes cannot run on every machine, but a real container engine can, and it enforces the memory limit and
restart policy the kubelet would. `Engine.ensure()` reuses a running engine, or installs Debian's `docker.io`
(when root with apt-get), starts `dockerd` and stops it again at the end. `ensure_base_image()` finds a Python
base image, or builds one from Debian bookworm with debootstrap when no registry can be reached.
"""

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_DOCKER_CLIENT = Path("/usr/bin/docker")  # Debian's client: its `docker build` speaks BuildKit natively
DEFAULT_BASE_IMAGE = "python:3.12-slim-bookworm"
LOCAL_BASE_IMAGE = "resilient-shop/base:bookworm-python3.11"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


class EngineUnavailable(Exception):
    """No container engine can run here; the message says why."""


def _run(argv: list[str], *, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)


def _apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EngineUnavailable(f"{' '.join(packages)} missing and cannot be installed (needs root and apt-get)")
    print(f"engine | installing Debian's {' '.join(packages)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", *packages], check=True, env=env, capture_output=True, timeout=600
        )
    except subprocess.CalledProcessError:  # a stale package index: refresh it once and try again
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", *packages], check=True, env=env, capture_output=True, timeout=600
        )


@dataclass
class Engine:
    client: str
    daemon: subprocess.Popen[bytes] | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    @property
    def client_dir(self) -> str:
        return str(Path(self.client).parent)

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([self.client, *args], timeout=timeout, check=check)

    def responds(self) -> bool:
        try:
            return self.docker("info", "--format", "{{.ServerVersion}}", timeout=15, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    @classmethod
    def ensure(cls, workdir: Path) -> "Engine":
        """A responding engine: the running one, or dockerd started here (installed first if need be)."""
        client = str(DEBIAN_DOCKER_CLIENT) if DEBIAN_DOCKER_CLIENT.exists() else shutil.which("docker")
        if client and cls(client).responds():
            print(f"engine | using the running Docker engine ({client})", flush=True)
            return cls(client, workdir=workdir)
        if shutil.which("dockerd") is None or not DEBIAN_DOCKER_CLIENT.exists():
            _apt_install("docker.io")
        workdir.mkdir(parents=True, exist_ok=True)
        log = (workdir / "dockerd.log").open("wb")
        print("engine | starting dockerd", flush=True)
        daemon = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT)
        engine = cls(str(DEBIAN_DOCKER_CLIENT), daemon, workdir)
        deadline = time.monotonic() + 60
        while not engine.responds():
            if daemon.poll() is not None or time.monotonic() > deadline:
                engine.stop()
                raise EngineUnavailable(f"dockerd did not start; see {workdir / 'dockerd.log'}")
            time.sleep(0.5)
        return engine

    def stop(self) -> None:
        """Stops dockerd if it was started here; an engine that was already running is left alone."""
        if self.daemon is not None and self.daemon.poll() is None:
            print("engine | stopping the dockerd started for this run", flush=True)
            self.daemon.terminate()
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(10)

    def has_image(self, image: str) -> bool:
        return self.docker("image", "inspect", image, check=False).returncode == 0

    def ensure_base_image(self) -> str:
        """`BASE_IMAGE` if set; else the default slim Python image, pulled if a registry answers; else a local one."""
        if explicit := os.environ.get("BASE_IMAGE"):
            return explicit
        if self.has_image(DEFAULT_BASE_IMAGE):
            return DEFAULT_BASE_IMAGE
        try:
            if self.docker("pull", DEFAULT_BASE_IMAGE, timeout=60, check=False).returncode == 0:
                return DEFAULT_BASE_IMAGE
        except subprocess.TimeoutExpired:
            pass
        print(f"engine | {DEFAULT_BASE_IMAGE} cannot be pulled: using a local Debian bookworm base", flush=True)
        if not self.has_image(LOCAL_BASE_IMAGE):
            self._build_local_base()
        return LOCAL_BASE_IMAGE

    def _build_local_base(self) -> None:
        """Debian bookworm (minbase) with Python 3.11 and pip, imported as an image: a stand-in for `python:*-slim`.

        Debian marks its Python as externally managed (PEP 668); the marker is removed so that pip installs into
        it the way it does into the official images.
        """
        if shutil.which("debootstrap") is None:
            _apt_install("debootstrap")
        rootfs = self.workdir / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        mirror = os.environ.get("DEBIAN_MIRROR", DEBIAN_MIRROR)
        packages = "python3,python3-pip,python3-venv,python-is-python3,ca-certificates"
        print(f"engine | debootstrap bookworm ({packages}) from {mirror}", flush=True)
        _run(
            ["debootstrap", "--variant=minbase", f"--include={packages}", "bookworm", str(rootfs), mirror], timeout=900
        )
        for marker in (rootfs / "usr" / "lib").glob("python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [self.client, "import", "--change", 'CMD ["python3"]', "-", LOCAL_BASE_IMAGE],
            stdin=tar.stdout,
            check=True,
            capture_output=True,
            timeout=300,
        )
        tar.wait()
        shutil.rmtree(rootfs, ignore_errors=True)
