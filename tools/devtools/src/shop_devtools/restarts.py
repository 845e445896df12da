"""`make run`'s restart policy: what the kubelet does for a pod's container, for a local process.

A service that dies is started again after a back-off (1 s, then 2, 4, ... up to `BACKOFF_MAX_SECONDS`), while the
others go on serving; a process that ran `HEALTHY_SECONDS` before dying starts the back-off afresh. One that dies
`CRASH_LOOP_DEATHS` times within `CRASH_LOOP_SECONDS` is in CrashLoopBackOff: the launcher says so and goes on
starting it after each (longer) back-off, as the kubelet does, while the rest of the shop serves. (The kubelet's
first back-off is 10 s and its longest 5 min; these are shorter, for a demo on a laptop.)
"""

from dataclasses import dataclass, field

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
HEALTHY_SECONDS = 10.0
CRASH_LOOP_DEATHS = 5
CRASH_LOOP_SECONDS = 60.0


@dataclass
class RestartPolicy:
    deaths: list[float] = field(default_factory=list)
    """When the process died, within the crash-loop window."""
    backoff: float = BACKOFF_FIRST_SECONDS

    def after_death(self, now: float, ran_for: float) -> float:
        """Seconds to wait before starting the process again."""
        self.deaths = [at for at in self.deaths if now - at < CRASH_LOOP_SECONDS] + [now]
        if ran_for >= HEALTHY_SECONDS:
            self.backoff = BACKOFF_FIRST_SECONDS
        delay, self.backoff = self.backoff, min(self.backoff * 2, BACKOFF_MAX_SECONDS)
        return delay

    @property
    def crash_looping(self) -> bool:
        return len(self.deaths) >= CRASH_LOOP_DEATHS
