"""The bench's CPU accounting: a part's CPU is its whole process tree's, children that exited and were reaped
included, another part's tree left to that part; idle subtracted and divided by what was captured; the parts of a
shop `make run` runs found from its run.json and the embedded server's postmaster.pid. Lower bounds of CPU a
process is known to have burnt, never timings of the machine."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shop_devtools.runstate import Process, RunState
from shop_load.bench import cpu
from shop_load.bench.shop import BenchError, made_run

BURN_SECONDS = 0.3
BURNER = f"""\
import os, sys, time
if sys.argv[1:] == ["wait"]:
    print("waiting", flush=True)
    sys.stdin.readline()
began = time.process_time()
while time.process_time() - began < {BURN_SECONDS}:
    pass
print(os.getpid(), flush=True)
if sys.argv[1:] == ["stay"]:
    time.sleep(60)
"""
"""Burns BURN_SECONDS of CPU (with `wait`: once it is told, on its stdin), prints its pid, then exits (or sleeps:
`stay`)."""
PARENT = f"""\
import subprocess, sys
subprocess.run([sys.executable, "-c", {BURNER!r}], check=True)
middle = "import subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1], 'stay'])"
subprocess.run([sys.executable, "-c", middle, {BURNER!r}])
"""
"""A child that burns and exits (reaped by `subprocess.run`), then a live child whose own child burns and stays."""
SLACK = 0.05
"""What /proc's clock ticks may leave out of what a process measured itself (`time.process_time`)."""

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no /proc on this system")


@pytest.fixture
def session() -> Iterator[list["subprocess.Popen[str]"]]:
    """Processes started in sessions of their own, killed with everything they started at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        with process:  # its pipes closed, and waited for
            os.killpg(process.pid, signal.SIGKILL)


def _start(code: str, session: list["subprocess.Popen[str]"], *args: str) -> "subprocess.Popen[str]":
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    session.append(process)
    return process


@needs_proc
def test_a_tree_counts_a_reaped_child_and_a_live_grandchild_each_once(
    session: list["subprocess.Popen[str]"],
) -> None:
    parent = _start(PARENT, session)
    assert parent.stdout is not None
    exited, live = int(parent.stdout.readline()), int(parent.stdout.readline())  # each printed once it had burnt
    assert not Path(f"/proc/{exited}").exists(), "the first child exited and was reaped"

    whole = cpu.seconds({"tree": [parent.pid]})["tree"]
    split = cpu.seconds({"tree": [parent.pid], "grandchild": [live]})

    assert whole >= 2 * BURN_SECONDS - SLACK, "the reaped child's CPU and the live grandchild's"
    assert split["grandchild"] >= BURN_SECONDS - SLACK
    assert split["tree"] >= BURN_SECONDS - SLACK, "the reaped child, through its parent's counters of reaped children"
    assert split["tree"] <= whole - (BURN_SECONDS - SLACK), "another part's root is left to that part"
    assert split["tree"] + split["grandchild"] == pytest.approx(whole, abs=SLACK), "nothing counted twice"


@needs_proc
def test_the_meter_measures_from_the_end_of_the_idle_window_less_idle(
    session: list["subprocess.Popen[str]"],
) -> None:
    burner = _start(BURNER, session, "wait")
    assert burner.stdin is not None
    assert burner.stdout is not None
    assert burner.stdout.readline() == "waiting\n"
    meter = cpu.Meter({"burner": [burner.pid]}, idle_seconds=0.2)  # the burner waits on its stdin meanwhile
    burner.stdin.write("go\n")
    burner.stdin.flush()
    burner.stdout.readline()
    used = meter.stop()
    assert used["burner"] >= BURN_SECONDS - SLACK
    assert meter.idle["burner"] * 0.2 < BURN_SECONDS / 2, "waiting on its stdin, it burnt little"
    assert cpu.seconds({"gone": [2**22 + 1]}) == {"gone": 0.0}, "a process that is not there has spent nothing"


def test_idle_is_subtracted_and_the_rest_divided_by_what_was_captured() -> None:
    before, after = {"payment": 10.0, "postgresql": 4.0}, {"payment": 13.0, "postgresql": 5.0}
    used = cpu.less_idle(before, after, {"payment": 0.05, "postgresql": 0.02}, elapsed=20.0)
    assert used == pytest.approx({"payment": 2.0, "postgresql": 0.6})
    assert cpu.per_captured(used, 200) == pytest.approx({"total": 13.0, "payment": 10.0, "postgresql": 3.0})
    assert list(cpu.per_captured(used, 200) or {}) == ["total", "payment", "postgresql"]
    assert cpu.per_captured(used, 0) is None, "nothing captured: no cost per captured checkout"
    assert cpu.per_captured({}, 200) is None, "no process measured"


def _postmaster_pid(pgdata: Path, pid: int, port: int) -> None:
    pgdata.mkdir(parents=True)
    (pgdata / "postmaster.pid").write_text(f"{pid}\n{pgdata}\n1700000000\n{port}\n/tmp\n127.0.0.1\n  1 2\nready\n")


@needs_proc
def test_make_runs_shop_is_found_from_its_run_json_and_the_postmaster_pid(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no `make run` runs on"):
        made_run(tmp_path, None)
    replicas = [Process(f"payment-{n}", "payment", f"http://127.0.0.1:{9100 + n}", 1000 + n) for n in (1, 2)]
    others = [
        Process(name, name, f"http://127.0.0.1:{port}", port) for name, port in [("catalog", 9001), ("users", 9002)]
    ]
    storefront = Process("storefront", "storefront", "http://127.0.0.1:9000", 9000)
    RunState(os.getpid(), (*others, *replicas, storefront)).write(tmp_path)  # a live launcher: this test
    _postmaster_pid(tmp_path / "pgdata", 4242, 6543)

    shop = made_run(tmp_path, None)

    assert (shop.storefront, shop.catalog) == ("http://127.0.0.1:9000", "http://127.0.0.1:9001")
    assert shop.payment == "http://127.0.0.1:9101,http://127.0.0.1:9102", "every replica, as storefront is given them"
    assert shop.database_url == "postgresql://payment:payment@127.0.0.1:6543/payment"
    assert shop.parts is not None
    assert shop.parts() == {
        "launcher": [os.getpid()],
        "catalog": [9001],
        "users": [9002],
        "payment": [1001, 1002],
        "storefront": [9000],
        "postgresql": [4242],
    }
    (tmp_path / "pgdata" / "postmaster.pid").unlink()
    elsewhere = made_run(tmp_path, None)  # as with a server of POSTGRES_ADMIN_URL
    assert elsewhere.database_url == ""
    assert elsewhere.parts is not None
    assert "postgresql" not in elsewhere.parts()
