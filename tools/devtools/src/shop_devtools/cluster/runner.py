"""Running the external commands: each printed before it runs (`--dry-run` prints the ones that change something
and runs only the read-only queries), a failure or a missing tool turned into a `ClusterError` naming it, and the
checks made before anything runs (the tools on PATH, the host ports kind would publish)."""

import shlex
import shutil
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shop_devtools.cluster.errors import ClusterError

TOOL_HINTS = {
    "docker": "Docker builds the images: https://docs.docker.com/get-docker/",
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "minikube": "https://minikube.sigs.k8s.io/docs/start/",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/",
}


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        lines = [
            f"{tool} is required but was not found on PATH ({TOOL_HINTS.get(tool, 'install it')})" for tool in missing
        ]
        raise ClusterError("\n".join(lines))


def ports_in_use(ports: Iterable[int], host: str = "127.0.0.1") -> list[int]:
    busy = []
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


@dataclass
class Runner:
    dry_run: bool = False

    @staticmethod
    def display(argv: Sequence[str]) -> str:
        """The command as a shell would take it."""
        return shlex.join(argv)

    def show(self, argv: Sequence[str]) -> None:
        print(f"$ {self.display(argv)}", flush=True)

    def run(self, argv: Sequence[str]) -> None:
        self.show(argv)
        if self.dry_run:
            return
        try:
            result = subprocess.run(argv, check=False)
        except FileNotFoundError:
            raise ClusterError(f"{argv[0]} is required but was not found on PATH") from None
        if result.returncode != 0:
            raise ClusterError(f"`{self.display(argv)}` failed (exit {result.returncode})")

    def succeeds(self, argv: Sequence[str]) -> bool:
        """Runs a read-only check quietly; True when it exits 0."""
        self.show(argv)
        try:
            return subprocess.run(argv, check=False, capture_output=True).returncode == 0
        except FileNotFoundError:
            raise ClusterError(f"{argv[0]} is required but was not found on PATH") from None

    def output(self, argv: Sequence[str], *, check: bool = True) -> str:
        """Runs a read-only command and returns its stdout (dry runs run these too: they change nothing)."""
        self.show(argv)
        try:
            result = subprocess.run(argv, check=False, capture_output=True, text=True)
        except FileNotFoundError:
            raise ClusterError(f"{argv[0]} is required but was not found on PATH") from None
        if check and result.returncode != 0:
            raise ClusterError(f"`{self.display(argv)}` failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout
