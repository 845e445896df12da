"""The container proof's database outage, observed: the samples of every service's `/ready` and of the
database, the steps of the outage and of the recovery read from them (`outage_marks`), what must hold after it
(`outage_problems`), the customers' checkouts during it, and its summary; pure functions but the summary's print.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_load.core.records import FINAL_OUTCOMES, Checkout

DATABASE = "database"
"""The database's own target in the samples, beside the services' names."""


def lost_or_changed(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Finished payments of `before` that `after` lacks or holds with another status."""
    problems = []
    for payment_id, status in sorted(before.items()):
        if status == "pending":
            continue
        if payment_id not in after:
            problems.append(f"payment {payment_id} ({status}) is gone")
        elif after[payment_id] != status:
            problems.append(f"payment {payment_id} was {status}, is now {after[payment_id]}")
    return problems


@dataclass(frozen=True)
class Sample:
    """One look at a target: a service's /ready (ok: 200) or the database (ok: it ran a query)."""

    at: float
    """Wall clock (time.time()), as the engine's events."""
    target: str
    ok: bool
    pending: int | None = None
    """The database's: payments created before the kill that are still pending."""


@dataclass(frozen=True)
class Transition:
    down: float | None
    """The first failing look at or after the kill."""
    up: float | None
    """The first passing look after `down`."""


@dataclass
class Outage:
    """What happened to the database and the services, as seen from outside."""

    killed: float | None = None
    """Wall clock of the SIGKILL."""
    clock_at_kill: float | None = None
    """The customers' clock (Checkout.t) at the SIGKILL."""
    pid: int | None = None
    samples: list[Sample] = field(default_factory=list)
    engine_events: list[tuple[float, str]] = field(default_factory=list)
    """(wall clock, action) of the container, from `docker events`: die, start, ..."""
    container_before: dict[str, Any] = field(default_factory=dict)
    container_after: dict[str, Any] = field(default_factory=dict)
    pending_at_kill: int = 0
    payments_before: dict[str, str] = field(default_factory=dict)
    """id → status just before the kill."""
    payments_after: dict[str, str] = field(default_factory=dict)
    """id → status once everything recovered."""


def transitions(samples: Sequence[Sample], since: float) -> dict[str, Transition]:
    """Per target, when it first failed at or after `since`, and when it first passed after that."""
    down: dict[str, float] = {}
    up: dict[str, float] = {}
    targets: list[str] = []
    for sample in sorted(samples, key=lambda s: s.at):
        if sample.target not in targets:
            targets.append(sample.target)
        if sample.at < since:
            continue
        if not sample.ok:
            down.setdefault(sample.target, sample.at)
        elif sample.target in down:
            up.setdefault(sample.target, sample.at)
    return {target: Transition(down.get(target), up.get(target)) for target in targets}


def pending_finished(samples: Sequence[Sample], since: float) -> tuple[int | None, float | None]:
    """How many payments from before the kill were pending when the database answered again, and when the first
    look found none left."""
    looks = sorted((s for s in samples if s.target == DATABASE and s.ok and s.at >= since), key=lambda s: s.at)
    if not looks:
        return None, None
    return looks[0].pending, next((s.at for s in looks if s.pending == 0), None)


def recovered(samples: Sequence[Sample], since: float, targets: Sequence[str]) -> bool:
    """The database answers with no payment from before the kill pending, and every target's latest look, taken
    after that, passed: time to stop watching."""
    database = transitions(samples, since).get(DATABASE)
    if database is None or database.up is None:
        return False
    _, done = pending_finished(samples, since)
    if done is None:
        return False
    latest: dict[str, Sample] = {}
    for sample in samples:
        if sample.target in targets and (sample.target not in latest or sample.at >= latest[sample.target].at):
            latest[sample.target] = sample
    return all(t in latest and latest[t].ok and latest[t].at > database.up for t in targets)


def first_event(events: Sequence[tuple[float, str]], action: str, since: float) -> float | None:
    return min((at for at, seen in events if seen == action and at >= since), default=None)


def outage_marks(outage: Outage, services: Sequence[str]) -> dict[str, float | None]:
    """Seconds after the kill of each step, in the order they should happen."""
    if outage.killed is None:
        return {}
    killed = outage.killed
    seen = transitions(outage.samples, killed)
    database = seen.get(DATABASE, Transition(None, None))
    _, pending_done = pending_finished(outage.samples, killed)
    marks: dict[str, float | None] = {
        "killed": killed,
        "database_refused": database.down,
        "engine_saw_exit": first_event(outage.engine_events, "die", killed),
        "engine_restarted": first_event(outage.engine_events, "start", killed),
        "database_accepting": database.up,
    }
    for name in services:
        marks[f"{name}_unready"] = seen.get(name, Transition(None, None)).down
    for name in services:
        marks[f"{name}_ready_again"] = seen.get(name, Transition(None, None)).up
    ready = [marks[f"{name}_ready_again"] for name in services]
    marks["all_ready_again"] = None if not ready or None in ready else max(r for r in ready if r is not None)
    marks["pending_finished"] = pending_done
    return {step: None if at is None else round(at - killed, 2) for step, at in marks.items()}


def outage_problems(outage: Outage, services: Sequence[str], stays_ready: Sequence[str]) -> list[str]:
    """What the outage must show: the engine restarted the database, the services that need it were unready while
    it was down and ready after, those that do not stayed ready, the crash's pending payments were finished, and
    nothing finished before the kill was lost."""
    if outage.killed is None:
        return ["the database was never killed"]
    marks = outage_marks(outage, services)
    seen = transitions(outage.samples, outage.killed)
    problems = []
    if marks["database_refused"] is None:
        problems.append("the database never refused a connection after the kill")
    if marks["database_accepting"] is None:
        problems.append("the database never accepted connections again")
    if marks["engine_saw_exit"] is None or marks["engine_restarted"] is None:
        problems.append("the engine did not report the database container's exit and start")
    before, after = outage.container_before, outage.container_after
    if before.get("id") != after.get("id"):
        problems.append("the database container was replaced, not restarted")
    if after.get("restart_count") != before.get("restart_count", 0) + 1:
        problems.append(
            f"the engine restarted the database {after.get('restart_count')} time(s) in all, "
            f"{before.get('restart_count')} before the kill: expected one restart more"
        )
    for name in services:
        if marks[f"{name}_unready"] is None:
            problems.append(f"{name} stayed ready while the database was down")
        elif marks[f"{name}_ready_again"] is None:
            problems.append(f"{name} never became ready again")
    for name in stays_ready:
        if (transition := seen.get(name)) is not None and transition.down is not None:
            problems.append(f"{name} turned unready, though it needs no database")
    left, _ = pending_finished(outage.samples, outage.killed)
    if left and marks["pending_finished"] is None:
        problems.append(f"{left} payment(s) pending since before the kill were never finished")
    problems += [f"after the restart: {p}" for p in lost_or_changed(outage.payments_before, outage.payments_after)]
    return problems


def outage_checkouts(checkouts: Sequence[Checkout], start: float, end: float) -> dict[str, Any]:
    """The checkouts the outage touched: started before everything was ready again and not answered before the kill
    (times on the customers' clock)."""
    touched = [c for c in checkouts if c.t <= end and (c.finished is None or c.finished >= start)]
    answered = [c for c in touched if c.outcome in FINAL_OUTCOMES]
    waits = [c.finished - c.t for c in answered if c.finished is not None]
    return {
        "touched": len(touched),
        "answered": len(answered),
        "retried": sum(1 for c in touched if c.attempts > 1),
        "gave_up": sum(1 for c in touched if c.outcome == "failed"),
        "longest_answer_seconds": round(max(waits), 2) if waits else None,
    }


def summarize_outage(
    outage: Outage, checkouts: Sequence[Checkout], services: Sequence[str], stays_ready: Sequence[str]
) -> dict[str, Any]:
    marks = outage_marks(outage, services)
    recovery = marks.get("all_ready_again")
    touched: dict[str, Any] = {}
    if outage.clock_at_kill is not None:
        end = outage.clock_at_kill + (recovery if recovery is not None else 0.0)
        touched = outage_checkouts(checkouts, outage.clock_at_kill, end)
    left, _ = pending_finished(outage.samples, outage.killed) if outage.killed is not None else (None, None)
    kept = lost_or_changed(outage.payments_before, outage.payments_after)
    finished_before = sum(1 for status in outage.payments_before.values() if status != "pending")
    return {
        "seconds_after_kill": marks,
        "outage_seconds": marks.get("database_accepting"),
        "recovery_seconds": recovery,
        "killed_pid": outage.pid,
        "restart_count": outage.container_after.get("restart_count"),
        "pending_at_kill": outage.pending_at_kill,
        "pending_when_back": left,
        "payments_before_kill": finished_before,
        "payments_kept": finished_before - len(kept),
        "checkouts": touched,
        "problems": outage_problems(outage, services, stays_ready),
    }


def print_outage_summary(report: Mapping[str, Any]) -> None:
    print("\ncontainer proof: PostgreSQL SIGKILLed under paced checkouts, restarted by the engine", flush=True)
    for step, seconds in report["seconds_after_kill"].items():
        print(f"  {step:<24} {'-' if seconds is None else f'+{seconds:.2f} s'}", flush=True)
    print(f"  {'outage':<24} {report['outage_seconds']} s (until the database accepted connections)", flush=True)
    print(f"  {'recovery':<24} {report['recovery_seconds']} s (until every service was ready)", flush=True)
    print(f"  {'restarts':<24} {report['restart_count']}", flush=True)
    print(
        f"  {'pending':<24} {report['pending_at_kill']} at the kill, {report['pending_when_back']} when it was back",
        flush=True,
    )
    touched = report["checkouts"]
    if touched:
        print(
            f"  {'checkouts':<24} {touched['answered']}/{touched['touched']} answered, {touched['retried']} retried, "
            f"longest {touched['longest_answer_seconds']} s",
            flush=True,
        )
    print(f"  {'kept':<24} {report['payments_kept']}/{report['payments_before_kill']} payments from before", flush=True)
    if volume := report.get("new_container"):
        print(
            f"  {'new container':<24} {volume['found']}/{volume['payments']} payments found on the volume "
            f"(accepting after {volume['accepting_after_seconds']} s)",
            flush=True,
        )
    for problem in report["problems"] or ["none: every check holds"]:
        print(f"  {'problem':<24} {problem}", flush=True)
