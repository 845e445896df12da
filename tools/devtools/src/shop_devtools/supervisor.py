"""`make run` once the shop is up: what the kubelet and the Deployment controller do, for local processes.

A service that dies, or that `shop_devtools.kubelet` stopped for failing liveness, is started again after its
back-off while the others serve (`shop_devtools.restarts`), in CrashLoopBackOff if it keeps dying. `SIGUSR1` to
the launcher rolls payment: each replica stopped (it drains), started again and waited for until ready, then the
next. Every start is published in `<data dir>/run.json`
(`shop_devtools.runstate`), where the drill finds the replicas and the launcher.
"""

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import httpx

from shop_devtools import processes
from shop_devtools.processes import REPLICATED, Child, log
from shop_devtools.restarts import CRASH_LOOP_SECONDS
from shop_devtools.runstate import Process, RunState


def supervise(children: list[Child], data_dir: Path, rollout: threading.Event) -> NoReturn:
    """Keeps the shop up as a restart policy would (`shop_devtools.restarts`): a dead service is started again
    after its back-off while the others serve; `rollout` set (SIGUSR1) replaces the payment replicas one at a time.
    Ends only by `Shutdown` (a signal)."""

    def start(child: Child, reason: str) -> None:
        child.start()
        child.restarts, child.last_reason = child.restarts + 1, reason
        publish(children, data_dir)

    rolling: Rollout | None = None
    with httpx.Client(timeout=processes.POLL_SECONDS * 2, trust_env=False) as client:
        while True:
            now = time.monotonic()
            if rollout.is_set():
                rollout.clear()
                if rolling is None:
                    rolling = Rollout([child for child in children if child.instance.service.name == REPLICATED])
                    log.info("rollout of %s requested: %d replica(s), one at a time", REPLICATED, len(rolling.waiting))
                else:
                    log.info("a rollout is already under way")
            if rolling is not None and rolling.step(now, client, start):
                log.info("rollout of %s done in %.1f s", REPLICATED, now - rolling.started)
                rolling = None
            for child in children:
                if rolling is not None and child is rolling.current:  # stopped on purpose: not a death
                    continue
                if child.restart_at is None and (code := child.process.poll()) is not None:
                    child.last_reason = child.death_reason or processes.describe_exit(code)
                    child.restart_at = now + back_off(child, now)
                elif child.restart_at is not None and now >= child.restart_at:
                    start(child, child.last_reason)
                    log.info("started %s again (pid %d) on %s", child.name, child.process.pid, child.url)
            time.sleep(processes.POLL_SECONDS)


def back_off(child: Child, now: float) -> float:
    """Seconds until a child that died (`last_reason` says how) is started again."""
    delay = child.policy.after_death(now, ran_for=now - child.started_at)
    how = child.last_reason
    if child.policy.crash_looping:
        deaths = f"{len(child.policy.deaths)} times within {CRASH_LOOP_SECONDS:.0f} s"
        how += f", and keeps dying ({deaths}): CrashLoopBackOff"
    log.warning("%s %s; starting it again in %.0f s (the others go on serving)", child.name, how, delay)
    return delay


def publish(children: list[Child], data_dir: Path) -> None:
    """Writes `run.json` for the tools beside the shop (the drill): this launcher and every process now."""
    running = (
        Process(c.name, c.instance.service.name, c.url, c.process.pid, c.restarts, c.last_reason) for c in children
    )
    RunState(os.getpid(), tuple(running)).write(data_dir)


@dataclass
class Rollout:
    """`kubectl rollout restart` for local processes: each replica stopped (it drains), started again and waited
    for until ready, then the next. A replica that dies while starting is left to the restart policy."""

    waiting: list[Child]
    started: float = field(default_factory=time.monotonic)
    current: Child | None = None
    stopped_at: float = 0.0

    def step(self, now: float, client: httpx.Client, start: Callable[[Child, str], None]) -> bool:
        """Advances the rollout by what can be done now; True once every replica is back."""
        child = self.current
        if child is None:
            if not self.waiting:
                return True
            child = self.current = self.waiting.pop(0)
            self.stopped_at = now
            log.info("rollout: stopping %s (pid %d); it drains, then starts again", child.name, child.process.pid)
            processes.signal_group(child, signal.SIGTERM)
        elif child.started_at < self.stopped_at:  # the old process
            if child.process.poll() is not None:
                start(child, "rollout")
                log.info("rollout: started %s again (pid %d)", child.name, child.process.pid)
            elif now - self.stopped_at > processes.STOP_TIMEOUT_SECONDS:
                processes.signal_group(child, signal.SIGKILL)
        elif child.process.poll() is not None:
            log.warning("rollout: %s died while starting; the restart policy takes it from here", child.name)
            self.current = None
        elif not processes.readiness(client, child.url):
            log.info("rollout: %s is ready again", child.name)
            self.current = None
        return False
