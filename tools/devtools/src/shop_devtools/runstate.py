"""What a running `make run` is, for the tools beside it: `<data dir>/run.json`.

The launcher writes it once every service is ready and again whenever a process is started anew (a restart after
a death, a rollout), and removes it when it stops. The drill reads it to find every payment replica and the
launcher itself (`SIGUSR1` asks it for a rollout). A file left by a launcher that was SIGKILLed names a process
that is gone: `read` ignores it.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

FILE_NAME = "run.json"


@dataclass(frozen=True)
class Process:
    name: str
    """`payment`, or `payment-2` when a service runs several replicas."""
    service: str
    url: str
    pid: int
    restarts: int = 0
    """How many times the launcher started it again (after a death, a failed liveness, a rollout)."""
    last_reason: str = ""
    """Why, the last time: `failed liveness`, `exited with code 70`, `rollout`."""


@dataclass(frozen=True)
class RunState:
    launcher_pid: int
    processes: tuple[Process, ...]

    def replicas(self, service: str) -> list[Process]:
        return [process for process in self.processes if process.service == service]

    def write(self, data_dir: Path) -> None:
        """Replaces the file in one step: a reader never sees half of it."""
        path = data_dir / FILE_NAME
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(self)))
        partial.replace(path)

    @classmethod
    def read(cls, data_dir: Path) -> Self | None:
        """The running launcher's state, or None when no launcher runs on `data_dir`."""
        try:
            raw = json.loads((data_dir / FILE_NAME).read_text())
            state = cls(int(raw["launcher_pid"]), tuple(Process(**process) for process in raw["processes"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return state if _alive(state.launcher_pid) else None


def remove(data_dir: Path) -> None:
    (data_dir / FILE_NAME).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
