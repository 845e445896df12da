"""make run's restart policy: back-off as the kubelet's, reset by a healthy run, and CrashLoopBackOff named, never
the end of the shop."""

from shop_devtools.restarts import (
    BACKOFF_MAX_SECONDS,
    CRASH_LOOP_DEATHS,
    CRASH_LOOP_SECONDS,
    HEALTHY_SECONDS,
    RestartPolicy,
)


def test_the_back_off_doubles_up_to_its_ceiling() -> None:
    policy = RestartPolicy()
    delays = [policy.after_death(now=minute * CRASH_LOOP_SECONDS, ran_for=1.0) for minute in range(9)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, BACKOFF_MAX_SECONDS, BACKOFF_MAX_SECONDS, BACKOFF_MAX_SECONDS]


def test_a_healthy_run_starts_the_back_off_afresh() -> None:
    policy = RestartPolicy()
    assert [policy.after_death(now=t, ran_for=1.0) for t in (0.0, 2.0, 5.0)] == [1.0, 2.0, 4.0]
    assert policy.after_death(now=5.0 + CRASH_LOOP_SECONDS, ran_for=HEALTHY_SECONDS) == 1.0


def test_dying_again_and_again_is_crash_loop_back_off_and_still_started_again() -> None:
    policy = RestartPolicy()
    delays = []
    for t in range(CRASH_LOOP_DEATHS):
        assert not policy.crash_looping
        delays.append(policy.after_death(now=float(t), ran_for=1.0))
    assert policy.crash_looping
    assert delays == sorted(delays)
    assert policy.after_death(now=float(CRASH_LOOP_DEATHS), ran_for=1.0) == 2.0**CRASH_LOOP_DEATHS
    spread = RestartPolicy()
    step = CRASH_LOOP_SECONDS / (CRASH_LOOP_DEATHS - 1) + 1
    for i in range(3 * CRASH_LOOP_DEATHS):
        spread.after_death(now=i * step, ran_for=1.0)
        assert not spread.crash_looping, "deaths spread wider than the window are no loop"
