"""Running the external commands: each printed before it runs (`--dry-run` prints the ones that change something
and runs only the read-only queries), a failure or a missing tool turned into a `ClusterError` naming it, and the
checks made before anything runs (the tools on PATH)."""

import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

TOOL_HINTS = {
    "docker": "Docker builds the images: https://docs.docker.com/get-docker/",
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "minikube": "https://minikube.sigs.k8s.io/docs/start/",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/",
}


class ClusterError(Exception):
    """A problem the user can fix (a missing tool, overlay or context, a failed command), which the command line
    prints as `error: ...` without a traceback."""


def require_tools(*tools: str) -> None:
    if missing := [tool for tool in tools if shutil.which(tool) is None]:
        hints = (
            f"{tool} is required but was not found on PATH ({TOOL_HINTS.get(tool, 'install it')})" for tool in missing
        )
        raise ClusterError("\n".join(hints))


@dataclass
class Runner:
    dry_run: bool = False

    def _run(self, argv: Sequence[str], *, capture: bool) -> "subprocess.CompletedProcess[str]":
        print(f"$ {shlex.join(argv)}", flush=True)
        try:
            return subprocess.run(argv, check=False, capture_output=capture, text=True)
        except FileNotFoundError:
            raise ClusterError(f"{argv[0]} is required but was not found on PATH") from None

    def run(self, argv: Sequence[str]) -> None:
        """Runs a command that changes something, its output on the terminal; a dry run only prints it."""
        if self.dry_run:
            print(f"$ {shlex.join(argv)}", flush=True)
            return
        if (code := self._run(argv, capture=False).returncode) != 0:
            raise ClusterError(f"`{shlex.join(argv)}` failed (exit {code})")

    def succeeds(self, argv: Sequence[str]) -> bool:
        """Runs a read-only check quietly; True when it exits 0."""
        return self._run(argv, capture=True).returncode == 0

    def output(self, argv: Sequence[str]) -> str:
        """Runs a read-only command and returns its stdout (dry runs run these too: they change nothing)."""
        result = self._run(argv, capture=True)
        if result.returncode != 0:
            raise ClusterError(f"`{shlex.join(argv)}` failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout
